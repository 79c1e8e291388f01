/* Decide every line of a claim file in a worker, off the page's thread, with nothing sent anywhere.
 *
 * The page (cmap-claims.js) posts the file's text and name; this reads it as `cmap-policy eval` reads a CSV or
 * JSON Lines file (a CSV header names the fields; a line is numbered by its physical line, the header being
 * line 1; blank lines are skipped; a CSV value closes its quote on its own line), finds each line's answer in
 * the checker's data with cmap-decide.js (the interpreter's decisions, written at build time) and posts back the
 * counts by outcome, the errors and the decisions as CSV, in the columns of `cmap-policy eval -o file.csv`.
 */
/* global importScripts, cmapDecide */
self.window = self;  // the data files hand their value to window.CMAP_CHECK_DATA
importScripts("cmap-decide.js", "../check/data.js");

var DATA = self.CMAP_CHECK_DATA.filter(function (p) { return p.kind === "common"; })[0];
var CHUNKS = {};
var PROGRESS_EVERY = 5000;

/** A code's answers: loaded on first use (importScripts is synchronous in a worker). */
function chunkFor(code) {
  if (DATA.codes.indexOf(code) === -1) return DATA.unlisted;
  if (!CHUNKS[code]) {
    importScripts("../check/codes/" + code + ".js");
    self.CMAP_CHECK_DATA.forEach(function (p) { if (p.kind === "code") CHUNKS[p.code] = p; });
    self.CMAP_CHECK_DATA.length = 0;
  }
  return CHUNKS[code];
}

/** A CSV line's values, or a message when a quote does not close on it. */
function csvValues(text) {
  var out = [], value = "", quoted = false, i = 0, started = false;
  for (; i < text.length; i++) {
    var ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { value += '"'; i++; }
      else if (ch === '"') quoted = false;
      else value += ch;
    } else if (ch === '"' && !started) { quoted = true; started = true; }
    else if (ch === ",") { out.push(value); value = ""; started = false; }
    else { value += ch; started = true; }
  }
  if (quoted) return "a quoted value does not close its quote on this line";
  out.push(value);
  return out;
}

function csvCell(value) {
  var text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

/** The lines of the text as [number, record] or [number, {error}], the format told by the name or the text. */
function* records(text, name) {
  var lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  var jsonl = /\.(jsonl|ndjson)$/i.test(name) || (!/\.csv$/i.test(name) && /^\s*\{/.test(text.replace(/^\uFEFF/, "")));
  var header = null;
  for (var i = 0; i < lines.length; i++) {
    var number = i + 1, line = lines[i];
    if (!line.trim()) continue;
    if (jsonl) {
      var value;
      try { value = JSON.parse(line); } catch (e) { yield [number, { error: "not JSON: " + e.message }]; continue; }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        yield [number, { error: "expected an object with the line's fields" }];
      } else {
        yield [number, value];
      }
      continue;
    }
    var values = csvValues(line);
    if (header === null) {
      if (typeof values === "string") { yield [number, { error: values, fatal: true }]; return; }
      header = values.map(function (v) { return v.trim().toLowerCase(); });
      continue;
    }
    if (typeof values === "string") { yield [number, { error: values }]; continue; }
    if (values.length !== header.length) {
      yield [number, { error: values.length + " values on a line under a header of " + header.length + " columns" }];
      continue;
    }
    var rec = {};
    header.forEach(function (h, k) { rec[h] = values[k]; });
    yield [number, rec];
  }
}

function decideText(text, name) {
  var counts = {}, errors = [], unread = 0, read = 0;
  DATA.outcomes.forEach(function (o) { counts[o] = 0; });
  var out = ["line,line_id,claim_id,code,date,outcome,reasons,period,modality,release,policy_hash"];
  var shown = [];
  for (var item of records(text, name)) {
    var number = item[0], rec = item[1];
    read += 1;
    if (read % PROGRESS_EVERY === 0) self.postMessage({ kind: "progress", read: read });
    if (typeof rec.error === "string") { errors.push([number, "", rec.error]); continue; }
    var got = cmapDecide.readRecord(DATA, rec);
    if (got.error) { errors.push([number, got.error.field, got.error.message]); continue; }
    if (got.unread) { unread += 1; errors.push([number, got.unread, "not decided here: the " + got.unread
      + " field changes the decision and only `cmap-policy eval` reads it"]); continue; }
    var l = got.line;
    var chunk = chunkFor(l.code);
    var d = cmapDecide.answer(DATA, chunk, l);
    counts[d.outcome] += 1;
    var reasons = d.reasons.map(function (r) { return r.code; }).join(" ");
    out.push([number, l.line_id, l.claim_id, l.code, l.date, d.outcome, reasons, d.period ? d.period.id : "",
              d.modality || "", d.release, d.policy_hash].map(csvCell).join(","));
    if (shown.length < 200) shown.push([number, l.code, l.date, l.modifiers.join(" "), l.pos || "", d.outcome, reasons]);
  }
  return { kind: "done", read: read, counts: counts, errors: errors, unread: unread, csv: out.join("\n") + "\n",
           shown: shown, release: DATA.release, policy_hash: DATA.policy_hash };
}

self.onmessage = function (event) {
  var name = event.data.name || "";
  if (/\.(837|x12|edi)$/i.test(name) || /^\s*ISA\*/.test(event.data.text)) {
    self.postMessage({ kind: "refused", message: "An X12 837 file is read by the command line only: "
      + "`cmap-policy eval " + name + "`. Here, paste or drop a CSV or JSON Lines file." });
    return;
  }
  try {
    self.postMessage(decideText(event.data.text, name));
  } catch (err) {
    self.postMessage({ kind: "refused", message: "The file could not be read: " + err.message });
  }
};
