"""Decision-level changes: one claim line of every class the interpreter can tell apart, on both sides."""

from __future__ import annotations

import datetime as dt
import itertools
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...caches import Cache
from ...errors import DiffError
from ...interpreter import evaluate
from ...model import LIMIT_FIELDS, MAX_AGE, ClaimLine, Decision, Limit, Outcome, Period, Program
from ...reasons import REASONS
from ...timeline import Cell, cells, cut_offs, find_period, known_gap, row_cuts
from .rows import periods_of
from .sides import Side

Signature = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
FrontSig = tuple[bool, str | None, tuple[str, ...]]

NO_DECISION_CHANGES = "no decision changes"
# Modifiers a reader expects to see in an example, in this order; any other modifier comes after.
PREFERRED_MODIFIERS = ("95", "93", "GQ", "G0", "GT", "FQ", "FR")
IN_PERSON_POS = ("11", "22", "12", "49", "99")
UNLISTED_CODES = ("99499", "99199", "T1999", "S9999", "G9999")
OTHER_RCCS = ("0100", "0101", "0110", "0120")
OTHER_PROVIDER_TYPE = "other-provider-type"
# --- decisions: the exhaustive comparison ------------------------------------------------------------------------


def signature(decision: Decision) -> Signature:
    """What a decision decides, without its wording: its summary's outcome and reason codes (each once, in the
    summary's order), and the limits to confirm and attestations, which a summary leaves out. Not its period,
    release or policy hash: the two sides differ in those by nature."""
    summary = decision.summary()
    return (summary.outcome, tuple(dict.fromkeys(summary.reasons)),
            tuple(sorted({lim.kind for lim in decision.to_confirm})),
            tuple(sorted(a.id for a in decision.attestations)))


def signature_dict(sig: Signature) -> dict[str, Any]:
    return {"outcome": sig[0], "reasons": list(sig[1]), "to_confirm": list(sig[2]), "attestations": list(sig[3])}


def _program_key(program: Program) -> tuple[Any, ...]:
    """The parts of the program the interpreter's decisions depend on."""
    return (
        tuple(sorted((m.code, m.modality, tuple(sorted(m.claim_types)), m.marks_telehealth, m.effective, m.end)
                     for m in program.modifiers.values())),
        tuple(sorted((p.code, p.marks_telehealth, p.effective, p.end,
                      tuple((g.kind, g.effective, g.end) for g in p.guidance))
                     for p in program.places_of_service.values())),
        tuple(sorted((m.id, m.coverage) for m in program.modalities.values())),
        tuple(sorted(program.claim_types)),
        tuple(sorted((a.id, a.effective, a.end, a.modalities) for a in program.attestations)),
        tuple((r.id, r.verdict, r.modalities, r.effective, r.end, _limits_key(r.limits)) for r in program.era_rules),
    )


def _front_bounds(p: Program, mods: Iterable[str] | None = None, pos: str | None = None,
                  every_place: bool = False) -> set[dt.date]:
    """The days on which something a line's front reads starts or stops: its modifiers' and its place of
    service's dates in their code sets, and that place's billing guidance (all of them with ``mods=None``)."""
    out: set[dt.date] = set()

    def add(effective: dt.date | None, end: dt.date | None) -> None:
        if effective is not None:
            out.add(effective)
        if end is not None and end < dt.date.max:
            out.add(end + dt.timedelta(days=1))

    for code, m in p.modifiers.items():
        if mods is None or code in mods:
            add(m.effective, m.end)
    for code, place in p.places_of_service.items():
        if every_place or code == pos:
            add(place.effective, place.end)
            for g in place.guidance:
                add(g.effective, g.end)
    return out


@dataclass(frozen=True)
class Front:
    """One class of line fronts: a representative, and what each side's interpreter makes of it."""

    modifiers: tuple[str, ...]
    pos: str | None
    modality: str | None
    claim_type: str
    base: FrontSig
    head: FrontSig


def _front_sig(decision: Decision) -> FrontSig:
    """What the line's front alone decides: telehealth or not, the modality, the line-level reasons."""
    telehealth = decision.outcome is not Outcome.NOT_TELEHEALTH
    line_reasons = tuple(sorted({r for r in decision.reason_codes if REASONS[r].scope == "line"}))
    return telehealth, decision.modality, line_reasons


