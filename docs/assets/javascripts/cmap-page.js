/* What the site's scripts share (window.cmap), and small fixes to every page. Loaded after cmap-decide.js
 * (whose dayNumber it shares) and before the others.
 *
 * - cmap.onPage(fn): run fn on page load and again whenever Material's document$ emits (it replays on
 *   subscribe, and emits after each instant-navigation page change), so fn must be safe to run twice.
 * - cmap.today(): the reader's today as YYYY-MM-DD, in the reader's time zone: a biller's date of service,
 *   not the site's build date. cmap.dayNumber(text): days since 1970-01-01 of a YYYY-MM-DD text, or null when
 *   it is no real date (years 1 to 9999, as the command line reads dates).
 * - Wide tables stack on a phone: each cell learns the heading of its column (data-label), so that the
 *   stylesheet can show every row as a card of "heading: value" lines, as the telehealth table does, instead
 *   of hiding columns behind a sideways scroll nobody sees.
 * - The search dialog gets a name (screen readers announce a dialog by it).
 * - A link to a folded section (a release on the changelog) opens it.
 * - A section's menu whose label is only an icon is named by its title, and a code block's copy button is not
 *   a landmark of its own (axe: landmark-unique).
 */
(function () {
  "use strict";

  function onPage(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
    if (window.document$ && typeof window.document$.subscribe === "function") {
      window.document$.subscribe(fn);
    }
  }

  function today() {
    var now = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return String(now.getFullYear()).padStart(4, "0") + "-" + two(now.getMonth() + 1) + "-" + two(now.getDate());
  }

  window.cmap = { onPage: onPage, today: today, dayNumber: window.cmapDecide.dayNumber };

  function label(table) {
    if (table.getAttribute("data-cmap-stack") === "1") return;
    var head = table.tHead && table.tHead.rows[0];
    if (!head || !table.tBodies.length) return;
    var names = Array.prototype.map.call(head.cells, function (th) { return th.textContent.trim(); });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      Array.prototype.forEach.call(row.cells, function (td, i) {
        if (names[i]) td.setAttribute("data-label", names[i]);
        // the cell's content in one block, so that the card's two columns are the label and the value
        if (td.childNodes.length > 1) {
          var box = document.createElement("div");
          while (td.firstChild) box.appendChild(td.firstChild);
          td.appendChild(box);
        }
      });
    });
    table.setAttribute("data-cmap-stack", "1");
  }

  function quietCodeNavs(root) {
    Array.prototype.forEach.call(root.querySelectorAll("nav.md-code__nav:not([role])"), function (nav) {
      nav.setAttribute("role", "none");
    });
  }

  onPage(function () {
    Array.prototype.forEach.call(document.querySelectorAll(".md-typeset table:not([class])"), label);
    // Material labels a section's menu by the link of its index page, which holds only an icon: two menus
    // would share an empty name. Name each by its title instead (a landmark needs a name of its own).
    Array.prototype.forEach.call(document.querySelectorAll("nav[aria-labelledby]"), function (nav) {
      var by = document.getElementById(nav.getAttribute("aria-labelledby"));
      var title = nav.querySelector(".md-nav__title");
      if (by && !by.textContent.trim() && title && title.textContent.trim()) {
        nav.removeAttribute("aria-labelledby");
        nav.setAttribute("aria-label", title.textContent.trim());
      }
    });
    // Material wraps each code block's copy button in a nav of no name: one landmark per code block, all alike.
    // A copy button is no place to navigate to; the navs are made plain groups, now and as Material adds them.
    quietCodeNavs(document);
    if (!window.cmapCodeNavs && window.MutationObserver) {
      window.cmapCodeNavs = new MutationObserver(function () { quietCodeNavs(document); });
      window.cmapCodeNavs.observe(document.body, { childList: true, subtree: true });
    }
    // a link to a folded section (a release of the changelog) opens it
    var target = window.location.hash && document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") target.open = true;
    var search = document.querySelector(".md-search[role=dialog]");
    if (search && !search.getAttribute("aria-label")) search.setAttribute("aria-label", "Search");
  });
})();
