// Date boxes (app/dates.py): the calendar in the page's language, dd/mm/yyyy, Monday first.
// Typing stays possible (the server parses and checks what was typed).
$(function () {
  $('.saoy-date input').each(function () {
    var names = $(this).data('calendar');
    var language = $('html').attr('lang') || 'vi';
    if (names && $.fn.datepicker) {
      $.fn.datepicker.dates[language] = names;
      $(this).datepicker({format: 'dd/mm/yyyy', language: language, weekStart: 1,
                          autoclose: true, forceParse: false, todayHighlight: true});
    }
  });
});