def _front_label(sig: FrontSig) -> str:
    telehealth, modality, reasons = sig
    if not telehealth:
        return "none"
    if "CONFLICTING_MODIFIERS" in reasons:
        return "conflicting"
    return modality if modality is not None else "unspecified"


def front_label(front: Front) -> str:
    a, b = _front_label(front.base), _front_label(front.head)
    return b if a == b else f"{a} → {b}"


def _unlisted(base: Side, head: Side) -> str:
    taken = set(base.policy.codes) | set(head.policy.codes)
    for code in UNLISTED_CODES:
        if code not in taken:
            return code
    raise DiffError("every stand-in for an unlisted code is on the table")  # pragma: no cover


def _modifier_classes(pa: Program, pb: Program) -> list[str]:
    """One representative modifier per class of modifiers that mean the same on both sides."""
    def attrs(p: Program, code: str) -> tuple[Any, ...] | None:
        m = p.modifiers.get(code)
        return None if m is None else (m.modality, tuple(sorted(m.claim_types)), m.marks_telehealth, m.effective,
                                       m.end)

    def preference(code: str) -> tuple[int, str]:
        return (PREFERRED_MODIFIERS.index(code) if code in PREFERRED_MODIFIERS else len(PREFERRED_MODIFIERS), code)

    reps: dict[tuple[Any, ...], str] = {}
    for code in sorted(set(pa.modifiers) | set(pb.modifiers), key=preference):
        reps.setdefault((attrs(pa, code), attrs(pb, code)), code)
    return list(reps.values())


_FRONTS: Cache[tuple[Any, ...], tuple[Front, ...]] = Cache("diff.fronts")


def fronts(base: Side, head: Side) -> tuple[Front, ...]:
    """Every class of line front that either side can tell apart, simplest representative first."""
    pa, pb = base.policy.program, head.policy.program
    key = (_program_key(pa), _program_key(pb))
    cached = _FRONTS.get(key)
    if cached is not None:
        return cached
    code = _unlisted(base, head)
    classes = _modifier_classes(pa, pb)
    listed_pos = sorted(set(pa.places_of_service) | set(pb.places_of_service))
    in_person = next(p for p in IN_PERSON_POS if p not in listed_pos)
    poses: list[str | None] = [None, in_person, *listed_pos]
    modalities: list[str | None] = [None, *sorted(set(pa.modalities) | set(pb.modalities))]
    claim_types = ["professional", "institutional"]
    claim_types += sorted((set(pa.claim_types) | set(pb.claim_types)) - set(claim_types))
    subsets = [s for n in range(min(4, len(classes)) + 1) for s in itertools.combinations(classes, n)]
    candidates = sorted(
        itertools.product(claim_types, subsets, modalities, poses),
        key=lambda c: (claim_types.index(c[0]), len(c[1]) + (c[2] is not None) + (c[3] is not None),
                       c[2] is not None, c[3] is not None))
    # a front's line-level reasons depend on the date (a modifier's dates in its code set, billing guidance):
    # two fronts are alike when both sides tell them apart the same way on every interval of dated rules
    days = [c.day for c in cells(_front_bounds(pa, every_place=True) | _front_bounds(pb, every_place=True))]
    seen: dict[tuple[Any, ...], Front] = {}
    for claim_type, mods, modality, pos in candidates:
        # a front changes only where its own modifiers and place of service do: decide it once per own
        # interval, and give each of the days above the decision of the interval it falls in
        own = sorted(_front_bounds(pa, mods, pos) | _front_bounds(pb, mods, pos))
        decided: dict[int, tuple[FrontSig, FrontSig]] = {}
        sigs = []
        for day in days:
            at = bisect_right(own, day)
            if at not in decided:
                line = ClaimLine(code, day, modifiers=mods, pos=pos, claim_type=claim_type, modality=modality)
                decided[at] = (_front_sig(evaluate(base.policy, line, release=base.release)),
                               _front_sig(evaluate(head.policy, line, release=head.release)))
            sigs.append(decided[at])
        fa, fb = sigs[-1]
        if not fa[0] and not fb[0]:
            continue  # not telehealth on either side, whatever the code and date: it cannot flip
        seen.setdefault((claim_type, tuple(sigs)), Front(mods, pos, modality, claim_type, fa, fb))
    return _FRONTS.put(key, tuple(seen.values()))


