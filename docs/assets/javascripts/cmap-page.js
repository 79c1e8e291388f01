/* Small fixes to every page, run on load and after each instant-navigation page change.
 *
 * - Wide tables stack on a phone: each cell learns the heading of its column (data-label), so that the
 *   stylesheet can show every row as a card of "heading: value" lines, as the telehealth table does, instead
 *   of hiding columns behind a sideways scroll nobody sees.
 * - The search dialog gets a name (screen readers announce a dialog by it).
 */
(function () {
  "use strict";

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

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll(".md-typeset table:not([class])"), label);
    var search = document.querySelector(".md-search[role=dialog]");
    if (search && !search.getAttribute("aria-label")) search.setAttribute("aria-label", "Search");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  }
})();
