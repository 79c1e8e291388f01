"""``evaluate``: decide one claim line against the policy as published in a release.

The decision is a pure function of the line and the policy. Every reason that
applies is given (not the first only), each naming the rule that produced it
and its citation, so that ``explain`` can retell the path to the decision.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass

from .model import (
    MAX_AGE,
    Citation,
    ClaimLine,
    CodeView,
    Decision,
    Limit,
    Modifier,
    Outcome,
    Period,
    PlaceOfService,
    Policy,
    Program,
    Reason,
)
from .reasons import ORDER, REASONS


def _reason(code: str, message: str, rule: str | None, citation: Citation | None) -> Reason:
    rt = REASONS[code]
    return Reason(code, rt.kind, message, rt.carc, rule, citation)


def _rule(view: CodeView, period: Period) -> str:
    return f"{view.code.file}#{period.id}"


def _program_rule(policy: Policy, part: str) -> str:
    return f"{policy.root.rstrip('/').rsplit('/', 1)[-1]}/program.json#{part}"


def _modality_name(program: Program, modality: str) -> str:
    m = program.modalities.get(modality)
    return m.name if m else modality


def find_period(view: CodeView, day: dt.date) -> tuple[Period | None, Period | None, Period | None]:
    """(period covering ``day``, the last one ending before it, the first one starting after it)."""
    i = bisect_right(view.starts, day.toordinal()) - 1
    before = view.periods[i] if i >= 0 else None
    after = view.periods[i + 1] if i + 1 < len(view.periods) else None
    if before is not None and before.covers(day):
        return before, None, after
    return None, before, after


def _row_span(p: Period) -> str:
    end = f" to {p.end}" if p.end else ""
    if not p.start_known:
        return f"in force by {p.effective}{end}, its real start not known"
    return f"from {p.effective}{end}"


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of dates of service of one code, as a release has it: a row, or a gap between rows.

    A gap is ``known`` when the data says the code was not on the table then (the release holds the whole
    table for those dates, and no row with an unknown start follows); otherwise no public source the data
    holds covers it, and a line then is undetermined.
    """

    start: dt.date | None  # None: since always
    end: dt.date | None  # None: onwards
    period: Period | None
    known: bool = True


def spans(policy: Policy, code: str, release: str | None = None) -> tuple[Span, ...]:
    """The code's whole timeline in ``release``: its rows and the gaps around them, each gap known or not.

    The same reading of the data as ``decide`` (which it must agree with on every day): the site draws it,
    ``show`` tells it.
    """
    rel = policy.release(release)
    view = policy.views[rel.id].get(code)
    whole = policy.complete_from.get(rel.id)
    out: list[Span] = []

    def gap(start: dt.date | None, end: dt.date | None, before: Period | None, after: Period | None) -> None:
        if start is not None and end is not None and start > end:
            return
        if after is not None and not after.start_known:
            out.append(Span(start, end, None, False))
            return
        if before is not None and before.removed:
            out.append(Span(start, end, None, True))
            return
        # split where the release starts to hold the whole table
        if whole is None or (end is not None and end < whole):
            out.append(Span(start, end, None, False))
        elif start is not None and start >= whole:
            out.append(Span(start, end, None, True))
        else:
            out.append(Span(start, whole - dt.timedelta(days=1), None, False))
            out.append(Span(whole, end, None, True))

    if view is None:
        gap(None, None, None, None)
        return tuple(out)
    day: dt.date | None = None
    prev: Period | None = None
    for i, p in enumerate(view.periods):
        gap(day, p.effective - dt.timedelta(days=1), prev, p)
        prev = p
        nxt = view.periods[i + 1].effective if i + 1 < len(view.periods) else None
        end = p.end if p.end is not None and (nxt is None or p.end < nxt) else (
            nxt - dt.timedelta(days=1) if nxt is not None else None)
        out.append(Span(p.effective, end, p))
        day = end + dt.timedelta(days=1) if end is not None else None
        if day is None:
            break
    if day is not None:
        gap(day, None, prev, None)
    return tuple(out)


