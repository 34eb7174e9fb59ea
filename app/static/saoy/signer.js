/* The leader's signing plugin, from SaoY's pages: VGCA Sign Service or SaoY's own signer,
 * one local WebSocket contract (docs/plugin-protocol.md).  SaoY prepares the copy and opens
 * a job with one-time links; the plugin downloads, shows, signs, uploads; SaoY accepts only
 * what it prepared plus the leader's one signature. */
(function () {
  "use strict";

  /* Does a plugin answer on this computer?  (Open a connection and close it at once.) */
  function probe(url, fn) {
    return new Promise(function (resolve) {
      var done = false, ws;
      function finish(ok) { if (!done) { done = true; try { ws.close(); } catch (e) {} resolve(ok); } }
      try { ws = new WebSocket(url + "/" + fn); } catch (e) { resolve(false); return; }
      ws.onopen = function () { finish(true); };
      ws.onerror = function () { finish(false); };
      setTimeout(function () { finish(false); }, 3000);
    });
  }

  /* Ask SaoY to prepare the copies and open their jobs (session cookie, CSRF token). */
  function openJobs(button, ids, placement) {
    var body = Object.assign({ids: ids}, placement || {});
    return fetch(button.dataset.jobs, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": button.dataset.csrf},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.message || r.statusText); }
        return data;
      });
    });
  }

  /* One file through the plugin: one WebSocket, one JSON each way. */
  function signOne(url, fn, job, batch) {
    return new Promise(function (resolve) {
      var ws, answered = false;
      var meta = [{Key: "request", Value: String(job.request_id)},
                  {Key: "sha256", Value: job.sha256}, {Key: "field", Value: job.field}];
      if (batch) {
        meta.push({Key: "batch", Value: batch.id}, {Key: "batch_size", Value: String(batch.size)});
      }
      try { ws = new WebSocket(url + "/" + fn); } catch (e) {
        resolve({Status: -1, Message: e.message}); return;
      }
      ws.onopen = function () {
        ws.send(JSON.stringify({FileUploadHandler: job.upload_url, SessionId: "",
                                FileName: job.download_url, DocNumber: job.doc_number,
                                MetaData: meta}));
      };
      ws.onmessage = function (event) {
        answered = true;
        var data;
        try { data = JSON.parse(event.data); } catch (e) { data = {Status: -1, Message: event.data}; }
        resolve(data);
        ws.close();
      };
      ws.onclose = function () { if (!answered) { resolve({Status: -1, Message: ""}); } };
    });
  }

  /* The button: find the plugin, open the jobs, sign each (one approval for a batch),
   * report each result in the page's live region, then reload. */
  function run(button) {
    var url = button.dataset.signerUrl, fn = button.dataset.signerFunction;
    var ids = button.dataset.ids.split(",").map(Number);
    var status = document.getElementById(button.dataset.status);
    var help = document.getElementById(button.dataset.help);
    var placement = {};
    var page = document.getElementById("place-page"), rect = document.getElementById("place-rect");
    if (page && page.value) { placement.page = Number(page.value); placement.rect = rect.value; }
    function say(text) { status.textContent = text; }
    button.disabled = true;
    say(button.dataset.finding);
    return probe(url, fn).then(function (found) {
      if (!found) {
        help.hidden = false; button.disabled = false; say(button.dataset.missing);
        help.focus();
        return;
      }
      say(button.dataset.preparing);
      return openJobs(button, ids, placement).then(function (data) {
        var batch = data.jobs.length > 1 ? {id: data.batch, size: data.jobs.length} : null;
        var signed = 0, failed = [];
        say(button.dataset.waiting);
        return Promise.all(data.jobs.map(function (job) {
          return signOne(url, fn, job, batch).then(function (answer) {
            if (answer.Status === 0) { signed += 1; } else { failed.push("#" + job.request_id + ": " + (answer.Message || answer.Status)); }
            say(button.dataset.progress.replace("{done}", signed).replace("{total}", data.jobs.length));
          });
        })).then(function () {
          if (failed.length) { say(failed.join("; ")); button.disabled = false; return; }
          say(button.dataset.done);
          window.location.reload();
        });
      });
    }).catch(function (error) { say(error.message); button.disabled = false; });
  }

  /* The token's certificate through the plugin (GetCertInfo), announced to SaoY. */
  function certificate(url, missing) {
    return new Promise(function (resolve, reject) {
      var ws;
      try { ws = new WebSocket(url + "/GetCertInfo"); } catch (e) { reject(e); return; }
      ws.onmessage = function (event) {
        try { resolve(JSON.parse(event.data)); } catch (e) { reject(e); }
        ws.close();
      };
      ws.onerror = function () { reject(new Error(missing)); };
    });
  }

  function registerToken(button) {
    var status = document.getElementById("register-status");
    function say(text) { status.textContent = text; }
    button.disabled = true;
    return certificate(button.dataset.signerUrl, button.dataset.missing).then(function (answer) {
      if (answer.Status !== 0 || !answer.CertBase64) { throw new Error(button.dataset.failed); }
      return fetch(button.dataset.registerToken, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": button.dataset.csrf},
        body: JSON.stringify({certificate: answer.CertBase64})
      });
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.message || r.statusText); }
        say(data.active ? button.dataset.active : button.dataset.done);
      });
    }).catch(function (error) { say(error.message || button.dataset.failed); })
      .then(function () { button.disabled = false; });
  }

  document.addEventListener("click", function (event) {
    var register = event.target.closest("[data-register-token]");
    var button = register ? null : event.target.closest("[data-signer-url]");
    if (register) { event.preventDefault(); registerToken(register); return; }
    if (!button) { return; }
    event.preventDefault();
    run(button);
  });
  window.SaoYSigner = {probe: probe, run: run, registerToken: registerToken};
})();
