// Lead page niceties on top of plain forms (everything works without this file):
// one quick-log form open at a time, the note focused when it opens, Ctrl/⌘+Enter submits.
(function () {
  "use strict";
  document.querySelectorAll(".quick-actions").forEach(function (group) {
    var items = group.querySelectorAll("details");
    items.forEach(function (item) {
      item.addEventListener("toggle", function () {
        if (!item.open) return;
        items.forEach(function (other) { if (other !== item) other.open = false; });
        var field = item.querySelector("textarea, input:not([type=hidden]):not([type=radio])");
        if (field) field.focus();
      });
    });
  });
  document.querySelectorAll(".quick-log-form textarea").forEach(function (area) {
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        area.form.requestSubmit();
      }
    });
  });
  // A second click on a submit button while the page is posting would log the activity twice.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) setTimeout(function () { button.disabled = true; }, 0);
    });
  });
})();
