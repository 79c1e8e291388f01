/* Filter and sort the telehealth tables (the table on a date of service, and the full history).
 *
 * Runs on every page load (cmap.onPage, from cmap-page.js), so it must be safe to run twice: each table is
 * set up once and marked. Sorting is tablesort's (vendored under assets/vendor/tablesort); filtering is ours.
 *
 * The date of service is the reader's today unless the address says another (?date=YYYY-MM-DD). On the
 * table page it picks the rows in force that day; on the history page it is what "in force", "ended" and
 * "starting later" are measured against. A row is in force on a date from its effective date to the date it
 * ends on, both included, as its data-effective and data-end say (ISO dates compare as text).
 */
(function () {
  "use strict";

  function words(text) {
    return (text || "").toLowerCase().split(/\s+/).filter(Boolean);
  }

  function stateOn(row, day) {
    var effective = row.getAttribute("data-effective");
    var end = row.getAttribute("data-end");
    if (effective > day) return "later";
    if (end && end < day) return "ended";
    return "in-force";
  }

  function setup(form) {
    if (form.getAttribute("data-cmap-ready") === "1") return;
    var table = document.getElementById(form.getAttribute("data-cmap-for"));
    if (!table || !table.tBodies.length) return;
    form.setAttribute("data-cmap-ready", "1");

    var byDate = table.getAttribute("data-cmap-mode") === "date";
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var input = form.querySelector("[data-cmap-text]");
    var dateInput = form.querySelector("[data-cmap-date]");
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-cmap-filter]"));
    var count = document.getElementById(table.id + "-count");
    var shownEl = count && count.querySelector(".cmap-count-n");
    var totalEl = count && count.querySelector(".cmap-count-m");
    var dateEl = count && count.querySelector(".cmap-count-date");
    var block = table.closest(".cmap-table-block");
    var empty = block && block.querySelector(".cmap-empty");
    var gapNote = document.getElementById(table.id + "-gaps");
    var gaps = JSON.parse((block && block.getAttribute("data-cmap-gaps")) || "{}");

    function apply() {
      var day = window.cmap.dayNumber(dateInput.value) !== null ? dateInput.value : window.cmap.today();
      var query = words(input.value);
      // A query that is exactly a code on the table shows that code alone, not every row whose
      // description happens to mention it.
      var exact = query.length === 1 && rows.some(function (r) {
        return (r.getAttribute("data-code") || "").toLowerCase() === query[0];
      }) ? query[0] : null;
      var shown = 0;
      var total = 0;
      rows.forEach(function (row) {
        var state = stateOn(row, day);
        row.setAttribute("data-state", state);
        var ok = !byDate || state === "in-force";
        if (ok) total += 1;
        if (ok) {
          ok = exact !== null
            ? (row.getAttribute("data-code") || "").toLowerCase() === exact
            : query.every(function (w) { return (row.getAttribute("data-search") || "").indexOf(w) !== -1; });
        }
        selects.forEach(function (sel) {
          if (ok && sel.value) {
            var have = (row.getAttribute("data-" + sel.getAttribute("data-cmap-filter")) || "").split(/\s+/);
            ok = have.indexOf(sel.value) !== -1;
          }
        });
        row.hidden = !ok;
        var mark = row.querySelector(".cmap-state-note");
        if (mark) {
          mark.className = "cmap-state cmap-state-note cmap-state-" + state;
          mark.textContent = state === "ended" ? "ended" : state === "later" ? "starts later" : "";
        }
        if (ok) shown += 1;
      });
      if (shownEl) shownEl.textContent = String(shown);
      if (totalEl) totalEl.textContent = String(byDate ? total : rows.length);
      if (dateEl) dateEl.textContent = day;
      if (empty) {
        empty.hidden = shown !== 0;
        if (shown === 0) empty.textContent = emptyWords(day, input.value.trim());
      }
      follow(day);
      if (gapNote) {
        var silent = Object.keys(gaps).filter(function (code) {
          return gaps[code].some(function (g) { return (g[0] === null || g[0] <= day) && (g[1] === null || day <= g[1]); });
        });
        gapNote.hidden = silent.length === 0;
        gapNote.textContent = silent.length ? "No public source this data holds covers " + day + " for "
          + silent.join(", ") + ": for " + (silent.length === 1 ? "it" : "them")
          + " the answer is undetermined, and the official CMAP Telehealth Table decides." : "";
      }
    }

    /** Why no row shows, in one sentence that says which case applies on the date: a code this data does not
     * hold is not on the table where a release holds the whole table for the date, and undetermined elsewhere. */
    function emptyWords(day, query) {
      var code = query.toUpperCase();
      var whole = block.getAttribute("data-cmap-whole");
      if (!new RegExp(block.getAttribute("data-cmap-code-pattern")).test(code)) {
        return "No row in force on " + day + " matches \u201c" + query + "\u201d with these filters.";
      }
      var held = rows.some(function (r) { return r.getAttribute("data-code") === code; });
      if (held && (gaps[code] || []).some(function (g) { return (g[0] === null || g[0] <= day) && (g[1] === null || day <= g[1]); })) {
        return "No public source this data holds covers " + code + " on " + day + ": its answer is undetermined, "
          + "not a denial, and the official CMAP Telehealth Table decides.";
      }
      if (held) {
        return code + " has no row in force on " + day + " (its rows start later or had ended): it is not payable "
          + "via telehealth on that date; its page gives its history.";
      }
      if (whole && day >= whole) {
        return code + " is not on the telehealth table on " + day + ": this data holds the whole official table "
          + "for that date, so it is not payable via telehealth.";
      }
      return code + " is not in this data, which holds for " + day + " only the rows public sources name: its "
        + "answer is undetermined, not a denial, and the official CMAP Telehealth Table decides.";
    }

    /** The downloads of "this table" follow the date: each points at the export of the rows in force that day. */
    function follow(day) {
      Array.prototype.forEach.call(document.querySelectorAll("[data-cmap-epochs]"), function (p) {
        var epochs = JSON.parse(p.getAttribute("data-cmap-epochs"));
        var first = epochs.filter(function (e) { return e <= day; }).pop() || epochs[0];
        Array.prototype.forEach.call(p.querySelectorAll("a[data-cmap-download]"), function (a) {
          a.href = p.getAttribute("data-cmap-base") + first + "." + a.getAttribute("data-cmap-download");
        });
        Array.prototype.forEach.call(p.querySelectorAll(".cmap-download-date"), function (d) { d.textContent = day; });
      });
    }

    /** Every filter and the date in the address, so that a filtered view can be shared and is restored. */
    function remember() {
      var params = new URLSearchParams(window.location.search);
      params.set("date", dateInput.value);
      if (input.value.trim()) params.set("q", input.value.trim()); else params.delete("q");
      selects.forEach(function (sel) {
        var key = sel.getAttribute("data-cmap-filter");
        if (sel.value) params.set(key, sel.value); else params.delete(key);
      });
      try { window.history.replaceState(null, "", window.location.pathname + "?" + params.toString() + window.location.hash); }
      catch (e) { /* a page opened from disk may refuse */ }
    }

    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) input.value = params.get("q");
    selects.forEach(function (sel) {
      var want = params.get(sel.getAttribute("data-cmap-filter"));
      if (want && Array.prototype.some.call(sel.options, function (o) { return o.value === want; })) sel.value = want;
    });
    dateInput.value = window.cmap.dayNumber(params.get("date")) !== null ? params.get("date") : window.cmap.today();
    input.addEventListener("input", function () { apply(); remember(); });
    dateInput.addEventListener("change", function () { apply(); remember(); });
    selects.forEach(function (sel) { sel.addEventListener("change", function () { apply(); remember(); }); });
    form.addEventListener("reset", function () {
      window.setTimeout(function () { dateInput.value = window.cmap.today(); apply(); remember(); }, 0);
    });
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

  window.cmap.onPage(function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.cmap-filters"), setup);
  });
})();
