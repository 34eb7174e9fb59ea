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

// An error summary (saoy/fields.html) takes the focus: a screen reader reads what is wrong
// first, and each item's link moves to its field.
$(function () {
  var summary = document.getElementById('error-summary');
  if (summary) summary.focus();
});

// A table too wide for a phone scrolls inside its frame: the frame takes the keyboard's
// focus (so it scrolls without a mouse) and is named after what it shows.
$(function () {
  $('.table-responsive:not([tabindex])').each(function () {
    var heading = $(this).closest('.panel').find('.panel-heading').first().text().trim() ||
      $('main h1, main h2').first().text().trim() || document.title;
    $(this).attr({tabindex: 0, role: 'region', 'aria-label': heading});
  });
});