def known_gap(before: Period | None, after: Period | None, whole_table: bool) -> bool:
    """Whether a date between rows is known to be off the table, rather than one no public source covers.

    Known when the release holds the whole table that day, or the row before says the code left the table
    when it ended; but never before a row whose real start is not known (it may have started earlier).
    """
    if after is not None and not after.start_known:
        return False
    return whole_table or (before is not None and before.removed)


def _outside_message(code: str, before: Period | None, after: Period | None, whole_table: bool) -> str:
    parts = []
    if before is not None and before.end is not None:
        left = ", when the source says it left the table" if before.removed else ""
        parts.append(f"its row from {before.effective} ended {before.end}{left}")
    if after is not None:
        parts.append(f"it is listed from {after.effective}")
    why = ", and this data holds the whole table for that date" if whole_table else ""
    return f"{code} is not on the telehealth table on the date of service{why}: " + "; ".join(parts) + "."


def _official(program: Program) -> str:
    table = program.official_table
    where = f" ({table.source.url})" if table is not None else ""
    return f"The official CMAP Telehealth Table{where} decides"


def _gap_message(code: str, rel_id: str, before: Period | None, after: Period | None, program: Program) -> str:
    rows = " and ".join(f"a row {_row_span(p)}" for p in (before, after) if p is not None)
    return (f"{code} is in this data ({rows}), but no public source it holds (release {rel_id}) covers the date of "
            f"service. {_official(program)}; this data holds only the rows public sources name.")


def _limit_reasons(lim: Limit, line: ClaimLine, rule: str, cite: Citation) -> tuple[Reason | None, bool]:
    """(a denial if the line breaks the limit, whether the line lacks the field to check it)."""
    c = lim.citation or cite
    if lim.kind == "age":
        if line.member_age is None:
            return None, True
        lo = lim.min_age if lim.min_age is not None else 0
        hi = lim.max_age if lim.max_age is not None else MAX_AGE
        if not lo <= line.member_age <= hi:
            return _reason("AGE_OUTSIDE_LIMIT", f"The member is {line.member_age}; the period allows ages "
                           f"{lo} to {hi if lim.max_age is not None else 'any'}. {lim.guideline}", rule, c), False
    elif lim.kind == "provider-type":
        if line.provider_type is None:
            return None, True
        if line.provider_type not in lim.provider_types:
            return _reason("PROVIDER_TYPE_NOT_ALLOWED", f"Provider type {line.provider_type!r} is not one of "
                           f"{', '.join(lim.provider_types)}. {lim.guideline}", rule, c), False
    elif lim.kind == "established-patient":
        if line.established_patient is None:
            return None, True
        if not line.established_patient:
            return _reason("ESTABLISHED_PATIENT_REQUIRED", f"The member is not an established patient. "
                           f"{lim.guideline}", rule, c), False
    elif lim.kind == "units-per-day":
        if line.units is None:
            return None, True
        if lim.max_units is not None and line.units > lim.max_units:
            return _reason("UNITS_OVER_LIMIT", f"{line.units} units billed; at most {lim.max_units} a day. "
                           f"{lim.guideline}", rule, c), False
    return None, False


def _signals(program: Program, line: ClaimLine) -> tuple[list[Modifier], PlaceOfService | None]:
    """The telehealth modifiers of the line (in its order) and its place of service, as the program knows them."""
    mods = [program.modifiers[m] for m in line.modifiers if m in program.modifiers]
    pos = program.places_of_service.get(line.pos) if line.pos is not None else None
    return [m for m in mods if m.marks_telehealth], pos


