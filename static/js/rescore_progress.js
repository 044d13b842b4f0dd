// Rescore job page: poll the job's JSON every second, move the bar, and reload with the figures when it ends.
(function () {
  "use strict";
  var box = document.querySelector("[data-testid='rescore-progress']");
  if (!box || box.dataset.finished === "true") return;
  var labels = JSON.parse(box.dataset.statusLabels || "{}");
  var bar = box.querySelector("progress");

  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (job) {
          bar.value = job.percent;
          box.querySelector("[data-field='status']").textContent = labels[job.status] || job.status;
          box.querySelector("[data-field='rows']").textContent = job.processed + " / " + job.total;
          if (job.status === "done" || job.status === "failed") {
            window.location.reload();
            return;
          }
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }

  window.setTimeout(poll, 1000);
})();
