"""The same decision in the engines people would otherwise pick: plain Python, AWS Cedar, GoRules ZEN.

Each engine is built from a loaded policy and one release, and decides a line
given as ``Line`` (plain values). Each answers (outcome, reason codes, period
id or None); Cedar does not say which period matched (its answer is the set of
policies that fired), so its period is None and agreement is checked on the
outcome and the reasons.

All three restate the interpreter's rules (``interpreter.decide``) in their own
terms, reasons without their messages: a line the sources do not cover is
undetermined, a warning leaves a line payable. The day line of each code comes
from ``timeline.spans`` (the rows and the gaps, each gap known to be off the
table or not), as the site and ``show`` read it.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, NamedTuple

from cmap_policy.engines.slots import DAY_MAX, DAY_MIN, day_number
from cmap_policy.interpreter import spans
from cmap_policy.model import MAX_AGE, UNSPECIFIED, ClaimLine, Policy
from cmap_policy.reasons import ORDER, REASONS

Answer = tuple[str, tuple[str, ...], "str | None"]
DENY = frozenset(c for c, r in REASONS.items() if r.kind == "deny")
UNDETERMINED = frozenset(c for c, r in REASONS.items() if r.kind == "undetermined")


class Line(NamedTuple):
    code: str
    day: int  # days since 1970-01-01
    modifiers: tuple[str, ...]
    pos: str | None
    claim_type: str
    rcc: str | None
    modality: str | None
    member_age: int | None
    provider_type: str | None
    units: int | None
    established_patient: bool | None

    @classmethod
    def of(cls, ln: ClaimLine) -> Line:
        return cls(ln.code, day_number(ln.date), ln.modifiers, ln.pos, ln.claim_type, ln.rcc, ln.modality,
                   ln.member_age, ln.provider_type, ln.units, ln.established_patient)


def outcome_of(reasons: list[str]) -> Answer:
    """(outcome, reasons in order, no period) of the reasons a telehealth line collected."""
    found = set(reasons)
    ordered = tuple(sorted(reasons, key=ORDER.__getitem__))
    if found & DENY:
        return "not_payable", ordered, None
    if found & UNDETERMINED:
        return "undetermined", ordered, None
    return "payable", tuple(sorted([*reasons, "ON_TELEHEALTH_TABLE"], key=ORDER.__getitem__)), None


# --- the policy of one release as plain values ---

def _days(lo: Any, hi: Any) -> tuple[int, int]:
    return (day_number(lo) if lo is not None else DAY_MIN), (day_number(hi) if hi is not None else DAY_MAX)


@dataclass(frozen=True)
class Span:
    """Days [lo, hi] of one code: a row (``period`` its id) or a gap (known to be off the table, or not)."""

    lo: int
    hi: int
    period: str | None
    known: bool
    permitted: bool
    modalities: frozenset[str]
    undetermined: frozenset[str]
    rccs: frozenset[str]
    # (kind, modalities it applies to, min age, max age, provider types, max units)
    limits: tuple[tuple[str, frozenset[str], int, int, frozenset[str], int | None], ...]
    expect: bool  # a line saying nothing of its delivery is payable either way (only a modifier is expected)


class Tables:
    """What every baseline reads: each code's spans, and the program's dated rules as day ranges."""

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        rel = policy.release(release)
        prog = policy.program
        possible = {m for m, mod in prog.modalities.items() if mod.coverage != "not-covered"}
        self.codes: dict[str, list[Span]] = {}
        for code in policy.views[rel.id]:
            rows = []
            for sp in spans(policy, code, rel.id):
                lo, hi = _days(sp.start, sp.end)
                p = sp.period
                if p is None:
                    rows.append(Span(lo, hi, None, sp.known, False, frozenset(), frozenset(), frozenset(), (),
                                     False))
                    continue
                limits = _limits(p.limits)
                rows.append(Span(lo, hi, p.id, True, p.permitted, frozenset(p.modalities),
                                 frozenset(p.undetermined_modalities), frozenset(p.revenue_center_codes), limits,
                                 possible <= set(p.modalities)))
            self.codes[code] = rows
        whole = policy.complete_from.get(rel.id)
        self.whole_from = day_number(whole) if whole is not None else DAY_MAX + 1
        # modifier -> (modality, claim types, first day, last day), for those that mark telehealth
        self.mods = {m.code: (m.modality, frozenset(m.claim_types), *_days(m.effective, m.end))
                     for m in prog.modifiers.values() if m.marks_telehealth}
        # place of service -> (first day, last day, [(reason, first day, last day)]), for those that mark it
        self.places = {p.code: (*_days(p.effective, p.end),
                                [("POS_NOT_ACCEPTED" if g.kind == "deny" else "POS_GUIDANCE", *_days(g.effective,
                                                                                                      g.end))
                                 for g in p.guidance])
                       for p in prog.places_of_service.values() if p.marks_telehealth}
        self.modalities = list(prog.modalities)
        # the program's era rules: (first day, last day, the modalities they speak of, verdict, limits)
        self.eras = [(*_days(r.effective, r.end), frozenset(r.modalities), r.verdict, _limits(r.limits))
                     for r in prog.era_rules]


def _limits(limits: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple((lim.kind, frozenset(lim.modalities), lim.min_age or 0,
                  lim.max_age if lim.max_age is not None else MAX_AGE, frozenset(lim.provider_types), lim.max_units)
                 for lim in limits)


def _refused(limits: tuple[tuple[Any, ...], ...], ln: Line, modality: str | None, every: bool) -> list[str]:
    """The reasons of the limits a line's own fields break (``every``: also the limits of other modalities)."""
    out = []
    for kind, mods, lo, hi, types, max_units in limits:
        if mods and modality not in mods and not every:
            continue
        if kind == "age":
            if ln.member_age is not None and not lo <= ln.member_age <= hi:
                out.append("AGE_OUTSIDE_LIMIT")
        elif kind == "provider-type":
            if ln.provider_type is not None and ln.provider_type not in types:
                out.append("PROVIDER_TYPE_NOT_ALLOWED")
        elif kind == "established-patient":
            if ln.established_patient is False:
                out.append("ESTABLISHED_PATIENT_REQUIRED")
        elif ln.units is not None and max_units is not None and ln.units > max_units:
            out.append("UNITS_OVER_LIMIT")
    return out


