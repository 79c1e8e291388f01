/* "What changed since my last visit" on the changelog page (#cmap-since, written by cmap_policy.site.feeds).
 *
 * The date comes from the address (?since=YYYY-MM-DD), else from the reader's last visit, which this script
 * keeps in the browser's localStorage and nowhere else: nothing is sent anywhere. The box shows, code by code,
 * only the changes of releases published after that date. Each visit to the changelog records today as the
 * last visit, after the box has been drawn from the previous one.
 */
(function () {
  "use strict";
  var KEY = "cmap-changelog-last-visit";

  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function remember(day) {
    try { window.localStorage.setItem(KEY, day); } catch (e) { /* private mode: nothing is kept */ }
  }

  function show(box, since) {
    var any = false;
    box.querySelectorAll(".cmap-since-code").forEach(function (section) {
      var shown = 0;
      section.querySelectorAll("li[data-published]").forEach(function (li) {
        var after = li.getAttribute("data-published") > since;
        li.hidden = !after;
        if (after) shown += 1;
      });
      section.hidden = shown === 0;
      if (shown) any = true;
    });
    box.querySelector(".cmap-since-none").hidden = any;
    box.querySelector("input[name=since]").value = since;
    box.hidden = false;
  }

  window.cmap.onPage(function () {
    var box = document.getElementById("cmap-since");
    if (!box || box.getAttribute("data-ready")) return;
    box.setAttribute("data-ready", "1");
    var asked = new URLSearchParams(window.location.search).get("since");
    var since = window.cmap.dayNumber(asked) !== null ? asked : stored();
    if (window.cmap.dayNumber(since) !== null) {
      show(box, since);
    } else {
      box.querySelectorAll(".cmap-since-code").forEach(function (section) { section.hidden = true; });
      box.querySelector(".cmap-since-none").hidden = true;
      box.hidden = false;
    }
    box.querySelector("form").addEventListener("submit", function (event) {
      event.preventDefault();
      var day = box.querySelector("input[name=since]").value;
      if (window.cmap.dayNumber(day) === null) return;
      var url = new URL(window.location.href);
      url.searchParams.set("since", day);
      window.history.replaceState(null, "", url.toString());
      show(box, day);
    });
    remember(window.cmap.today());
  });
})();
