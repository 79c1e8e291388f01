/* Look a claim line's answer up in the checker's data: shared by the form (cmap-check.js) and the worker that
 * decides a whole claim file (cmap-claims-worker.js), so that both find an answer the same way.
 *
 * The answers were decided at build time by the interpreter (cmap_policy/site/check.py); nothing here restates a
 * rule. ``answer`` finds the date's cell, the front's class and the answer by position; ``expand`` turns the
 * stored answer into the decision's shape; ``readRecord`` reads a line's fields as `cmap-policy eval` reads a
 * line of a file, with the command line's own patterns and messages, carried in the data.
 *
 * Runs in a page (self is window) and in a worker (self is the worker's global): it touches no document.
 */
(function (root) {
  "use strict";

  /** Days since 1970-01-01 of a YYYY-MM-DD text, or null when it is no real date (years 1 to 9999). */
  function dayNumber(text) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
    if (!m) return null;
    var y = +m[1], mo = +m[2], d = +m[3];
    var date = new Date(0);
    date.setUTCFullYear(y, mo - 1, d);
    if (y < 1 || date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
    return Math.round(date.getTime() / 86400000);
  }

  /** The index of the last item whose first day (null: since always) is on or before ``day``. */
  function lastStartingBy(items, day) {
    var lo = 0, hi = items.length - 1, found = 0;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      var start = items[mid][0];
      if (start === null || start <= day) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  /** A pooled value (reasons, citations): numbered in the common file's pool first, then in the chunk's. */
  function pooled(base, own, i) {
    if (base === own) return own[i];
    return i < base.length ? base[i] : own[i - base.length];
  }

  function answer(data, chunk, line) {
    var cell = chunk.cells[lastStartingBy(chunk.cells, line.day)];
    var places = data.places.map(function (p) { return p.code; });
    var posIndex = line.pos === null ? 0 : places.indexOf(line.pos) + 1;  // a place the program does not know: none
    var ctIndex = data.claim_types.map(function (c) { return c.id; }).indexOf(line.claim_type);
    var front = (ctIndex * (places.length + 1) + posIndex) * (1 << data.modifiers.length) + line.mask;
    var map = data.front_maps[data.interval_fronts[cell[1]]];
    var w = data.front_width;
    var found = cell[3][parseInt(map.substr(front * w, w), 36)];
    var rccStandIn = null;
    if (cell[2] !== null) {
      var k = line.rcc === null ? 0 : cell[2].indexOf(line.rcc) + 1;
      if (line.rcc !== null && k === 0) { k = cell[2].length + 1; rccStandIn = line.rcc; }
      found = found[k];
    }
    return expand(data, chunk, chunk.decisions[found], line.code, rccStandIn);
  }

  function expand(data, chunk, d, code, rcc) {
    var base = data.unlisted;
    function fill(text) {
      var out = text.split(data.stand_in.code).join(code);
      return rcc === null ? out : out.split(data.stand_in.rcc).join(rcc);
    }
    function citation(i) {
      if (i < 0) return null;
      var c = pooled(base.citations, chunk.citations, i);
      var s = data.sources[c[0]];
      return { source: c[0], title: s[0], url: s[1], secondary: s[2], section: c[1], note: c[2] };
    }
    var reasons = d.slice(5).map(function (i) {
      var r = pooled(base.reasons, chunk.reasons, i);
      var kind = data.reason_kinds[r[0]];
      return { code: r[0], kind: kind[0], carc: kind[1] || null, message: fill(r[1]), rule: r[2] ? fill(r[2]) : null,
               citation: citation(r[3]) };
    });
    var modality = d[2] < 0 ? null : data.modalities[d[2]];
    return {
      outcome: data.outcomes[d[0]],
      period: d[1] < 0 ? null : chunk.periods[d[1]],
      modality: modality ? modality[0] : null,
      modality_name: modality ? modality[1] : null,
      attestations: d[3].map(function (i) { return { id: data.attestations[i][0], text: data.attestations[i][1] }; }),
      to_confirm: d[4].map(function (c) { return { kind: c[0], guideline: c[1] }; }),
      reasons: reasons,
      release: data.release,
      policy_hash: data.policy_hash
    };
  }

  function say(template, value) { return template.replace("{value}", value); }
  function quoted(value) { return "'" + value + "'"; }

  /** One line of a file (its fields by name, as text) read as `cmap-policy eval` reads it: {line}, or {error}
   * naming the field, or {unread} naming a field the checker's data does not decide by (the command line does). */
  function readRecord(data, record) {
    var fields = {};
    var names = Object.keys(record);
    for (var i = 0; i < names.length; i++) {
      var key = names[i].trim().toLowerCase();
      var name = data.aliases[key] || key;
      if (data.fields.indexOf(name) === -1) return { error: { field: names[i], message: data.messages.unknown } };
      var value = record[names[i]];
      if (value === null || value === undefined) continue;
      if (typeof value !== "string") value = Array.isArray(value) ? value.join(" ") : String(value);
      if (!value.trim()) continue;
      fields[name] = value.trim();
    }
    var msg = data.messages, pat = data.patterns;
    if (fields.code === undefined) return { error: { field: "code", message: msg.missing } };
    if (fields.date === undefined) return { error: { field: "date", message: msg.missing } };
    var code = fields.code.toUpperCase();
    if (!new RegExp(pat.code).test(code)) return { error: { field: "code", message: say(msg.code, quoted(code)) } };
    var claimType = (fields.claim_type || data.claim_types[0].id).toLowerCase();
    var types = data.claim_types.map(function (c) { return c.id; });
    if (types.indexOf(claimType) === -1) return { error: { field: "claim_type", message: say(msg.claim_type, quoted(claimType)) } };
    var pos = fields.pos || null;
    if (pos !== null && /^\d$/.test(pos)) pos = "0" + pos;
    if (pos !== null && !new RegExp(pat.pos).test(pos)) return { error: { field: "pos", message: say(msg.pos, quoted(pos)) } };
    var rcc = fields.rcc || null;
    if (rcc !== null && /^\d{3}$/.test(rcc)) rcc = "0" + rcc;
    if (rcc !== null && !new RegExp(pat.rcc).test(rcc)) return { error: { field: "rcc", message: say(msg.rcc, quoted(rcc)) } };
    var unread = data.unread_fields.filter(function (f) { return fields[f] !== undefined; });
    if (unread.length) return { unread: unread[0] };
    if (!new RegExp(pat.date).test(fields.date)) return { error: { field: "date", message: say(msg.date, quoted(fields.date)) } };
    var day = dayNumber(fields.date);
    if (day === null) return { error: { field: "date", message: say(msg.calendar, fields.date) } };
    var known = data.modifiers.map(function (m) { return m.code; });
    var mods = (fields.modifiers || "").split(/[\s,;:|]+/).filter(Boolean);
    var mask = 0;
    for (var j = 0; j < mods.length; j++) {
      mods[j] = mods[j].toUpperCase();
      if (!new RegExp(pat.modifier).test(mods[j])) return { error: { field: "modifiers", message: say(msg.modifier, quoted(mods[j])) } };
      var k = known.indexOf(mods[j]);
      if (k !== -1) mask |= 1 << k;
    }
    if (mods.length > data.max_modifiers) return { error: { field: "modifiers", message: say(msg.modifiers, String(mods.length)) } };
    return { line: { code: code, date: fields.date, day: day, modifiers: mods, mask: mask, pos: pos, claim_type: claimType,
                     rcc: rcc, line_id: fields.line_id || "", claim_id: fields.claim_id || "" } };
  }

  root.cmapDecide = { dayNumber: dayNumber, lastStartingBy: lastStartingBy, answer: answer, expand: expand,
                      readRecord: readRecord };
})(self);