def decide(policy: Policy, line: ClaimLine, *, release: str | None = None) -> Decision:
    """Decide ``line`` against ``policy`` as published in ``release`` (default: the latest).

    This is the reference semantics, computed from scratch; ``evaluate`` gives the same
    decisions from a cache.
    """
    rel = policy.release(release)
    program = policy.program
    day = line.date

    # 1. Is it a telehealth line at all? A modifier about something else (FR: how a supervisor was
    #    present) marks nothing; a place of service marks telehealth where the program says it does.
    th_mods, pos = _signals(program, line)
    pos_marks = pos is not None and pos.marks_telehealth
    if not th_mods and not pos_marks and line.modality is None:
        msg = ("Nothing on the line marks it as telehealth (no telehealth modifier, place of service or "
               "modality), so the telehealth table does not apply.")
        return Decision(Outcome.NOT_TELEHEALTH, (_reason("NOT_A_TELEHEALTH_LINE", msg, None, None),), None, None,
                        (), rel.id, policy.hash)

    # 2. By which modality? Each modifier and a stated modality signal one; two different ones conflict.
    reasons: list[Reason] = []
    signals: dict[str, list[str]] = {}
    for mod in th_mods:
        if mod.modality is not None:
            signals.setdefault(mod.modality, []).append(f"modifier {mod.code}")
    if line.modality is not None:
        signals.setdefault(line.modality, []).append("the stated modality")
    modality: str | None = None
    if len(signals) > 1:
        said = "; ".join(f"{' and '.join(w)} signal{'s' if len(w) == 1 else ''} {_modality_name(program, m)}"
                         for m, w in sorted(signals.items()))
        first = next(m for m in th_mods if m.modality is not None) if th_mods else None
        reasons.append(_reason("CONFLICTING_MODIFIERS", f"The line signals more than one modality: {said}.",
                               _program_rule(policy, "/modifiers"), first.citation if first else None))
    elif signals:
        modality = next(iter(signals))

    # 3. Are its modifiers and place of service valid on the date, and for the claim type? What billing
    #    guidance applies to its place of service? ("bill it this way" warns; only a stated denial denies)
    for mod in th_mods:
        if not mod.in_effect(day):
            span = (f"from {mod.effective}" if mod.effective else "") + (f" to {mod.end}" if mod.end else "")
            reasons.append(_reason("MODIFIER_NOT_IN_EFFECT", f"Modifier {mod.code} exists in its code set {span}, "
                                   "not on the date of service.", _program_rule(policy, f"/modifiers/{mod.code}"),
                                   mod.citation))
        if line.claim_type not in mod.claim_types:
            reasons.append(_reason("MODIFIER_NOT_FOR_CLAIM_TYPE", f"Modifier {mod.code} is used on "
                                   f"{' and '.join(mod.claim_types)} claims, not on {line.claim_type} claims.",
                                   _program_rule(policy, f"/modifiers/{mod.code}"), mod.citation))
    if pos is not None and pos.marks_telehealth:
        pos_rule = _program_rule(policy, f"/places_of_service/{pos.code}")
        if not pos.in_effect(day):
            reasons.append(_reason("POS_NOT_IN_EFFECT", f"Place of service {pos.code} ({pos.name}) exists from "
                                   f"{pos.effective}, not on the date of service.", pos_rule, pos.citation))
        for g in pos.guidance_on(day):
            code = "POS_NOT_ACCEPTED" if g.kind == "deny" else "POS_GUIDANCE"
            reasons.append(_reason(code, f"Place of service {pos.code} ({pos.name}): {g.text}", pos_rule, g.citation))

    # 4. Is the code on the table on the date of service, as published in the release? Where the data
    #    holds only the rows sources name, what they do not cover is undetermined, never denied.
    view = policy.views[rel.id].get(line.code)
    whole_table = policy.holds_whole_table(rel.id, day)
    period: Period | None = None
    to_confirm: list[Limit] = []
    if view is None:
        if whole_table:
            reasons.append(_reason("NOT_ON_TELEHEALTH_TABLE", f"{line.code} is not on the CMAP telehealth table "
                                   f"(release {rel.id}, which holds the whole table): only listed codes are payable "
                                   "via telehealth.", _program_rule(policy, "/program"), program.official_table))
        else:
            reasons.append(_reason("CODE_NOT_IN_DATA", f"{line.code} is not in this data: release {rel.id} holds "
                                   "only the rows public sources name, so it cannot say whether the code is on the "
                                   f"CMAP telehealth table. {_official(program)}.", _program_rule(policy, "/program"),
                                   program.official_table))
    else:
        period, before, after = find_period(view, day)
        if period is None:
            near = before if before is not None else after
            assert near is not None
            if known_gap(before, after, whole_table):
                reasons.append(_reason("OUTSIDE_EFFECTIVE_DATES", _outside_message(line.code, before, after,
                                                                                   whole_table),
                                       _rule(view, near), near.citation))
            else:
                reasons.append(_reason("DATE_NOT_IN_DATA", _gap_message(line.code, rel.id, before, after, program),
                                       _rule(view, near), program.official_table or near.citation))
        elif not period.permitted:
            reasons.append(_reason("NOT_PERMITTED_VIA_TELEHEALTH", f"The table lists {line.code} as not permitted "
                                   f"via telehealth ({_row_span(period)}). {period.guideline}".strip(),
                                   _rule(view, period), period.citation))
        else:
            rule = _rule(view, period)
            allowed = " or ".join(_modality_name(program, m) for m in period.modalities)
            if modality is not None and modality in period.undetermined_modalities:
                reasons.append(_reason("MODALITY_UNDETERMINED", f"{line.code} is listed for {allowed} "
                                       f"({_row_span(period)}); the sources neither allow nor rule out "
                                       f"{_modality_name(program, modality)} for it. {_official(program)}.",
                                       rule, period.citation))
            elif modality is not None and modality not in period.modalities:
                reasons.append(_reason("MODALITY_NOT_ALLOWED", f"{line.code} is listed for {allowed} only "
                                       f"({_row_span(period)}); the line is {_modality_name(program, modality)} "
                                       f"({', '.join(signals[modality])}).", rule, period.citation))
            elif modality is None and not signals:
                possible = _possible_modalities(program)
                video = ", ".join(m.code for m in program.modifiers.values()
                                  if m.modality == "audio-video" and m.marks_telehealth)
                audio = ", ".join(m.code for m in program.modifiers.values()
                                  if m.modality == "audio-only" and m.marks_telehealth)
                how = f"add the modifier of the way it was delivered (audio-video: {video}; audio-only: {audio})"
                if set(possible) <= set(period.modalities):
                    reasons.append(_reason("MODIFIER_EXPECTED", f"Nothing on the line says how it was delivered; "
                                           f"{line.code} is listed for {allowed}, so either way is payable: {how}.",
                                           rule, period.citation))
                else:
                    reasons.append(_reason("MODALITY_NOT_INDICATED", f"The line is marked as telehealth but nothing "
                                           f"on it says how it was delivered, and {line.code} is listed for {allowed} "
                                           f"only: {how}.", rule, period.citation))
            if line.claim_type == "institutional" and period.revenue_center_codes:
                rccs = ", ".join(period.revenue_center_codes)
                if line.rcc is None:
                    reasons.append(_reason("RCC_REQUIRED", f"On an institutional claim {line.code} needs a revenue "
                                           f"center code: one of {rccs}.", rule, period.citation))
                elif line.rcc not in period.revenue_center_codes:
                    reasons.append(_reason("RCC_NOT_ALLOWED", f"Revenue center code {line.rcc} is not allowed with "
                                           f"{line.code}; the table allows {rccs}.", rule, period.citation))
            for lim in period.limits:
                if not lim.applies_to(modality):
                    continue
                denial, unknown = _limit_reasons(lim, line, rule, period.citation)
                if denial is not None:
                    reasons.append(denial)
                if unknown:
                    to_confirm.append(lim)

    # 5. Where no row decides the line, what sources say of every line of the modality on the date, whatever
    #    its code (the years before the pandemic, a bulletin's conditions): a denial where the source and the
    #    line's fields suffice, else the category's fact. A row, from the official table above all, outranks them.
    if period is None or (modality is not None and modality in period.undetermined_modalities):
        era_reasons, era_confirm = era_rule_reasons(policy, line, modality)
        given = {r.code for r in reasons}  # a row's limit and an era's may refuse the same field: one reason
        reasons += [r for r in era_reasons if r.code not in given]
        to_confirm += era_confirm

    # 6. The outcome: any denial denies; else anything the data cannot decide leaves the line undetermined;
    #    else it is payable (warnings say what to put on the claim, and change nothing).
    attestations = tuple(a for a in program.attestations if a.applies(day, modality))
    reasons.sort(key=lambda r: ORDER[r.code])
    kinds = {r.kind for r in reasons}
    if "deny" in kinds:
        outcome = Outcome.NOT_PAYABLE
    elif "undetermined" in kinds:
        outcome = Outcome.UNDETERMINED
    else:
        assert period is not None and view is not None
        outcome = Outcome.PAYABLE
        how = f" for {_modality_name(program, modality)}" if modality is not None else ""
        reasons.append(_reason("ON_TELEHEALTH_TABLE", f"{line.code} is on the CMAP telehealth table{how} "
                               f"({_row_span(period)}).", _rule(view, period), period.citation))
        reasons.sort(key=lambda r: ORDER[r.code])
    return Decision(outcome, tuple(reasons), period, modality, attestations, rel.id, policy.hash, tuple(to_confirm))