# --- plain Python: dicts and a bisect ---

class PlainPython:
    name = "plain Python (dict + bisect)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        t = Tables(policy, release)
        self.mods, self.places, self.whole_from = t.mods, t.places, t.whole_from
        self.table = {code: ([s.lo for s in rows], rows) for code, rows in t.codes.items()}
        self.eras = t.eras

    def decide(self, ln: Line) -> Answer:
        day = ln.day
        th_mods = [m for m in ln.modifiers if m in self.mods]
        place = self.places.get(ln.pos) if ln.pos is not None else None
        if not th_mods and place is None and ln.modality is None:
            return "not_telehealth", ("NOT_A_TELEHEALTH_LINE",), None
        reasons = []
        signals = {self.mods[m][0] for m in th_mods if self.mods[m][0] is not None}
        if ln.modality is not None:
            signals.add(ln.modality)
        modality = None
        if len(signals) > 1:
            reasons.append("CONFLICTING_MODIFIERS")
        elif signals:
            modality = next(iter(signals))
        for m in th_mods:
            _, types, lo, hi = self.mods[m]
            if not lo <= day <= hi:
                reasons.append("MODIFIER_NOT_IN_EFFECT")
            if ln.claim_type not in types:
                reasons.append("MODIFIER_NOT_FOR_CLAIM_TYPE")
        if place is not None:
            if not place[0] <= day <= place[1]:
                reasons.append("POS_NOT_IN_EFFECT")
            reasons.extend(r for r, lo, hi in place[2] if lo <= day <= hi)
        entry = self.table.get(ln.code)
        period = None
        if entry is None:
            reasons.append("NOT_ON_TELEHEALTH_TABLE" if day >= self.whole_from else "CODE_NOT_IN_DATA")
        else:
            starts, rows = entry
            row = rows[bisect_right(starts, day) - 1]
            period = row.period
            if period is None:
                reasons.append("OUTSIDE_EFFECTIVE_DATES" if row.known else "DATE_NOT_IN_DATA")
            elif not row.permitted:
                reasons.append("NOT_PERMITTED_VIA_TELEHEALTH")
            else:
                if modality is not None and modality in row.undetermined:
                    reasons.append("MODALITY_UNDETERMINED")
                elif modality is not None and modality not in row.modalities:
                    reasons.append("MODALITY_NOT_ALLOWED")
                elif modality is None and not signals:
                    reasons.append("MODIFIER_EXPECTED" if row.expect else "MODALITY_NOT_INDICATED")
                if ln.claim_type == "institutional" and row.rccs:
                    if ln.rcc is None:
                        reasons.append("RCC_REQUIRED")
                    elif ln.rcc not in row.rccs:
                        reasons.append("RCC_NOT_ALLOWED")
                reasons.extend(_refused(row.limits, ln, modality, every=False))
        if self.eras and (period is None or (modality is not None and modality in row.undetermined)):
            reasons.extend(self._eras(ln, modality, set(reasons)))
        outcome, ordered, _ = outcome_of(reasons)
        return outcome, ordered, period


    def _eras(self, ln: Line, modality: str | None, given: set[str]) -> list[str]:
        """What the era rules in force say of a line no row decides (the sources' years before a table)."""
        said: list[str] = []
        for lo, hi, mods, verdict, limits in self.eras:
            if not (lo <= ln.day <= hi and (modality if modality is not None else UNSPECIFIED) in mods):
                continue
            refused = _refused(limits, ln, modality, every=True)
            said += [*(["NOT_PAID_IN_ERA"] if verdict == "deny" else []), *refused,
                     *(["ERA_UNDETERMINED"] if verdict == "undetermined" and not refused else [])]
        return [r for r in said if r not in given]