@dataclass(frozen=True)
class Variant:
    """A representative claim line, without code and date: a front, an RCC class and at most one limit field."""

    front: int
    rcc: str | None
    rcc_label: str
    field: str | None = None  # "member_age" | "provider_type" | "established_patient" | "units"
    value: Any = None

    def line(self, fronts_: Sequence[Front], code: str, day: dt.date) -> ClaimLine:
        f = fronts_[self.front]
        extra = {self.field: self.value} if self.field is not None else {}
        return ClaimLine(code, day, modifiers=f.modifiers, pos=f.pos, claim_type=f.claim_type, rcc=self.rcc,
                         modality=f.modality, **extra)




def _field_values(limits: Iterable[Limit]) -> dict[str, list[Any]]:
    """For each limit field some limit reads: the first value of each interval the limits' boundaries make."""
    ages: set[int] = set()
    types: set[str] = set()
    units: set[int] = set()
    kinds: set[str] = set()
    for lim in limits:
        kinds.add(lim.kind)
        if lim.kind == "age":
            ages.update({0, lim.min_age or 0, (lim.max_age + 1) if lim.max_age is not None else MAX_AGE + 1})
        elif lim.kind == "provider-type":
            types.update(lim.provider_types)
        elif lim.kind == "units-per-day" and lim.max_units is not None:
            units.update({0, lim.max_units + 1})
    out: dict[str, list[Any]] = {}
    if "age" in kinds:
        out["member_age"] = sorted(a for a in ages if a <= MAX_AGE)
    if "provider-type" in kinds:
        out["provider_type"] = [*sorted(types), OTHER_PROVIDER_TYPE]
    if "established-patient" in kinds:
        out["established_patient"] = [True, False]
    if "units-per-day" in kinds:
        out["units"] = sorted(units) or [0]
    return out


def _variants(code: str, base: Side, head: Side, fronts_: Sequence[Front]) -> list[Variant]:
    periods = [*periods_of(base, code), *periods_of(head, code)]
    rccs = sorted({r for p in periods for r in p.revenue_center_codes})
    other_rcc = next(r for r in OTHER_RCCS if r not in rccs)
    eras = [lim for side in (base, head) for r in side.policy.program.era_rules for lim in r.limits]
    fields = _field_values([*(lim for p in periods for lim in p.limits), *eras])
    out: list[Variant] = []
    for i, f in enumerate(fronts_):
        # the interpreter reads the RCC of institutional lines only (and only for codes with RCCs)
        if f.claim_type == "institutional" and rccs:
            rcc_classes: list[tuple[str | None, str]] = [(None, "none"), *((r, r) for r in rccs), (other_rcc, "other")]
        else:
            rcc_classes = [(None, "any")]
        for rcc, label in rcc_classes:
            out.append(Variant(i, rcc, label))
            for name, values in fields.items():
                out.extend(Variant(i, rcc, label, name, v) for v in values)
    return out


def _limits_key(limits: Iterable[Limit]) -> tuple[Any, ...]:
    return tuple(sorted((lim.kind, lim.modalities, lim.min_age, lim.max_age, lim.provider_types, lim.max_units)
                        for lim in limits))


def _period_key(p: Period) -> tuple[Any, ...]:
    return (p.permitted, p.modalities, p.undetermined_modalities, p.revenue_center_codes, _limits_key(p.limits))


def _state(side: Side, code: str, day: dt.date) -> tuple[Any, ...]:
    """Everything about ``day`` that a decision on ``code`` reads: the period in force (or what the gap is),
    whether the release holds the whole table, and the program's dated rules in force."""
    view = side.policy.views[side.release].get(code)
    whole = side.policy.holds_whole_table(side.release, day)
    if view is None:
        ps: tuple[Any, ...] = ("unlisted", whole)
    else:
        period, before, after = find_period(view, day)
        ps = ("outside", known_gap(before, after, whole)) if period is None else ("period", *_period_key(period))
    program = side.policy.program
    rules = bisect_right(program.date_bounds(), day)
    att = tuple(sorted((a.id, a.modalities) for a in program.attestations
                       if a.effective <= day and (a.end is None or day <= a.end)))
    return ps, att, rules


