/* Waiting for the leader's approval in their remote signing provider's app: the time left
 * counts down, SaoY is asked every few seconds what became of it, and the page moves on
 * (reloads) once it is signed, refused or expired.  Markup: an element with
 * data-remote-wait (the status address), data-seconds, data-left ("… {time} …"). */
(function () {
  "use strict";
  var box = document.querySelector("[data-remote-wait]");
  if (!box) { return; }
  var left = parseInt(box.dataset.seconds, 10) || 0;
  var clock = box.querySelector("[data-remote-clock]");
  var said = box.querySelector("[data-remote-message]");

  function show() {
    var m = Math.floor(left / 60), s = left % 60;
    clock.textContent = box.dataset.left.replace("{time}", m + ":" + (s < 10 ? "0" : "") + s);
  }

  function ask() {
    fetch(box.dataset.remoteWait, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.state === "pending") {
          left = answer.seconds_left;
          if (answer.message) { said.textContent = answer.message; }
          setTimeout(ask, 2000);
          return;
        }
        said.textContent = answer.message || box.dataset.moving;
        window.location.reload();
      })
      .catch(function () { setTimeout(ask, 4000); });
  }

  show();
  setInterval(function () { if (left > 0) { left -= 1; } show(); }, 1000);
  setTimeout(ask, 1500);
})();
