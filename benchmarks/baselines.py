"""The same decision in the engines people would otherwise pick: plain Python, AWS Cedar, GoRules ZEN.

Each engine is built from a loaded policy and one release, and decides a line
given as ``Line`` (plain values). Each answers (outcome, reason codes, period
id or None); Cedar does not say which period matched (its answer is the set of
policies that fired), so its period is None and agreement is checked on the
outcome and the reasons.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from typing import Any, NamedTuple

from cmap_policy.engines.sqlrules import _segments, day_number
from cmap_policy.model import ClaimLine, Policy
from cmap_policy.reasons import ORDER

Answer = tuple[str, tuple[str, ...], "str | None"]


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


# --- plain Python: dicts and a bisect ---

class PlainPython:
    name = "plain Python (dict + bisect)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        rel = policy.release(release)
        prog = policy.program
        self.mods = {m.code: (m.modality, m.claim_types) for m in prog.modifiers.values()}
        self.places = {p.code: (p.marks_telehealth, p.accepted) for p in prog.places_of_service.values()}
        self.table: dict[str, tuple[list[int], list[tuple[Any, ...]]]] = {}
        for code, view in policy.views[rel.id].items():
            rows = [(p.id, day_number(p.end) if p.end else None, p.permitted, frozenset(p.modalities),
                     frozenset(p.revenue_center_codes),
                     tuple((lim.kind, frozenset(lim.modalities), lim.min_age if lim.min_age is not None else 0,
                            lim.max_age if lim.max_age is not None else 200, frozenset(lim.provider_types),
                            lim.max_units) for lim in p.limits)) for p in view.periods]
            self.table[code] = ([day_number(p.effective) for p in view.periods], rows)

    def decide(self, ln: Line) -> Answer:
        th_mods = [m for m in ln.modifiers if m in self.mods]
        place = self.places.get(ln.pos) if ln.pos is not None else None
        pos_th = place is not None and place[0]
        if not th_mods and not pos_th and ln.modality is None:
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
        else:
            reasons.append("MODALITY_NOT_INDICATED")
        for m in th_mods:
            if ln.claim_type not in self.mods[m][1]:
                reasons.append("MODIFIER_NOT_FOR_CLAIM_TYPE")
        if pos_th and place is not None and not place[1]:
            reasons.append("POS_NOT_ACCEPTED")
        entry = self.table.get(ln.code)
        period = None
        if entry is None:
            reasons.append("NOT_ON_TELEHEALTH_TABLE")
        else:
            starts, rows = entry
            i = bisect_right(starts, ln.day) - 1
            row = rows[i] if i >= 0 else None
            if row is None or (row[1] is not None and ln.day > row[1]):
                reasons.append("OUTSIDE_EFFECTIVE_DATES")
            else:
                period = row[0]
                if not row[2]:
                    reasons.append("NOT_PERMITTED_VIA_TELEHEALTH")
                else:
                    if modality is not None and modality not in row[3]:
                        reasons.append("MODALITY_NOT_ALLOWED")
                    if ln.claim_type == "institutional" and row[4]:
                        if ln.rcc is None:
                            reasons.append("RCC_REQUIRED")
                        elif ln.rcc not in row[4]:
                            reasons.append("RCC_NOT_ALLOWED")
                    for kind, mods, lo, hi, types, max_units in row[5]:
                        if mods and modality not in mods:
                            continue
                        if kind == "age":
                            if ln.member_age is not None and not lo <= ln.member_age <= hi:
                                reasons.append("AGE_OUTSIDE_LIMIT")
                        elif kind == "provider-type":
                            if ln.provider_type is not None and ln.provider_type not in types:
                                reasons.append("PROVIDER_TYPE_NOT_ALLOWED")
                        elif kind == "established-patient":
                            if ln.established_patient is False:
                                reasons.append("ESTABLISHED_PATIENT_REQUIRED")
                        elif ln.units is not None and max_units is not None and ln.units > max_units:
                            reasons.append("UNITS_OVER_LIMIT")
        if not reasons:
            return "payable", ("ON_TELEHEALTH_TABLE",), period
        reasons.sort(key=ORDER.__getitem__)
        return "not_payable", tuple(reasons), period


# --- shared pieces for the rule engines ---

def _modality_groups(policy: Policy) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {m: [] for m in policy.program.modalities}
    for mod in policy.program.modifiers.values():
        if mod.modality is not None:
            groups[mod.modality].append(mod.code)
    return groups


def _q(text: str) -> str:
    return json.dumps(text)


def _list(items: Any) -> str:
    return "[" + ", ".join(_q(x) for x in items) + "]"


# --- AWS Cedar: one policy per rule and per table row; the reasons are the policies that fired ---

class Cedar:
    name = "cedarpy (AWS Cedar)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        import cedarpy

        self._authorize = cedarpy.is_authorized
        rel = policy.release(release)
        prog = policy.program
        groups = _modality_groups(policy)
        sig = {m: f'(context.mods.containsAny({_list(codes)}) || context.modality == {_q(m)})'
               for m, codes in groups.items()}
        th_pos = [p.code for p in prog.places_of_service.values() if p.marks_telehealth]
        th = (f'(context.mods.containsAny({_list(prog.modifiers)}) || {_list(th_pos)}.contains(context.pos) '
              f'|| context.modality != "")')
        names = list(sig)
        conflicting = " || ".join(f"({sig[a]} && {sig[b]})" for i, a in enumerate(names) for b in names[i + 1:])
        single = {m: f"({sig[m]} && !({' || '.join(sig[o] for o in names if o != m) or 'false'}))" for m in names}
        policies: list[tuple[str, str]] = [
            ("ALLOW", "permit(principal, action, resource);"),
            ("NOT_A_TELEHEALTH_LINE", f"forbid(principal, action, resource) when {{ !{th} }};"),
            ("CONFLICTING_MODIFIERS", f"forbid(principal, action, resource) when {{ {th} && ({conflicting}) }};"),
            ("MODALITY_NOT_INDICATED",
             f"forbid(principal, action, resource) when {{ {th} && !({' || '.join(sig.values())}) }};"),
        ]
        for mod in prog.modifiers.values():
            if set(mod.claim_types) != {"professional", "institutional"}:
                policies.append(("MODIFIER_NOT_FOR_CLAIM_TYPE",
                                 f"forbid(principal, action, resource) when {{ context.mods.contains({_q(mod.code)}) "
                                 f"&& !{_list(mod.claim_types)}.contains(context.claim_type) }};"))
        bad_pos = [p.code for p in prog.places_of_service.values() if p.marks_telehealth and not p.accepted]
        if bad_pos:
            policies.append(("POS_NOT_ACCEPTED",
                             f"forbid(principal, action, resource) when {{ {_list(bad_pos)}.contains(context.pos) }};"))
        view = policy.views[rel.id]
        listed = f"{_list(view)}.contains(context.code)"
        policies.append(("NOT_ON_TELEHEALTH_TABLE",
                         f"forbid(principal, action, resource) when {{ {th} && !{listed} }};"))
        common = policies
        by_code: dict[str, list[tuple[str, str]]] = {}
        for code, v in view.items():
            policies = by_code.setdefault(code, [])
            res = f'resource == Code::{_q(code)}'
            covered = []
            for lo, hi, p in _segments(v.periods):
                if p is None:
                    continue
                inside = f"context.day >= {lo} && context.day <= {hi}"
                covered.append(f"({inside})")
                when = f"{th} && {inside}"
                if not p.permitted:
                    policies.append(("NOT_PERMITTED_VIA_TELEHEALTH",
                                     f"forbid(principal, action, {res}) when {{ {when} }};"))
                    continue
                wrong = [single[m] for m in names if m not in p.modalities]
                if wrong:
                    policies.append(("MODALITY_NOT_ALLOWED",
                                     f"forbid(principal, action, {res}) when {{ {when} && ({' || '.join(wrong)}) }};"))
                if p.revenue_center_codes:
                    inst = f'{when} && context.claim_type == "institutional"'
                    policies.append(("RCC_REQUIRED",
                                     f'forbid(principal, action, {res}) when {{ {inst} && context.rcc == "" }};'))
                    policies.append(("RCC_NOT_ALLOWED",
                                     f'forbid(principal, action, {res}) when {{ {inst} && context.rcc != "" && '
                                     f'!{_list(p.revenue_center_codes)}.contains(context.rcc) }};'))
                for lim in p.limits:
                    applies = "(" + " || ".join(single[m] for m in lim.modalities) + ")" if lim.modalities else "true"
                    if lim.kind == "age":
                        lo_age = lim.min_age if lim.min_age is not None else 0
                        hi_age = lim.max_age if lim.max_age is not None else 200
                        cond, reason = (f"context.age >= 0 && (context.age < {lo_age} || context.age > {hi_age})",
                                        "AGE_OUTSIDE_LIMIT")
                    elif lim.kind == "provider-type":
                        cond, reason = (f'context.ptype != "" && !{_list(lim.provider_types)}.contains(context.ptype)',
                                        "PROVIDER_TYPE_NOT_ALLOWED")
                    elif lim.kind == "established-patient":
                        cond, reason = 'context.est == "false"', "ESTABLISHED_PATIENT_REQUIRED"
                    else:
                        cond, reason = f"context.units > {lim.max_units}", "UNITS_OVER_LIMIT"
                    policies.append((reason, f"forbid(principal, action, {res}) when {{ {when} && {applies} && "
                                             f"{cond} }};"))
            outside = " || ".join(covered) or "false"
            policies.append(("OUTSIDE_EFFECTIVE_DATES",
                             f"forbid(principal, action, {res}) when {{ {th} && !({outside}) }};"))
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
        self._batch = cedarpy.is_authorized_batch
        self.count = len(policies)

    def request(self, ln: Line) -> dict[str, Any]:
        est = "" if ln.established_patient is None else "true" if ln.established_patient else "false"
        return {
            "principal": 'Line::"line"', "action": 'Action::"decide"', "resource": f"Code::{_q(ln.code)}",
            "context": {"code": ln.code, "day": ln.day, "mods": list(ln.modifiers), "pos": ln.pos or "",
                        "claim_type": ln.claim_type, "rcc": ln.rcc or "", "modality": ln.modality or "",
                        "age": -1 if ln.member_age is None else ln.member_age, "ptype": ln.provider_type or "",
                        "units": -1 if ln.units is None else ln.units, "est": est},
        }

    def answer(self, result: Any, code: str) -> Answer:
        reason_of = self.reasons[code if code in self.sets else ""]
        fired = sorted((reason_of[p] for p in result.diagnostics.reasons), key=lambda r: ORDER.get(r, -1))
        if "NOT_A_TELEHEALTH_LINE" in fired:
            return "not_telehealth", ("NOT_A_TELEHEALTH_LINE",), None
        fired = [r for r in fired if r != "ALLOW"]
        return ("not_payable", tuple(fired), None) if fired else ("payable", ("ON_TELEHEALTH_TABLE",), None)

    def decide(self, ln: Line) -> Answer:
        return self.answer(self._authorize(self.request(ln), self.sets.get(ln.code, self.sets[""]), []), ln.code)


# --- GoRules ZEN: a decision table of table rows, then an expression node for the rules ---

class Zen:
    name = "zen-engine (GoRules)"

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        import zen

        rel = policy.release(release)
        prog = policy.program
        rules = []
        for code, v in policy.views[rel.id].items():
            for lo, hi, p in _segments(v.periods):
                row = {"_id": f"r{len(rules)}", "i1": _q(code), "i2": f"[{lo}..{hi}]", "o1": "true"}
                if p is None:
                    row.update({"o2": "null", "o3": "false", "o4": "[]", "o5": "[]", "o6": "[]"})
                else:
                    limits = ", ".join(
                        f'{{kind: {_q(lim.kind)}, mods: {_list(lim.modalities)}, '
                        f'lo: {lim.min_age if lim.min_age is not None else 0}, '
                        f'hi: {lim.max_age if lim.max_age is not None else 200}, '
                        f'types: {_list(lim.provider_types)}, units: {lim.max_units or 0}}}' for lim in p.limits)
                    row.update({"o2": _q(p.id), "o3": "true" if p.permitted else "false",
                                "o4": _list(p.modalities), "o5": _list(p.revenue_center_codes), "o6": f"[{limits}]"})
                rules.append(row)
        rules.append({"_id": "none", "i1": "", "i2": "", "o1": "false", "o2": "null", "o3": "false", "o4": "[]",
                      "o5": "[]", "o6": "[]"})
        outputs = [("o1", "listed"), ("o2", "period"), ("o3", "permitted"), ("o4", "modalities"), ("o5", "rccs"),
                   ("o6", "limits")]
        groups = _modality_groups(policy)
        mod_modality = "{" + ", ".join(f"{_q(m.code)}: {_q(m.modality) if m.modality else 'null'}"
                                       for m in prog.modifiers.values()) + "}"
        mod_types = "{" + ", ".join(f"{_q(m.code)}: {_list(m.claim_types)}" for m in prog.modifiers.values()) + "}"
        th_pos = [p.code for p in prog.places_of_service.values() if p.marks_telehealth]
        bad_pos = [p.code for p in prog.places_of_service.values() if p.marks_telehealth and not p.accepted]
        names = list(groups)
        has = " + ".join(f'({_q(m)} in $.signals ? 1 : 0)' for m in names)
        pick = " : ".join(f'{_q(m)} in $.signals ? {_q(m)}' for m in names) + ' : ""'

        def lim(kind: str, cond: str, reason: str) -> str:
            return (f'map(filter(seg.limits, #.kind == {_q(kind)} and (len(#.mods) == 0 or $.m in #.mods) and {cond}),'
                    f' {_q(reason)})')

        exprs = [
            ("modmod", mod_modality),
            ("modtypes", mod_types),
            ("thmods", f"filter(mods, # in {_list(prog.modifiers)})"),
            ("th", f'len($.thmods) > 0 or pos in {_list(th_pos)} or modality != ""'),
            ("signals", 'filter(flatMap([map($.thmods, $.modmod[#]), [modality]], #), # != null and # != "")'),
            ("n", has),
            ("m", f'$.n == 1 ? ({pick}) : ""'),
            ("ok", "$.th and seg.period != null and seg.permitted"),
            ("reasons", "flatMap([" + ", ".join([
                '$.th and not seg.listed ? ["NOT_ON_TELEHEALTH_TABLE"] : []',
                '$.th and seg.period != null and not seg.permitted ? ["NOT_PERMITTED_VIA_TELEHEALTH"] : []',
                '$.th and seg.listed and seg.period == null ? ["OUTSIDE_EFFECTIVE_DATES"] : []',
                '$.th and $.n > 1 ? ["CONFLICTING_MODIFIERS"] : []',
                '$.th and $.n == 0 ? ["MODALITY_NOT_INDICATED"] : []',
                '$.ok and $.m != "" and not ($.m in seg.modalities) ? ["MODALITY_NOT_ALLOWED"] : []',
                'map(filter($.thmods, not (claim_type in $.modtypes[#])), "MODIFIER_NOT_FOR_CLAIM_TYPE")',
                f'pos in {_list(bad_pos)} ? ["POS_NOT_ACCEPTED"] : []',
                '$.ok and claim_type == "institutional" and len(seg.rccs) > 0 and rcc == "" ? ["RCC_REQUIRED"] : []',
                '$.ok and claim_type == "institutional" and len(seg.rccs) > 0 and rcc != "" and '
                'not (rcc in seg.rccs) ? ["RCC_NOT_ALLOWED"] : []',
                "$.ok ? " + lim("age", "age >= 0 and (age < #.lo or age > #.hi)", "AGE_OUTSIDE_LIMIT") + " : []",
                "$.ok ? " + lim("provider-type", 'ptype != "" and not (ptype in #.types)', "PROVIDER_TYPE_NOT_ALLOWED")
                + " : []",
                "$.ok ? " + lim("established-patient", 'est == "false"', "ESTABLISHED_PATIENT_REQUIRED") + " : []",
                "$.ok ? " + lim("units-per-day", "units >= 0 and units > #.units", "UNITS_OVER_LIMIT") + " : []",
            ]) + "], #)"),
            ("outcome", 'not $.th ? "not_telehealth" : len($.reasons) > 0 ? "not_payable" : "payable"'),
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

    @staticmethod
    def request(ln: Line) -> dict[str, Any]:
        est = "" if ln.established_patient is None else "true" if ln.established_patient else "false"
        return {"code": ln.code, "day": ln.day, "mods": list(ln.modifiers), "pos": ln.pos or "",
                "claim_type": ln.claim_type, "rcc": ln.rcc or "", "modality": ln.modality or "",
                "age": -1 if ln.member_age is None else ln.member_age, "ptype": ln.provider_type or "",
                "units": -1 if ln.units is None else ln.units, "est": est}

    @staticmethod
    def answer(out: dict[str, Any]) -> Answer:
        r = out["result"]
        if r["outcome"] == "not_telehealth":
            return "not_telehealth", ("NOT_A_TELEHEALTH_LINE",), None
        if r["outcome"] == "payable":
            return "payable", ("ON_TELEHEALTH_TABLE",), r.get("period")
        return "not_payable", tuple(r["reasons"]), r.get("period")

    def decide(self, ln: Line) -> Answer:
        return self.answer(self.decision.evaluate(self.request(ln)))
