/* Filter and sort the telehealth tables (the table in force and the full history).
 *
 * Runs on page load and again whenever Material's document$ emits (it replays on subscribe, and emits
 * after each instant-navigation page change), so it must be safe to run twice: each table is set up once
 * and marked. Sorting is tablesort's (vendored under assets/vendor/tablesort); filtering is ours.
 */
(function () {
  "use strict";

  function words(text) {
    return (text || "").toLowerCase().split(/\s+/).filter(Boolean);
  }

  function setup(form) {
    if (form.getAttribute("data-cmap-ready") === "1") return;
    var table = document.getElementById(form.getAttribute("data-cmap-for"));
    if (!table || !table.tBodies.length) return;
    form.setAttribute("data-cmap-ready", "1");

    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var input = form.querySelector("[data-cmap-text]");
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-cmap-filter]"));
    var count = document.getElementById(table.id + "-count");
    var shownEl = count && count.querySelector(".cmap-count-n");
    var block = table.closest(".cmap-table-block");
    var empty = block && block.querySelector(".cmap-empty");

    function apply() {
      var query = words(input.value);
      // A query that is exactly a code on the table shows that code alone, not every row whose
      // guideline happens to mention it.
      var exact = query.length === 1 && rows.some(function (r) {
        return (r.getAttribute("data-code") || "").toLowerCase() === query[0];
      }) ? query[0] : null;
      var shown = 0;
      rows.forEach(function (row) {
        var ok = exact !== null
          ? (row.getAttribute("data-code") || "").toLowerCase() === exact
          : query.every(function (w) { return (row.getAttribute("data-search") || "").indexOf(w) !== -1; });
        selects.forEach(function (sel) {
          if (ok && sel.value) {
            var have = (row.getAttribute("data-" + sel.getAttribute("data-cmap-filter")) || "").split(/\s+/);
            ok = have.indexOf(sel.value) !== -1;
          }
        });
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      if (shownEl) shownEl.textContent = String(shown);
      if (empty) empty.hidden = shown !== 0;
    }

    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) input.value = params.get("q");
    input.addEventListener("input", apply);
    selects.forEach(function (sel) { sel.addEventListener("change", apply); });
    form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
    form.hidden = false;
    var reset = block && block.querySelector(".cmap-reset");
    if (reset) reset.hidden = false;
    if (typeof window.Tablesort === "function") {
      new window.Tablesort(table);
      // tablesort makes the headings focusable and sorts on Enter; Space should too, as on a button.
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        if (th.getAttribute("data-sort-method") === "none") return;
        th.addEventListener("keydown", function (event) {
          if (event.key === " ") {
            event.preventDefault();
            th.click();
          }
        });
      });
    }
    apply();
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form.cmap-filters"), setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  if (typeof window.document$ !== "undefined" && window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  }
})();