# --- shared pieces for the rule engines ---

def _modality_groups(policy: Policy) -> dict[str, list[str]]:
    """Each modality and the telehealth modifiers that signal it."""
    groups: dict[str, list[str]] = {m: [] for m in policy.program.modalities}
    for mod in policy.program.modifiers.values():
        if mod.modality is not None and mod.marks_telehealth:
            groups[mod.modality].append(mod.code)
    return groups


def _q(text: str) -> str:
    return json.dumps(text)


def _list(items: Any) -> str:
    return "[" + ", ".join(_q(x) for x in sorted(items)) + "]"


def _request(ln: Line) -> dict[str, Any]:
    """The line as the rule engines read it: no nulls (an absent value is "" or -1)."""
    est = "" if ln.established_patient is None else "true" if ln.established_patient else "false"
    return {"code": ln.code, "day": ln.day, "mods": list(ln.modifiers), "pos": ln.pos or "",
            "claim_type": ln.claim_type, "rcc": ln.rcc or "", "modality": ln.modality or "",
            "age": -1 if ln.member_age is None else ln.member_age, "ptype": ln.provider_type or "",
            "units": -1 if ln.units is None else ln.units, "est": est}


# --- AWS Cedar: one policy per rule and per span of a code; the reasons are the policies that fired ---