def era_rule_reasons(policy: Policy, line: ClaimLine, modality: str | None) -> tuple[list[Reason], list[Limit]]:
    """The reasons of the program's era rules in force for a line no row decides, and the limits it lacks the
    fields for.

    A ``deny`` rule denies; an ``undetermined`` rule names a category without its codes, so the line stays
    undetermined with the category's fact. Either rule's limits deny a line whose own fields break them.
    """
    reasons: list[Reason] = []
    confirm: list[Limit] = []
    for rule in policy.program.era_rules_on(line.date, modality):
        where = _program_rule(policy, f"/era_rules/{rule.id}")
        if rule.verdict == "deny":
            reasons.append(_reason("NOT_PAID_IN_ERA", rule.text, where, rule.citation))
        denied = False
        for lim in rule.limits:
            denial, unknown = _limit_reasons(lim, line, where, rule.citation)
            if denial is not None:
                reasons.append(denial)
                denied = True
            if unknown:
                confirm.append(lim)
        if rule.verdict == "undetermined" and not denied:
            reasons.append(_reason("ERA_UNDETERMINED", rule.text, where, rule.citation))
    return reasons, confirm


def _possible_modalities(program: Program) -> tuple[str, ...]:
    """The modalities a line that says nothing of its delivery could have been delivered by: the covered ones."""
    return tuple(m for m, mod in program.modalities.items() if mod.coverage != "not-covered")


