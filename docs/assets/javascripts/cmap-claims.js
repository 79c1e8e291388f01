/* Check a whole claim in the browser: paste lines or drop a CSV or JSON Lines file; a worker
 * (cmap-claims-worker.js) decides every line from the checker's data, and this shows the counts by outcome,
 * the errors and the decisions, and offers them as CSV. Nothing is uploaded: the file is read in the page.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var workerUrl = script && script.src ? new URL("cmap-claims-worker.js", script.src).href : null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function table(head, rows) {
    return el("table", {}, [el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { scope: "col" }, [h]); }))]),
      el("tbody", {}, rows.map(function (r) { return el("tr", {}, r.map(function (c) { return el("td", {}, [String(c)]); })); }))]);
  }

  function show(form, result, words) {
    var status = form.querySelector(".cmap-claims-status");
    var out = form.querySelector(".cmap-claims-result");
    if (result.kind === "refused") { status.textContent = result.message; out.hidden = true; return; }
    var decided = Object.keys(result.counts).reduce(function (n, k) { return n + result.counts[k]; }, 0);
    var summary = table(["Outcome", "Lines"], Object.keys(result.counts).map(function (o) {
      return [words[o] || o, result.counts[o]];
    }).concat([["Not decided (errors)", result.errors.length]]));
    summary.className = "cmap-claims-summary";
    Array.prototype.forEach.call(summary.tBodies[0].rows, function (tr, i) {
      var keys = Object.keys(result.counts);
      tr.setAttribute("data-outcome", i < keys.length ? keys[i] : "error");
    });
    var blob = new Blob([result.csv], { type: "text/csv" });
    var link = el("a", { href: URL.createObjectURL(blob), download: "decisions.csv", "class": "md-button cmap-claims-download" },
                  ["Download the decisions (CSV)"]);
    var parts = [el("h2", { id: "claims-summary" }, ["Summary"]), summary,
      el("p", {}, [link, " Decided against release " + result.release + " (policy hash " + result.policy_hash.slice(0, 12)
        + "), in this page: nothing was sent anywhere."])];
    if (result.errors.length) {
      parts.push(el("h2", { id: "claims-errors" }, ["Lines not decided"]));
      parts.push(table(["Line", "Field", "What is wrong"], result.errors.slice(0, 50)));
      if (result.errors.length > 50) parts.push(el("p", {}, ["… and " + (result.errors.length - 50) + " more."]));
    }
    parts.push(el("h2", { id: "claims-lines" }, [result.shown.length < decided ? "The first " + result.shown.length + " lines" : "Every line"]));
    var lines = table(["Line", "Code", "Date", "Modifiers", "Place", "Outcome", "Reasons"], result.shown);
    lines.className = "cmap-claims-lines";
    parts.push(lines);
    out.replaceChildren.apply(out, parts);
    out.hidden = false;
    status.textContent = result.read + " lines read: " + decided + " decided, " + result.errors.length + " not decided.";
  }

  function setup(form) {
    if (form.getAttribute("data-cmap-ready") === "1") return;
    form.setAttribute("data-cmap-ready", "1");
    var words = JSON.parse(form.getAttribute("data-outcome-words"));
    var status = form.querySelector(".cmap-claims-status");
    var text = form.querySelector("textarea");
    var fileInput = form.querySelector("input[type=file]");
    var drop = form.querySelector(".cmap-claims-drop");
    var pendingFile = null;

    function run(body, name) {
      var worker;
      try { worker = new Worker(workerUrl); } catch (e) {
        status.textContent = "This browser cannot check a file here (" + e.message + "): use cmap-policy eval.";
        return Promise.resolve(null);
      }
      status.textContent = "Checking…";
      form.cmapResult = null;
      return new Promise(function (resolve) {
        worker.onmessage = function (event) {
          var m = event.data;
          if (m.kind === "progress") { status.textContent = "Checking… " + m.read + " lines read."; return; }
          worker.terminate();
          show(form, m, words);
          form.cmapResult = m;
          resolve(m);
        };
        worker.onerror = function (e) {
          status.textContent = "The check could not run (" + (e.message || "worker error") + "): use cmap-policy eval.";
          worker.terminate();
          resolve(null);
        };
        worker.postMessage({ text: body, name: name });
      });
    }

    function runFile(file) {
      pendingFile = file;
      status.textContent = "Reading " + file.name + "…";
      form.cmapPending = file.text().then(function (body) { return run(body, file.name); });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (pendingFile && !text.value.trim()) { runFile(pendingFile); return; }
      if (!text.value.trim()) { status.textContent = "Paste claim lines or choose a file first."; return; }
      form.cmapPending = run(text.value, "pasted");
    });
    fileInput.addEventListener("change", function () { if (fileInput.files[0]) { text.value = ""; runFile(fileInput.files[0]); } });
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (event) { event.preventDefault(); drop.classList.add("cmap-claims-over"); });
    });
    drop.addEventListener("dragleave", function () { drop.classList.remove("cmap-claims-over"); });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      drop.classList.remove("cmap-claims-over");
      var file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) { text.value = ""; runFile(file); }
    });
    form.hidden = false;
  }

  window.cmap.onPage(function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-cmap-claims]"), setup);
  });
})();