def _cells(code: str, base: Side, head: Side) -> list[Cell]:
    """The date cells of ``code`` on either side: cut at both sides' rows and both releases' cut-offs."""
    cuts = row_cuts([*periods_of(base, code), *periods_of(head, code)])
    for side in (base, head):
        cuts.update(cut_offs(side.policy, side.release))
    return cells(cuts)


def line_record(line: ClaimLine) -> dict[str, Any]:
    """A claim line as the record ``parse_line`` reads (only the fields it carries)."""
    rec: dict[str, Any] = {"code": line.code, "date": line.date.isoformat()}
    if line.modifiers:
        rec["modifiers"] = list(line.modifiers)
    if line.pos is not None:
        rec["pos"] = line.pos
    rec["claim_type"] = line.claim_type
    for name in ("rcc", "modality", "member_age", "provider_type", "units", "established_patient"):
        value = getattr(line, name)
        if value is not None:
            rec[name] = value
    return rec


def line_class(base: Side, head: Side, line: ClaimLine) -> dict[str, str]:
    """The report key a claim line falls under: code (``*`` for one neither side lists), claim type, RCC, modality."""
    listed = set(base.policy.views[base.release]) | set(head.policy.views[head.release])
    code = line.code if line.code in listed else "*"
    rccs = {r for p in [*periods_of(base, line.code), *periods_of(head, line.code)] for r in p.revenue_center_codes}
    if line.claim_type == "institutional" and rccs:
        rcc = "none" if line.rcc is None else line.rcc if line.rcc in rccs else "other"
    else:
        rcc = "any"
    probe = ClaimLine(_unlisted(base, head), line.date, modifiers=line.modifiers, pos=line.pos,
                      claim_type=line.claim_type, modality=line.modality)
    fa = _front_sig(evaluate(base.policy, probe, release=base.release))
    fb = _front_sig(evaluate(head.policy, probe, release=head.release))
    front = Front(line.modifiers, line.pos, line.modality, line.claim_type, fa, fb)
    return {"code": code, "claim_type": line.claim_type, "rcc": rcc, "modality": front_label(front)}


@dataclass
class _CodeDiff:
    """The changes for one code: per key, per date cell, the transitions seen (with a first example each)."""

    code: str
    shown: str
    cells: list[Cell]
    changes: dict[tuple[str, str, str], dict[int, dict[tuple[Signature, Signature], ClaimLine]]] = field(
        default_factory=dict)


class _Decider:
    """Signatures of variants on one side, cached by the state of the day: every day with the same period
    and attestations gets the same decisions, whatever the code (the code is only read to find its period)."""

    def __init__(self, side: Side, fronts_: Sequence[Front], exhaustive: bool) -> None:
        self.side = side
        self.fronts = fronts_
        self.exhaustive = exhaustive
        self._base: dict[tuple[Any, ...], tuple[Signature, tuple[str, ...]]] = {}
        self._field: dict[tuple[Any, ...], Signature] = {}

    def _eval(self, v: Variant, code: str, day: dt.date) -> Decision:
        return evaluate(self.side.policy, v.line(self.fronts, code, day), release=self.side.release)

    def signatures(self, code: str, day: dt.date, state: tuple[Any, ...],
                   variants: Sequence[Variant]) -> list[Signature]:
        out: list[Signature] = []
        base_sig: Signature | None = None
        confirm: tuple[str, ...] = ()
        for v in variants:
            if v.field is None:
                key = (state, v.front, v.rcc)
                got = None if self.exhaustive else self._base.get(key)
                if got is None:
                    dec = self._eval(v, code, day)
                    got = self._base[key] = (signature(dec), tuple(LIMIT_FIELDS[lim.kind] for lim in dec.to_confirm))
                base_sig, confirm = got
                out.append(base_sig)
            elif v.field in confirm:
                fkey = (state, v.front, v.rcc, v.field, v.value)
                sig = None if self.exhaustive else self._field.get(fkey)
                if sig is None:
                    sig = self._field[fkey] = signature(self._eval(v, code, day))
                out.append(sig)
            else:
                # no limit on this field was reached: the interpreter does not read the field
                assert base_sig is not None
                out.append(base_sig)
        return out


