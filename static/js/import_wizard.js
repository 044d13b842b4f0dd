// Import wizard: when a file is chosen, preview it through the API and let the user map each column.
// Progressive enhancement: without JavaScript the form still uploads with the guessed mapping.
(function () {
  "use strict";
  var form = document.querySelector("[data-testid='import-form']");
  if (!form) return;
  var fileInput = form.querySelector("input[type='file']");
  var mappingInput = form.querySelector("input[name='mapping']");
  var csrf = form.querySelector("input[name='csrfmiddlewaretoken']").value;
  var targets = JSON.parse(document.getElementById("import-targets").textContent);
  var i18n = document.getElementById("import-i18n").dataset;
  var section = document.getElementById("import-preview");
  var mappingRow = document.getElementById("import-mapping-row");
  var headerRow = document.getElementById("import-header-row");
  var body = document.getElementById("import-preview-body");
  var detected = document.getElementById("import-detected");
  var errorBox = document.getElementById("import-preview-error");
  var mapping = {};

  function cell(tag, text) {
    var el = document.createElement(tag);
    el.textContent = text; // never innerHTML: cells are user data
    return el;
  }

  function option(value, label, selected) {
    var el = document.createElement("option");
    el.value = value;
    el.textContent = label;
    el.selected = selected;
    return el;
  }

  function selectFor(header, chosen) {
    var select = document.createElement("select");
    select.className = "import-target";
    select.setAttribute("aria-label", header);
    select.dataset.column = header;
    select.appendChild(option("", i18n.ignore, chosen === ""));
    select.appendChild(option("attr:" + header, i18n.attr + ": " + header, chosen === "attr:" + header));
    if (chosen.indexOf("attr:") === 0 && chosen !== "attr:" + header) {
      select.appendChild(option(chosen, i18n.attr + ": " + chosen.slice(5), true));
    }
    Object.keys(targets).forEach(function (key) {
      select.appendChild(option(key, targets[key], chosen === key));
    });
    select.addEventListener("change", function () {
      mapping[header] = select.value;
      mappingInput.value = JSON.stringify(mapping);
    });
    return select;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function showError(messages) {
    errorBox.textContent = messages.join(" ");
    errorBox.hidden = false;
    section.hidden = true;
    mappingInput.value = "";
  }

  function render(preview) {
    mapping = Object.assign({}, preview.mapping);
    mappingInput.value = JSON.stringify(mapping);
    [mappingRow, headerRow, body].forEach(clear);
    mappingRow.appendChild(cell("th", ""));
    headerRow.appendChild(cell("th", i18n.line));
    preview.headers.forEach(function (header) {
      var th = document.createElement("th");
      th.appendChild(selectFor(header, mapping[header] || ""));
      mappingRow.appendChild(th);
      headerRow.appendChild(cell("th", header));
    });
    preview.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("td", String(row.line)));
      preview.headers.forEach(function (_header, i) {
        tr.appendChild(cell("td", row.cells[i] || ""));
      });
      body.appendChild(tr);
    });
    var delimiter = { ",": ",", ";": ";", "\t": "Tab", "|": "|" }[preview.delimiter] || "—";
    detected.textContent = i18n.detected
      .replace("%(kind)s", preview.kind.toUpperCase())
      .replace("%(encoding)s", preview.encoding || "xlsx")
      .replace("%(delimiter)s", delimiter)
      .replace("%(count)s", String(preview.rows.length));
    errorBox.hidden = true;
    section.hidden = false;
  }

  fileInput.addEventListener("change", function () {
    if (!fileInput.files.length) return;
    var data = new FormData();
    data.append("file", fileInput.files[0]);
    detected.textContent = "…";
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (json) {
          return { ok: response.ok, json: json };
        });
      })
      .then(function (result) {
        detected.textContent = "";
        if (result.ok) {
          render(result.json);
        } else {
          var messages = [];
          Object.keys(result.json).forEach(function (key) {
            messages = messages.concat(result.json[key]);
          });
          showError(messages.length ? messages : [i18n.failed]);
        }
      })
      .catch(function () {
        detected.textContent = "";
        showError([i18n.failed]);
      });
  });
})();