class Cedar:
    name = "cedarpy (AWS Cedar)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        import cedarpy

        self._authorize = cedarpy.is_authorized
        t = Tables(policy, release)
        groups = _modality_groups(policy)
        sig = {m: f'(context.mods.containsAny({_list(codes)}) || context.modality == {_q(m)})'
               for m, codes in groups.items()}
        th = (f'(context.mods.containsAny({_list(t.mods)}) || {_list(t.places)}.contains(context.pos) '
              f'|| context.modality != "")')
        names = list(sig)
        conflicting = " || ".join(f"({sig[a]} && {sig[b]})" for i, a in enumerate(names) for b in names[i + 1:])
        single = {m: f"({sig[m]} && !({' || '.join(sig[o] for o in names if o != m) or 'false'}))" for m in names}
        none = f"!({' || '.join(sig.values())})"

        def within(lo: int, hi: int) -> str:
            return f"context.day >= {lo} && context.day <= {hi}"

        def forbid(when: str, res: str = "resource") -> str:
            return f"forbid(principal, action, {res}) when {{ {when} }};"

        policies: list[tuple[str, str]] = [
            ("ALLOW", "permit(principal, action, resource);"),
            ("NOT_A_TELEHEALTH_LINE", forbid(f"!{th}")),
            ("CONFLICTING_MODIFIERS", forbid(f"{th} && ({conflicting})")),
        ]
        for code, (_, types, lo, hi) in t.mods.items():
            has = f"context.mods.contains({_q(code)})"
            if lo > DAY_MIN or hi < DAY_MAX:
                policies.append(("MODIFIER_NOT_IN_EFFECT", forbid(f"{has} && !({within(lo, hi)})")))
            if types != {"professional", "institutional"}:
                policies.append(("MODIFIER_NOT_FOR_CLAIM_TYPE",
                                 forbid(f"{has} && !{_list(types)}.contains(context.claim_type)")))
        for code, (lo, hi, guidance) in t.places.items():
            at = f"context.pos == {_q(code)}"
            if lo > DAY_MIN or hi < DAY_MAX:
                policies.append(("POS_NOT_IN_EFFECT", forbid(f"{at} && !({within(lo, hi)})")))
            for reason, g_lo, g_hi in guidance:
                policies.append((reason, forbid(f"{at} && {within(g_lo, g_hi)}")))
        listed = f"{_list(t.codes)}.contains(context.code)"
        policies.append(("NOT_ON_TELEHEALTH_TABLE", forbid(f"{th} && !{listed} && context.day >= {t.whole_from}")))
        policies.append(("CODE_NOT_IN_DATA", forbid(f"{th} && !{listed} && context.day < {t.whole_from}")))
        common = policies
        by_code: dict[str, list[tuple[str, str]]] = {}
        for code, rows in t.codes.items():
            policies = by_code.setdefault(code, [])
            res = f'resource == Code::{_q(code)}'
            for row in rows:
                when = f"{th} && {within(row.lo, row.hi)}"
                if row.period is None:
                    policies.append(("OUTSIDE_EFFECTIVE_DATES" if row.known else "DATE_NOT_IN_DATA",
                                     forbid(when, res)))
                    continue
                if not row.permitted:
                    policies.append(("NOT_PERMITTED_VIA_TELEHEALTH", forbid(when, res)))
                    continue
                unsure = [single[m] for m in names if m in row.undetermined]
                if unsure:
                    policies.append(("MODALITY_UNDETERMINED", forbid(f"{when} && ({' || '.join(unsure)})", res)))
                wrong = [single[m] for m in names if m not in row.modalities and m not in row.undetermined]
                if wrong:
                    policies.append(("MODALITY_NOT_ALLOWED", forbid(f"{when} && ({' || '.join(wrong)})", res)))
                policies.append(("MODIFIER_EXPECTED" if row.expect else "MODALITY_NOT_INDICATED",
                                 forbid(f"{when} && {none}", res)))
                if row.rccs:
                    inst = f'{when} && context.claim_type == "institutional"'
                    policies.append(("RCC_REQUIRED", forbid(f'{inst} && context.rcc == ""', res)))
                    policies.append(("RCC_NOT_ALLOWED", forbid(f'{inst} && context.rcc != "" && '
                                                                f'!{_list(row.rccs)}.contains(context.rcc)', res)))
                for kind, mods, lo_age, hi_age, ptypes, max_units in row.limits:
                    applies = "(" + " || ".join(single[m] for m in sorted(mods)) + ")" if mods else "true"
                    if kind == "age":
                        cond, reason = (f"context.age >= 0 && (context.age < {lo_age} || context.age > {hi_age})",
                                        "AGE_OUTSIDE_LIMIT")
                    elif kind == "provider-type":
                        cond, reason = (f'context.ptype != "" && !{_list(ptypes)}.contains(context.ptype)',
                                        "PROVIDER_TYPE_NOT_ALLOWED")
                    elif kind == "established-patient":
                        cond, reason = 'context.est == "false"', "ESTABLISHED_PATIENT_REQUIRED"
                    else:
                        cond, reason = f"context.units > {max_units}", "UNITS_OVER_LIMIT"
                    policies.append((reason, forbid(f"{when} && {applies} && {cond}", res)))
        # Policy slicing, as Cedar's documentation advises for large stores: each code's request is
        # evaluated against the shared policies and that code's own. Each set is parsed once (parsing
        # is the dominant cost of a call that passes policy text).
        self.sets: dict[str, Any] = {}
        self.reasons: dict[str, dict[str, str]] = {}
        for code in [*by_code, ""]:
            chosen = [*common, *by_code.get(code, [])]
            self.sets[code] = cedarpy.PolicySet.from_str("\n".join(text for _, text in chosen))
            self.reasons[code] = {f"policy{i}": reason for i, (reason, _) in enumerate(chosen)}
        self.count = len(common) + sum(len(v) for v in by_code.values())

    @staticmethod
    def request(ln: Line) -> dict[str, Any]:
        return {"principal": 'Line::"line"', "action": 'Action::"decide"', "resource": f"Code::{_q(ln.code)}",
                "context": _request(ln)}

    def answer(self, result: Any, code: str) -> Answer:
        reason_of = self.reasons[code if code in self.sets else ""]
        fired = [reason_of[p] for p in result.diagnostics.reasons]
        if "NOT_A_TELEHEALTH_LINE" in fired:
            return "not_telehealth", ("NOT_A_TELEHEALTH_LINE",), None
        return outcome_of([r for r in fired if r != "ALLOW"])

    def decide(self, ln: Line) -> Answer:
        return self.answer(self._authorize(self.request(ln), self.sets.get(ln.code, self.sets[""]), []), ln.code)