def _diff_code(code: str, shown: str, base: Side, head: Side, fronts_: Sequence[Front], deciders: tuple[_Decider,
               _Decider], same_program: bool, exhaustive: bool) -> _CodeDiff:
    result = _CodeDiff(code, shown, _cells(code, base, head))
    variants = _variants(code, base, head, fronts_)
    labels = [front_label(f) for f in fronts_]
    keys = [(fronts_[v.front].claim_type, v.rcc_label, labels[v.front]) for v in variants]
    for ci, cell in enumerate(result.cells):
        day = cell.day
        sa, sb = _state(base, code, day), _state(head, code, day)
        if same_program and sa == sb and not exhaustive:
            continue
        la = deciders[0].signatures(code, day, sa, variants)
        lb = deciders[1].signatures(code, day, sb, variants)
        for i, (a, b) in enumerate(zip(la, lb, strict=True)):
            if a == b:
                continue
            seen = result.changes.setdefault(keys[i], {}).setdefault(ci, {})
            if (a, b) not in seen:
                seen[(a, b)] = variants[i].line(fronts_, code, day)
    return result


def _merge(cd: _CodeDiff) -> list[dict[str, Any]]:
    """Adjacent date cells with the same changes become one range."""
    out: list[dict[str, Any]] = []
    for key in sorted(cd.changes, key=lambda k: (k[0] != "professional", k[0], k[1] != "any", k[1], k[2])):
        cells = cd.changes[key]
        group: tuple[int, int, frozenset[tuple[Signature, Signature]]] | None = None
        groups: list[tuple[int, int, frozenset[tuple[Signature, Signature]]]] = []
        for ci in range(len(cd.cells)):
            trans = frozenset(cells[ci]) if ci in cells else None
            if group is not None and trans == group[2] and ci == group[1] + 1:
                group = (group[0], ci, group[2])
                continue
            if group is not None:
                groups.append(group)
            group = (ci, ci, trans) if trans is not None else None
        if group is not None:
            groups.append(group)
        claim_type, rcc, modality = key
        for first, last, _ in groups:
            start, end = cd.cells[first].first, cd.cells[last].last
            out.append({
                "code": cd.shown,
                "claim_type": claim_type,
                "rcc": rcc,
                "modality": modality,
                "from": start.isoformat() if start else None,
                "to": end.isoformat() if end else None,
                "changes": [{"before": signature_dict(a), "after": signature_dict(b), "example": line_record(line)}
                            for (a, b), line in cells[first].items()],
            })
    out.sort(key=lambda e: (e["from"] or "", e["claim_type"] != "professional", e["claim_type"], e["rcc"] != "any",
                            e["rcc"], e["modality"]))
    return out


def decision_changes(base: Side, head: Side, *, exhaustive: bool = False) -> list[dict[str, Any]]:
    """Every (code, claim type, RCC class, modality) and date range whose decisions differ, with examples.

    ``exhaustive`` evaluates every date cell on both sides instead of skipping the cells where both
    sides see the same period (the result is the same; it exists to test that).
    """
    fronts_ = fronts(base, head)
    same_program = _program_key(base.policy.program) == _program_key(head.policy.program)
    codes = sorted(set(base.policy.views[base.release]) | set(head.policy.views[head.release]))
    deciders = (_Decider(base, fronts_, exhaustive), _Decider(head, fronts_, exhaustive))
    out: list[dict[str, Any]] = []
    for code in codes:
        out.extend(_merge(_diff_code(code, code, base, head, fronts_, deciders, same_program, exhaustive)))
    other = _unlisted(base, head)
    out.extend(_merge(_diff_code(other, "*", base, head, fronts_, deciders, same_program, exhaustive)))
    return out


