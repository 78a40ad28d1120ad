// The web UI's few behaviours, in a static file so pages can forbid inline scripts (Content-Security-Policy).
// Column chooser: <details class="columns-chooser" data-table="ID"> with checkboxes value=column key; cells
// carry data-col="key". The choice is remembered per table in localStorage.
(function () {
  "use strict";
  function apply(table, hidden) {
    table.querySelectorAll("[data-col]").forEach(function (cell) {
      cell.classList.toggle("hide-col", hidden.indexOf(cell.getAttribute("data-col")) !== -1);
    });
  }
  function chooser(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table) return;
    var key = "otkuda.columns." + box.getAttribute("data-table");
    var hidden = [];
    try { hidden = JSON.parse(window.localStorage.getItem(key) || "[]"); } catch (e) { hidden = []; }
    box.querySelectorAll("input[type=checkbox]").forEach(function (input) {
      input.checked = hidden.indexOf(input.value) === -1;
      input.addEventListener("change", function () {
        hidden = Array.prototype.filter.call(box.querySelectorAll("input[type=checkbox]"), function (i) {
          return !i.checked;
        }).map(function (i) { return i.value; });
        try { window.localStorage.setItem(key, JSON.stringify(hidden)); } catch (e) { /* private mode */ }
        apply(table, hidden);
      });
    });
    apply(table, hidden);
  }
  function backLinks() {
    document.querySelectorAll("a[data-back]").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        if (window.history.length > 1) { ev.preventDefault(); window.history.back(); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("details.columns-chooser").forEach(chooser);
    backLinks();
  });
})();