# --- GoRules ZEN: a decision table of spans, then an expression node for the rules ---

class Zen:
    name = "zen-engine (GoRules)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        import zen

        t = Tables(policy, release)
        rules: list[dict[str, str]] = []
        for code, rows in t.codes.items():
            for row in rows:
                rule = {"_id": f"r{len(rules)}", "i1": _q(code), "i2": f"[{row.lo}..{row.hi}]", "o1": "true",
                        "o2": _q(row.period) if row.period else "null", "o3": "true" if row.permitted else "false",
                        "o4": _list(row.modalities), "o5": _list(row.rccs), "o7": _list(row.undetermined),
                        "o8": "true" if row.known else "false", "o9": "true" if row.expect else "false"}
                rule["o6"] = "[" + ", ".join(
                    f'{{kind: {_q(kind)}, mods: {_list(mods)}, lo: {lo}, hi: {hi}, types: {_list(types)}, '
                    f'units: {units or 0}}}' for kind, mods, lo, hi, types, units in row.limits) + "]"
                rules.append(rule)
        rules.append({"_id": "none", "i1": "", "i2": "", "o1": "false", "o2": "null", "o3": "false", "o4": "[]",
                      "o5": "[]", "o6": "[]", "o7": "[]", "o8": "false", "o9": "false"})
        outputs = [("o1", "listed"), ("o2", "period"), ("o3", "permitted"), ("o4", "modalities"), ("o5", "rccs"),
                   ("o6", "limits"), ("o7", "undetermined"), ("o8", "known"), ("o9", "expect")]
        groups = _modality_groups(policy)
        mod_modality = "{" + ", ".join(f"{_q(c)}: {_q(m) if m else 'null'}" for c, (m, *_) in t.mods.items()) + "}"
        mod_types = "{" + ", ".join(f"{_q(c)}: {_list(types)}" for c, (_, types, *_) in t.mods.items()) + "}"
        names = list(groups)
        has = " + ".join(f'({_q(m)} in $.signals ? 1 : 0)' for m in names)
        pick = " : ".join(f'{_q(m)} in $.signals ? {_q(m)}' for m in names) + ' : ""'

        def lim(kind: str, cond: str, reason: str) -> str:
            return (f'map(filter(seg.limits, #.kind == {_q(kind)} and (len(#.mods) == 0 or $.m in #.mods) and {cond}),'
                    f' {_q(reason)})')

        program = []
        for code, (_, _, lo, hi) in t.mods.items():
            if lo > DAY_MIN or hi < DAY_MAX:
                program.append(f'{_q(code)} in $.thmods and (day < {lo} or day > {hi}) ? ["MODIFIER_NOT_IN_EFFECT"] '
                               ': []')
        for code, (lo, hi, guidance) in t.places.items():
            if lo > DAY_MIN or hi < DAY_MAX:
                program.append(f'pos == {_q(code)} and (day < {lo} or day > {hi}) ? ["POS_NOT_IN_EFFECT"] : []')
            for reason, g_lo, g_hi in guidance:
                program.append(f'pos == {_q(code)} and day >= {g_lo} and day <= {g_hi} ? [{_q(reason)}] : []')
        exprs = [
            ("modmod", mod_modality),
            ("modtypes", mod_types),
            ("thmods", f"filter(mods, # in {_list(t.mods)})"),
            ("th", f'len($.thmods) > 0 or pos in {_list(t.places)} or modality != ""'),
            ("signals", 'filter(flatMap([map($.thmods, $.modmod[#]), [modality]], #), # != null and # != "")'),
            ("n", has),
            ("m", f'$.n == 1 ? ({pick}) : ""'),
            ("ok", "$.th and seg.period != null and seg.permitted"),
            ("reasons", "flatMap([" + ", ".join([
                f'$.th and not seg.listed ? (day >= {t.whole_from} ? ["NOT_ON_TELEHEALTH_TABLE"] : '
                '["CODE_NOT_IN_DATA"]) : []',
                '$.th and seg.listed and seg.period == null ? (seg.known ? ["OUTSIDE_EFFECTIVE_DATES"] : '
                '["DATE_NOT_IN_DATA"]) : []',
                '$.th and seg.period != null and not seg.permitted ? ["NOT_PERMITTED_VIA_TELEHEALTH"] : []',
                '$.th and $.n > 1 ? ["CONFLICTING_MODIFIERS"] : []',
                '$.ok and $.m != "" and $.m in seg.undetermined ? ["MODALITY_UNDETERMINED"] : []',
                '$.ok and $.m != "" and not ($.m in seg.undetermined) and not ($.m in seg.modalities) ? '
                '["MODALITY_NOT_ALLOWED"] : []',
                '$.ok and $.n == 0 ? (seg.expect ? ["MODIFIER_EXPECTED"] : ["MODALITY_NOT_INDICATED"]) : []',
                'map(filter($.thmods, not (claim_type in $.modtypes[#])), "MODIFIER_NOT_FOR_CLAIM_TYPE")',
                *program,
                '$.ok and claim_type == "institutional" and len(seg.rccs) > 0 and rcc == "" ? ["RCC_REQUIRED"] : []',
                '$.ok and claim_type == "institutional" and len(seg.rccs) > 0 and rcc != "" and '
                'not (rcc in seg.rccs) ? ["RCC_NOT_ALLOWED"] : []',
                "$.ok ? " + lim("age", "age >= 0 and (age < #.lo or age > #.hi)", "AGE_OUTSIDE_LIMIT") + " : []",
                "$.ok ? " + lim("provider-type", 'ptype != "" and not (ptype in #.types)', "PROVIDER_TYPE_NOT_ALLOWED")
                + " : []",
                "$.ok ? " + lim("established-patient", 'est == "false"', "ESTABLISHED_PATIENT_REQUIRED") + " : []",
                "$.ok ? " + lim("units-per-day", "units >= 0 and units > #.units", "UNITS_OVER_LIMIT") + " : []",
            ]) + "], #)"),
            ("outcome", f'not $.th ? "not_telehealth" : len(filter($.reasons, # in {_list(DENY)})) > 0 ? '
                        f'"not_payable" : len(filter($.reasons, # in {_list(UNDETERMINED)})) > 0 ? "undetermined" '
                        ': "payable"'),
            ("period", "$.th ? seg.period : null"),
        ]
        jdm = {
            "nodes": [
                {"id": "in", "type": "inputNode", "name": "line", "position": {"x": 0, "y": 0}},
                {"id": "table", "type": "decisionTableNode", "name": "segments", "position": {"x": 200, "y": 0},
                 "content": {"hitPolicy": "first", "passThrough": True,
                             "inputs": [{"id": "i1", "name": "code", "field": "code"},
                                        {"id": "i2", "name": "day", "field": "day"}],
                             "outputs": [{"id": o, "name": n, "field": f"seg.{n}"} for o, n in outputs],
                             "rules": rules}},
                {"id": "rules", "type": "expressionNode", "name": "rules", "position": {"x": 400, "y": 0},
                 "content": {"expressions": [{"id": f"x{i}", "key": k, "value": v} for i, (k, v) in enumerate(exprs)]}},
                {"id": "out", "type": "outputNode", "name": "decision", "position": {"x": 600, "y": 0}},
            ],
            "edges": [{"id": "e1", "sourceId": "in", "targetId": "table", "type": "edge"},
                      {"id": "e2", "sourceId": "table", "targetId": "rules", "type": "edge"},
                      {"id": "e3", "sourceId": "rules", "targetId": "out", "type": "edge"}],
        }
        self.decision = zen.ZenEngine().create_decision(json.dumps(jdm))
        self.rows = len(rules)

    request = staticmethod(_request)

    @staticmethod
    def answer(out: Any) -> Answer:
        r = out["result"]
        if r["outcome"] == "not_telehealth":
            return "not_telehealth", ("NOT_A_TELEHEALTH_LINE",), None
        reasons = sorted(r["reasons"], key=ORDER.__getitem__)
        if r["outcome"] == "payable":
            reasons = sorted([*reasons, "ON_TELEHEALTH_TABLE"], key=ORDER.__getitem__)
        return r["outcome"], tuple(reasons), r.get("period")

    def decide(self, ln: Line) -> Answer:
        return self.answer(self.decision.evaluate(self.request(ln)))