# --- Memoized decisions ---
#
# A decision is immutable, and no message names the date of service, so a decision
# depends on the line only through its slot: the release, the code, which period (or
# gap) the date falls in, which of the program's dated rules are in force (attestations,
# modifiers and places of service in their code sets, billing guidance) and whether the
# release holds the whole table that day, the modifiers, place of service and revenue
# code the program reads, and the fields a limit of the period reads. ``evaluate`` keeps
# one decision per slot.

_CACHE_LIMIT = 200_000


class _Memo:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.slots: dict[tuple[object, ...], Decision] = {}
        self.latest = policy.latest.id
        self.release_ids = frozenset(r.id for r in policy.releases)
        # every day on which a dated rule of the program, or the whole-table coverage of a release, changes
        bounds = {d.toordinal() for d in policy.program.date_bounds()}
        bounds.update(d.toordinal() for d in policy.complete_from.values() if d is not None)
        self.date_bounds = sorted(bounds)
        # per stretch between the bounds: what the limits of the era rules in force then read of a line
        firsts = [dt.date.min, *(dt.date.fromordinal(d) for d in self.date_bounds)]
        self.era_reads = [_Reads.of_limits(tuple(lim for r in policy.program.era_rules if r.in_force(day)
                                                 for lim in r.limits), False) for day in firsts]
        self.program_modifiers = policy.program.modifiers
        self.program_places = policy.program.places_of_service
        claim_types = set(policy.program.claim_types)
        self.one_type = frozenset(m.code for m in self.program_modifiers.values() if set(m.claim_types) != claim_types)
        # a line's modifiers -> (those the program knows, whether one of them is for one claim type only)
        self.modifiers: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
        # release -> code -> (period starts, period ends (ordinal or None), what each period's limits read)
        self.codes: dict[str, dict[str, _CodeEntry | None]] = {r.id: {} for r in policy.releases}

    def code(self, release: str, code: str) -> _CodeEntry | None:
        table = self.codes[release]
        try:
            return table[code]
        except KeyError:
            view = self.policy.views[release].get(code)
            entry = table[code] = None if view is None else (
                view.starts, tuple(p.end.toordinal() if p.end is not None else None for p in view.periods),
                tuple(_Reads.of(p) for p in view.periods))
            return entry

    def slot_key(self, release: str, line: ClaimLine) -> tuple[object, ...]:
        day = line.date.toordinal()
        entry = self.code(release, line.code)
        i, covered, reads = -1, False, _NOTHING
        if entry is not None:
            starts, ends, per_period = entry
            i = bisect_right(starts, day) - 1
            end = ends[i] if i >= 0 else None
            covered = i >= 0 and (end is None or day <= end)
            if covered:
                reads = per_period[i]
        found = self.modifiers.get(line.modifiers)
        if found is None:
            known = tuple(m for m in line.modifiers if m in self.program_modifiers)
            found = self.modifiers[line.modifiers] = (known, any(m in self.one_type for m in known))
        modifiers, reads_type = found
        # the claim type is read by a modifier used on one claim type only, and by a row's revenue codes
        claim_type = line.claim_type if reads_type or reads.rcc else None
        stretch = bisect_right(self.date_bounds, day)
        return (release, line.code, i, covered, stretch, *self.era_reads[stretch].key(line), modifiers,
                line.pos if line.pos in self.program_places else None, claim_type,
                line.rcc if reads.rcc and line.claim_type == "institutional" else None, line.modality,
                *reads.key(line))


