// Import job page: poll the job's JSON every second and move the progress bar and counters until it ends.
(function () {
  "use strict";
  var box = document.querySelector("[data-testid='import-progress']");
  if (!box) return;
  var i18n = document.getElementById("import-i18n").dataset;
  var bar = box.querySelector("progress");
  var FINAL = ["done", "failed", "undone"];

  function field(name) {
    return box.querySelector("[data-field='" + name + "']");
  }

  function update(job) {
    bar.value = job.progress;
    field("status_label").textContent = i18n[job.status] || job.status;
    field("rows").textContent = i18n.rows
      .replace("%(processed)s", String(job.processed))
      .replace("%(total)s", String(job.total));
    ["created", "updated", "skipped", "failed"].forEach(function (name) {
      field(name).textContent = String(job[name]);
    });
    var error = field("error");
    error.textContent = job.error || "";
    error.hidden = !job.error;
  }

  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (job) {
        if (job) update(job);
        if (job && FINAL.indexOf(job.status) !== -1) {
          box.dataset.finished = "true";
          window.setTimeout(function () { window.location.reload(); }, 300);
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 2000);
      });
  }

  if (box.dataset.finished !== "true") window.setTimeout(poll, 1000);
})();
