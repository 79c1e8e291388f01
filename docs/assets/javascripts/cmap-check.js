/* Check a claim line in the browser, offline, and show a code's status on any date.
 *
 * The answers were decided at build time by the interpreter itself (cmap_policy/site/check.py wrote them to
 * assets/check/): this script reads the form, finds the answer of the line in that data and shows it. It
 * never restates a rule. What it does on its own is only what any reader of a claim line does: read the
 * fields as the command line reads them (the same patterns and messages, from the data), and find the
 * date's cell, the front's class and the answer by position.
 *
 * The data arrives as scripts (they work from a page opened from disk, where fetching a file is refused):
 * each pushes one value onto window.CMAP_CHECK_DATA. The common file comes first; a listed code's cells
 * are loaded when the code is asked about.
 */
(function () {
  "use strict";

  // --- the data ---------------------------------------------------------------------------------------

  var store = {};
  var waiting = {};
  var queue = (window.CMAP_CHECK_DATA = window.CMAP_CHECK_DATA || []);

  function receive(payload) {
    var key = payload.kind === "common" ? "common" : "code:" + payload.code;
    store[key] = payload;
    (waiting[key] || []).forEach(function (w) { w.resolve(payload); });
    delete waiting[key];
  }
  queue.forEach(receive);
  queue.length = 0;
  queue.push = function (payload) { receive(payload); return 0; };

  var script = document.currentScript;
  var dataBase = script && script.src ? new URL("../check/", script.src).href : null;

  function load(key, file) {
    if (store[key]) return Promise.resolve(store[key]);
    return new Promise(function (resolve, reject) {
      (waiting[key] = waiting[key] || []).push({ resolve: resolve, reject: reject });
      if (document.querySelector('script[data-cmap-check="' + file + '"]')) return;
      var el = document.createElement("script");
      el.src = dataBase + file;
      el.async = true;
      el.setAttribute("data-cmap-check", file);
      el.onerror = function () {
        (waiting[key] || []).forEach(function (w) { w.reject(new Error("could not load " + file)); });
        delete waiting[key];
        el.remove();
      };
      document.head.appendChild(el);
    });
  }

  function common() { return load("common", "data.js"); }

  function chunkFor(data, code) {
    if (data.codes.indexOf(code) === -1) return Promise.resolve(data.unlisted);
    return load("code:" + code, "codes/" + code + ".js");
  }

  // --- dates ------------------------------------------------------------------------------------------

  var dayNumber = window.cmap.dayNumber;
  var today = window.cmap.today;

  // --- reading the line ------------------------------------------------------------------------------

  function say(template, value) { return template.replace("{value}", value); }

  function pad2(n) { return (n.length < 2 ? "0" : "") + n; }

  /** A typed date as YYYY-MM-DD: typed so, or as a biller types it (MM/DD/YYYY, or MMDDYYYY as a date field's
   * keys give it); null when it is neither. Whether it is a real day is for dayNumber to say. */
  function isoDate(text) {
    var m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text);
    if (m) return m[1] + "-" + pad2(m[2]) + "-" + pad2(m[3]);
    m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text) || /^(\d{2})(\d{2})(\d{4})$/.exec(text);
    return m ? m[3] + "-" + pad2(m[1]) + "-" + pad2(m[2]) : null;
  }

  /** Why a date of the right form is no day: the month, or how many days the month has. */
  function impossible(iso) {
    var y = +iso.slice(0, 4), mo = +iso.slice(5, 7);
    if (mo < 1 || mo > 12) return ": there is no month " + mo;
    var days = new Date(Date.UTC(2000, mo, 0)).getUTCDate();
    if (mo === 2) days = (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 29 : 28;
    var month = new Date(Date.UTC(2000, mo - 1, 1)).toLocaleString("en-US", { month: "long", timeZone: "UTC" });
    return ": " + month + " " + y + " has " + days + " days";
  }
  function quoted(value) { return "'" + value + "'"; }

  /** The form's fields as a claim line, read as `cmap-policy eval` reads them; or the errors, by field. */
  function readLine(data, form) {
    var errors = {};
    var patterns = data.patterns;
    var msg = data.messages;
    var get = function (name) { var el = form.elements[name]; return el ? el.value.trim() : ""; };
    var code = get("code").toUpperCase();
    if (!code) errors.code = msg.missing_code;
    else if (!new RegExp(patterns.code).test(code)) errors.code = say(msg.code, quoted(code));
    var typed = get("date");
    var date = isoDate(typed);
    var day = null;
    if (!typed) errors.date = msg.missing_date;
    else if (date === null || !new RegExp(patterns.date).test(date)) errors.date = say(msg.date, quoted(typed))
      + " (or MM/DD/YYYY)";
    else if ((day = dayNumber(date)) === null) errors.date = say(msg.calendar, quoted(typed)) + impossible(date);
    var known = data.modifiers.map(function (m) { return m.code; });
    var ticked = {};
    Array.prototype.forEach.call(form.querySelectorAll('input[name="mod"]'), function (box) {
      if (box.checked) ticked[box.value] = true;
    });
    var others = [];
    get("other").split(/[\s,;:|]+/).filter(Boolean).forEach(function (raw) {
      var mod = raw.toUpperCase();
      if (!new RegExp(patterns.modifier).test(mod)) errors.other = say(msg.modifier, quoted(mod));
      else if (known.indexOf(mod) !== -1) ticked[mod] = true;
      else if (others.indexOf(mod) === -1) others.push(mod);
    });
    var modifiers = known.filter(function (m) { return ticked[m]; });
    var mask = 0;
    known.forEach(function (m, i) { if (ticked[m]) mask |= 1 << i; });
    if (modifiers.length + others.length > data.max_modifiers && !errors.other) {
      errors.other = say(msg.modifiers, String(modifiers.length + others.length));
    }
    var pos = get("pos");
    if (/^\d$/.test(pos)) pos = "0" + pos;
    if (pos && !new RegExp(patterns.pos).test(pos)) errors.pos = say(msg.pos, quoted(pos));
    var rcc = get("rcc");
    if (/^\d{3}$/.test(rcc)) rcc = "0" + rcc;
    if (rcc && !new RegExp(patterns.rcc).test(rcc)) errors.rcc = say(msg.rcc, quoted(rcc));
    var claimType = get("claim_type") || data.claim_types[0].id;
    if (Object.keys(errors).length) return { errors: errors };
    return {
      line: {
        code: code, date: date, day: day, modifiers: modifiers.concat(others), mask: mask,
        pos: pos || null, claim_type: claimType, rcc: rcc || null
      }
    };
  }

  // --- looking the answer up: cmap-decide.js, shared with the claim file's worker ---------------------

  var lastStartingBy = window.cmapDecide.lastStartingBy;
  var answer = window.cmapDecide.answer;

  // --- showing it ------------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function describe(line) {
    var parts = [line.code + " on " + line.date];
    if (line.modifiers.length) parts.push("modifiers " + line.modifiers.join(" "));
    if (line.pos) parts.push("place of service " + line.pos);
    parts.push(line.claim_type + " claim");
    if (line.rcc) parts.push("revenue code " + line.rcc);
    return parts.join(", ");
  }

  function command(line) {
    var parts = ["cmap-policy eval", "--code " + line.code, "--date " + line.date];
    line.modifiers.forEach(function (m) { parts.push("--modifier " + m); });
    if (line.pos) parts.push("--pos " + line.pos);
    if (line.claim_type !== "professional") parts.push("--claim-type " + line.claim_type);
    if (line.rcc) parts.push("--rcc " + line.rcc);
    parts.push("--explain");
    return parts.join(" ");
  }

  function modalityNames(data) {
    var names = {};
    data.modalities.forEach(function (m) { names[m[0]] = m[1]; });
    return names;
  }

  /** A row in a biller's words: its dates and what it allows (its id is for the integrators' details). */
  function rowText(data, p) {
    var start = p.start_known ? "From " + p.effective : "In force by " + p.effective + " (its real start is not known)";
    var span = start + (p.end ? " to " + p.end : ", no end date");
    var names = modalityNames(data);
    var what = p.permitted
      ? "payable via telehealth by " + (p.modalities.map(function (m) { return names[m] || m; }).join(" or ") || "no way")
      : "listed as NOT permitted via telehealth";
    if (p.undetermined_modalities.length) {
      what += "; the sources are silent on " + p.undetermined_modalities.map(function (m) { return names[m] || m; }).join(", ");
    }
    return span + ": " + what + ".";
  }

  function either(items) {
    return items.length < 2 ? items.join("") : items.slice(0, -1).join(", ") + " or " + items[items.length - 1];
  }

  /** What to do next: the step of the first reason that has one, else the outcome's, with the modifiers named. */
  function nextStep(data, d) {
    var steps = data.next_steps;
    var found = d.reasons.filter(function (r) { return steps[r.code]; })[0];
    var text = found ? steps[found.code] : steps[d.outcome];
    var ways = d.period ? d.period.modalities : [];
    var names = modalityNames(data);
    var tele = data.modifiers.filter(function (m) { return m.telehealth && m.modality; });
    return text
      .split("{allowed}").join(either(tele.filter(function (m) { return ways.indexOf(m.modality) !== -1; })
        .map(function (m) { return m.code; })) || "a modifier of a way the row allows")
      .split("{allowed_ways}").join(either(ways.map(function (m) { return (names[m] || m).toLowerCase(); })))
      .split("{telehealth}").join(either(tele.map(function (m) { return m.code; })));
  }

  function reasonItem(data, r) {
    var head = [el("span", { "class": "cmap-kind cmap-kind-" + r.kind }, [data.kind_words[r.kind]])];
    if (r.carc) head.push(" · ", el("span", { "class": "cmap-carc" }, ["claim adjustment reason code " + r.carc]));
    var meta = [];
    if (r.citation) {
      var c = r.citation;
      meta.push("Source: ", el("a", { href: c.url, "class": "cmap-reason-source" }, [c.title]));
      if (c.section) meta.push(", " + c.section);
      if (c.note) meta.push(" (" + c.note + ")");
      meta.push(el("span", { "class": "cmap-print-url" }, [" " + c.url]));
      if (c.secondary) meta.push(" · ", el("em", {}, ["secondary source: check the official table"]));
    }
    return el("li", {
      "class": "cmap-reason cmap-kind-" + r.kind, "data-reason": r.code, "data-kind": r.kind,
      "data-carc": r.carc || "", "data-rule": r.rule || "", "data-source": r.citation ? r.citation.source : ""
    }, [el("p", { "class": "cmap-reason-message" }, [r.message]), el("p", { "class": "cmap-reason-head" }, head),
        meta.length ? el("p", { "class": "cmap-reason-meta" }, meta) : null]);
  }

  /** Row ids, reason codes, rules and the command line: for whoever wires the decision into a system. */
  function integratorDetails(form, d, line) {
    var reasonsHref = form.getAttribute("data-reasons-href") || "";
    var items = [];
    if (d.period) items.push(el("li", {}, ["Row: ", el("code", {}, [d.period.id])]));
    d.reasons.forEach(function (r) {
      var parts = ["Reason ", el("a", { href: reasonsHref + "#" + r.code.toLowerCase() }, [el("code", {}, [r.code])])];
      if (r.rule) parts.push(" from ", el("code", {}, [r.rule]));
      items.push(el("li", {}, parts));
    });
    items.push(el("li", {}, ["Policy hash: ", el("code", {}, [d.policy_hash])]));
    items.push(el("li", {}, ["The same on the command line: ", el("code", { "class": "cmap-answer-command" }, [command(line)])]));
    return el("details", { "class": "cmap-integrators" }, [el("summary", {}, ["Details for integrators"]), el("ul", {}, items)]);
  }

  function attestationList(d) {
    var items = d.attestations.map(function (a) { return el("li", { "data-attestation": a.id }, [a.text]); });
    if (d.outcome === "payable") {
      return [el("p", {}, ["The provider must also meet (not checked on the claim):"]),
              el("ul", { "class": "cmap-attestations" }, items)];
    }
    // Folded where the line is not payable as it stands: they matter once it is billed.
    return [el("details", { "class": "cmap-attestations-folded" }, [
      el("summary", {}, ["What the provider must meet if the line is billed (" + items.length + ")"]),
      el("ul", { "class": "cmap-attestations" }, items)])];
  }

  function show(form, data, line, d) {
    var out = form.querySelector(".cmap-check-answer");
    var status = form.querySelector(".cmap-check-status");
    var box = el("div", {
      "class": "cmap-answer cmap-outcome-" + d.outcome, "data-outcome": d.outcome, "tabindex": "-1",
      "data-period": d.period ? d.period.id : "", "data-modality": d.modality || "", "data-release": d.release
    });
    box.appendChild(el("p", { "class": "cmap-record-head" }, [
      "Telehealth decision record: " + data.program + ", checked on " + today() + " at " + window.location.href]));
    box.appendChild(el("p", { "class": "cmap-answer-verdict" }, [
      el("span", { "class": "cmap-outcome cmap-outcome-" + d.outcome }, [data.outcome_words[d.outcome]])]));
    box.appendChild(el("p", { "class": "cmap-answer-line" }, ["Claim line: " + describe(line) + "."]));
    var next = nextStep(data, d);
    box.appendChild(el("p", { "class": "cmap-answer-next" }, [el("strong", {}, ["What to do next: "]), next]));
    if (d.modality) {
      box.appendChild(el("p", {}, ["The line is telehealth, delivered by " + d.modality_name + "."]));
    }
    if (d.period) {
      var row = [el("strong", {}, ["The table on " + line.date + ": "]), rowText(data, d.period)];
      if (d.period.guideline) row.push(" Guideline: " + d.period.guideline);
      box.appendChild(el("p", { "class": "cmap-answer-row" }, row));
    }
    box.appendChild(el("p", { "class": "cmap-answer-label" }, ["Why:"]));
    box.appendChild(el("ol", { "class": "cmap-reasons" }, d.reasons.map(function (r) { return reasonItem(data, r); })));
    if (d.to_confirm.length) {
      box.appendChild(el("p", {}, ["The line does not carry what these conditions need; confirm them before billing:"]));
      box.appendChild(el("ul", { "class": "cmap-confirm" }, d.to_confirm.map(function (c) {
        return el("li", { "data-limit": c.kind }, [c.guideline]);
      })));
    }
    if (d.attestations.length && d.outcome !== "not_telehealth") attestationList(d).forEach(function (n) { box.appendChild(n); });
    box.appendChild(el("p", { "class": "cmap-answer-foot" }, [
      "Decided on " + today() + " against release " + d.release + " (policy hash " + d.policy_hash.slice(0, 12)
      + "). Not an official publication: the official CMAP Telehealth Table is the authority."]));
    box.appendChild(integratorDetails(form, d, line));
    out.replaceChildren(box);
    out.hidden = false;
    status.textContent = data.outcome_words[d.outcome] + ". " + line.code + " on " + line.date + ". " + next;
  }

  function showErrors(form, errors) {
    var status = form.querySelector(".cmap-check-status");
    var names = Object.keys(errors);
    Array.prototype.forEach.call(form.querySelectorAll("[data-cmap-error]"), function (p) {
      var name = p.getAttribute("data-cmap-error");
      var input = form.elements[name];
      p.textContent = errors[name] || "";
      p.hidden = !errors[name];
      if (input && input.setAttribute) {
        if (errors[name]) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      }
    });
    if (names.length) {
      form.querySelector(".cmap-check-answer").hidden = true;
      status.textContent = "Not checked: " + names.map(function (n) { return errors[n]; }).join("; ") + ".";
    }
  }

  function share(line, form) {
    var params = new URLSearchParams(window.location.search);
    var pageCode = form.getAttribute("data-code");
    ["code", "date", "mod", "pos", "ct", "rcc"].forEach(function (k) { params.delete(k); });
    if (line.code !== pageCode) params.set("code", line.code);
    params.set("date", line.date);
    if (line.modifiers.length) params.set("mod", line.modifiers.join(","));
    if (line.pos) params.set("pos", line.pos);
    if (line.claim_type !== "professional") params.set("ct", line.claim_type);
    if (line.rcc) params.set("rcc", line.rcc);
    var url = window.location.pathname + "?" + params.toString() + "#" + form.id;
    try { window.history.replaceState(null, "", url); } catch (e) { /* a page opened from disk may refuse */ }
  }

  function check(form) {
    return common().then(function (data) {
      var read = readLine(data, form);
      showErrors(form, read.errors || {});
      if (read.errors) return { errors: read.errors };
      return chunkFor(data, read.line.code).then(function (chunk) {
        var d = answer(data, chunk, read.line);
        show(form, data, read.line, d);
        share(read.line, form);
        // the page's other date of service (a code page's status box) follows the line's
        Array.prototype.forEach.call(document.querySelectorAll("[data-cmap-spans]"), function (box) {
          if (box.cmapSetDate) box.cmapSetDate(read.line.date);
        });
        return { line: read.line, decision: d };
      });
    }).catch(function (err) {
      form.querySelector(".cmap-check-status").textContent =
        "The answers could not be loaded (" + err.message + "): use cmap-policy eval instead.";
      return { failed: err.message };
    });
  }

  function fillFromUrl(form) {
    var params = new URLSearchParams(window.location.search);
    var set = function (name, value) { if (value !== null && form.elements[name]) form.elements[name].value = value; };
    set("code", params.get("code"));
    set("date", params.get("date") || today());
    set("pos", params.get("pos"));
    set("rcc", params.get("rcc"));
    if (params.get("ct")) set("claim_type", params.get("ct"));
    var mods = (params.get("mod") || "").split(/[\s,;:|]+/).filter(Boolean).map(function (m) { return m.toUpperCase(); });
    var other = [];
    mods.forEach(function (m) {
      var box = form.querySelector('input[name="mod"][value="' + CSS.escape(m) + '"]');
      if (box) box.checked = true; else other.push(m);
    });
    set("other", other.join(" ") || null);
    return params.has("code") || params.has("mod") || params.has("pos");
  }

  function setupForm(form) {
    if (form.getAttribute("data-cmap-ready") === "1") return;
    form.setAttribute("data-cmap-ready", "1");
    var asked = fillFromUrl(form);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      form.cmapPending = check(form);
    });
    form.addEventListener("reset", function () {
      window.setTimeout(function () {
        if (form.getAttribute("data-code")) form.elements.code.value = form.getAttribute("data-code");
        form.elements.date.value = today();
        showErrors(form, {});
        form.querySelector(".cmap-check-answer").hidden = true;
        form.querySelector(".cmap-check-status").textContent = "";
      }, 0);
    });
    form.hidden = false;
    form.cmapPending = asked ? check(form).then(function (result) {
      // a shared link lands on its answer, not on the top of the page (on a phone the form is long)
      var box = form.querySelector(".cmap-answer");
      if (result.decision && box) box.scrollIntoView({ block: "start" });
      return result;
    }) : common();
  }

  // --- a code's status on any date (the "Today" box of a code page) ----------------------------------

  function setupStatus(box) {
    if (box.getAttribute("data-cmap-ready") === "1") return;
    box.setAttribute("data-cmap-ready", "1");
    var spans = JSON.parse(box.getAttribute("data-cmap-spans"));
    var input = box.querySelector("input[type=date]");
    var title = box.querySelector(".cmap-status-title");
    var detail = box.querySelector(".cmap-status-detail");
    function render() {
      var day = dayNumber(input.value);
      if (day === null) return;
      var span = spans[lastStartingBy(spans, day)];
      box.className = "cmap-status cmap-status-" + span[1];
      box.setAttribute("data-state", span[1]);
      box.setAttribute("data-date", input.value);
      title.textContent = span[2].split("{date}").join(input.value);
      detail.textContent = span[3].split("{date}").join(input.value);
    }
    var params = new URLSearchParams(window.location.search);
    input.value = params.get("date") && dayNumber(params.get("date")) !== null ? params.get("date") : today();
    box.cmapSetDate = function (iso) { input.value = iso; render(); };
    input.addEventListener("change", function () {
      render();
      // the page's checker follows the date picked here: one date of service per page
      Array.prototype.forEach.call(document.querySelectorAll("form[data-cmap-check]"), function (form) {
        if (dayNumber(input.value) === null || !form.elements.date) return;
        form.elements.date.value = input.value;
        if (!form.querySelector(".cmap-check-answer").hidden) form.cmapPending = check(form);
      });
      var p = new URLSearchParams(window.location.search);
      p.set("date", input.value);
      try { window.history.replaceState(null, "", window.location.pathname + "?" + p.toString() + window.location.hash); }
      catch (e) { /* a page opened from disk may refuse */ }
    });
    box.querySelector(".cmap-status-pick").hidden = false;
    render();
  }

  window.cmap.onPage(function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-cmap-check]"), setupForm);
    Array.prototype.forEach.call(document.querySelectorAll("[data-cmap-spans]"), setupStatus);
  });
})();