class _Reads:
    """What the limits and revenue codes of one period read of a line.

    A value every limit accepts decides like any other accepted value (the messages name only
    values a limit refuses), so all of them share one key: "ok". A missing value stays None,
    since a missing value puts the limit on the list to confirm.
    """

    __slots__ = ("ages", "est", "rcc", "types", "units")

    def __init__(self, ages: tuple[tuple[int, int], ...], types: tuple[frozenset[str], ...],
                 units: tuple[int, ...], est: bool, rcc: bool) -> None:
        self.ages, self.types, self.units, self.est, self.rcc = ages, types, units, est, rcc

    @classmethod
    def of(cls, p: Period) -> _Reads:
        return cls.of_limits(p.limits, bool(p.revenue_center_codes))

    @classmethod
    def of_limits(cls, limits: tuple[Limit, ...], rcc: bool) -> _Reads:
        return cls(tuple((lim.min_age if lim.min_age is not None else 0, lim.max_age if lim.max_age is not None
                          else MAX_AGE) for lim in limits if lim.kind == "age"),
                   tuple(frozenset(lim.provider_types) for lim in limits if lim.kind == "provider-type"),
                   tuple(lim.max_units if lim.max_units is not None else 1 << 62 for lim in limits
                         if lim.kind == "units-per-day"),
                   any(lim.kind == "established-patient" for lim in limits), rcc)

    def key(self, line: ClaimLine) -> tuple[object, object, object, object]:
        age, ptype, units = line.member_age, line.provider_type, line.units
        return (
            (age if age is None or not all(lo <= age <= hi for lo, hi in self.ages) else "ok") if self.ages else None,
            (ptype if ptype is None or not all(ptype in t for t in self.types) else "ok") if self.types else None,
            (units if units is None or not all(units <= m for m in self.units) else "ok") if self.units else None,
            line.established_patient if self.est else None,
        )


_NOTHING = _Reads((), (), (), False, False)
_CodeEntry = tuple[tuple[int, ...], tuple[int | None, ...], tuple[_Reads, ...]]


_MEMOS: dict[int, _Memo] = {}


def _memo(policy: Policy) -> _Memo:
    memo = _MEMOS.get(id(policy))
    if memo is None or memo.policy is not policy:
        if len(_MEMOS) >= 8:  # a few policies at a time; a test suite loads many
            _MEMOS.pop(next(iter(_MEMOS)))
        memo = _MEMOS[id(policy)] = _Memo(policy)
    return memo


def evaluate(policy: Policy, line: ClaimLine, *, release: str | None = None) -> Decision:
    """Decide ``line`` against ``policy`` as published in ``release`` (default: the latest).

    The same decision as ``decide``, from a cache when a line equal in every part a rule
    reads was decided before.
    """
    memo = _memo(policy)
    rel = memo.latest if release is None else release
    if rel not in memo.release_ids:
        policy.release(rel)  # raises UnknownReleaseError
    key = memo.slot_key(rel, line)
    found = memo.slots.get(key)
    if found is None:
        found = decide(policy, line, release=rel)
        if len(memo.slots) >= _CACHE_LIMIT:
            memo.slots.clear()
        memo.slots[key] = found
    return found
