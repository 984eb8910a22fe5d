// Live progress of a background job: polls the element's data-job-status-url once a second, moves the
// <progress> bar, and reloads the page when the job reaches a state the server renders differently
// (preview ready, done, failed). No inline script or style: the CSP forbids both.
(function () {
  "use strict";
  var box = document.querySelector("[data-job-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-job-status-url");
  var bar = box.querySelector("progress");
  var percent = box.querySelector("[data-testid=job-percent]");
  var rows = box.querySelector("[data-testid=job-rows-done]");
  var state = document.querySelector("[data-testid=job-state]");
  var initial = document.querySelector("[data-testid=roster-job]").getAttribute("data-state");

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { return; }
        if (job.state !== "uploaded" && job.state !== "validating") {  // the dry run's bar has no number
          bar.value = job.percent;
          bar.textContent = job.percent + "%";
          percent.textContent = job.percent + "%";
          rows.textContent = job.rows_done;
        }
        state.textContent = job.state_label;
        if (job.state !== initial && (job.finished || job.state === "validated")) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
