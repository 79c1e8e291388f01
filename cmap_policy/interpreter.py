"""``evaluate``: decide one claim line against the policy as published in a release.

The decision is a pure function of the line and the policy. Every reason that
applies is given (not the first only), each naming the rule that produced it
and its citation, so that ``explain`` can retell the path to the decision.
"""

from __future__ import annotations

from typing import NamedTuple

from .caches import Cache
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
from .timeline import Slots, Span, find_period, known_gap, spans

# ``find_period``, ``known_gap``, ``Span`` and ``spans`` live in ``timeline``; they are named here too, where
# callers have always found them.
__all__ = ["Span", "decide", "evaluate", "find_period", "known_gap", "spans"]


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


def _row_span(p: Period) -> str:
    end = f" to {p.end}" if p.end else ""
    if not p.start_known:
        return f"in force by {p.effective}{end}, its real start not known"
    return f"from {p.effective}{end}"


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

    This is the reference semantics, computed from scratch, in the numbered steps below (each its own
    function); ``evaluate`` gives the same decisions from a cache.
    """
    rel = policy.release(release)
    th_mods, pos = _signals(policy.program, line)
    if not th_mods and not (pos is not None and pos.marks_telehealth) and line.modality is None:
        return _not_telehealth(policy, rel.id)
    modality, signals, reasons = _modality(policy, line, th_mods)
    reasons += _front_reasons(policy, line, th_mods, pos)
    found = _on_table(policy, rel.id, line, modality, signals)
    reasons += found.reasons
    era_reasons, era_confirm = _eras(policy, line, modality, found.period, reasons)
    if era_confirm:
        found = found._replace(to_confirm=(*found.to_confirm, *era_confirm))
    return _outcome(policy, rel.id, line, modality, [*reasons, *era_reasons], found)


# 1. Is it a telehealth line at all? A modifier about something else (FR: how a supervisor was present) marks
#    nothing; a place of service marks telehealth where the program says it does (``_signals``).

def _not_telehealth(policy: Policy, release: str) -> Decision:
    msg = ("Nothing on the line marks it as telehealth (no telehealth modifier, place of service or "
           "modality), so the telehealth table does not apply.")
    return Decision(Outcome.NOT_TELEHEALTH, (_reason("NOT_A_TELEHEALTH_LINE", msg, None, None),), None, None,
                    (), release, policy.hash)


# 2. By which modality? Each modifier and a stated modality signal one; two different ones conflict.

def _modality(policy: Policy, line: ClaimLine,
              th_mods: list[Modifier]) -> tuple[str | None, dict[str, list[str]], list[Reason]]:
    """(the line's modality if it signals one only, who signals each modality, a conflict's reason)."""
    program = policy.program
    signals: dict[str, list[str]] = {}
    for mod in th_mods:
        if mod.modality is not None:
            signals.setdefault(mod.modality, []).append(f"modifier {mod.code}")
    if line.modality is not None:
        signals.setdefault(line.modality, []).append("the stated modality")
    if len(signals) <= 1:
        return next(iter(signals), None), signals, []
    said = "; ".join(f"{' and '.join(w)} signal{'s' if len(w) == 1 else ''} {_modality_name(program, m)}"
                     for m, w in sorted(signals.items()))
    first = next(m for m in th_mods if m.modality is not None) if th_mods else None
    return None, signals, [_reason("CONFLICTING_MODIFIERS", f"The line signals more than one modality: {said}.",
                                   _program_rule(policy, "/modifiers"), first.citation if first else None)]


# 3. Are its modifiers and place of service valid on the date, and for the claim type? What billing guidance
#    applies to its place of service? ("bill it this way" warns; only a stated denial denies)

def _front_reasons(policy: Policy, line: ClaimLine, th_mods: list[Modifier],
                   pos: PlaceOfService | None) -> list[Reason]:
    day = line.date
    reasons: list[Reason] = []
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
    return reasons


# 4. Is the code on the table on the date of service, as published in the release? Where the data holds only
#    the rows sources name, what they do not cover is undetermined, never denied.

class _Found(NamedTuple):
    """What step 4 found: the code's view and row on the date (if any), its reasons, the limits to confirm.

    A named tuple rather than a frozen dataclass: it is made once per decision, and a tuple is made faster."""

    view: CodeView | None
    period: Period | None
    reasons: tuple[Reason, ...]
    to_confirm: tuple[Limit, ...] = ()


def _on_table(policy: Policy, release: str, line: ClaimLine, modality: str | None,
              signals: dict[str, list[str]]) -> _Found:
    view = policy.views[release].get(line.code)
    whole_table = policy.holds_whole_table(release, line.date)
    if view is None:
        return _Found(None, None, (_unlisted(policy, release, line.code, whole_table),))
    period, before, after = find_period(view, line.date)
    if period is None:
        return _Found(view, None, (_between_rows(policy, release, line.code, view, before, after, whole_table),))
    if not period.permitted:
        return _Found(view, period, (_reason(
            "NOT_PERMITTED_VIA_TELEHEALTH", f"The table lists {line.code} as not permitted via telehealth "
            f"({_row_span(period)}). {period.guideline}".strip(), _rule(view, period), period.citation),))
    rule = _rule(view, period)
    reasons = [*_modality_on_row(policy.program, line, period, rule, modality, signals),
               *_rcc_reasons(line, period, rule)]
    to_confirm: list[Limit] = []
    for lim in period.limits:
        if not lim.applies_to(modality):
            continue
        denial, unknown = _limit_reasons(lim, line, rule, period.citation)
        if denial is not None:
            reasons.append(denial)
        if unknown:
            to_confirm.append(lim)
    return _Found(view, period, tuple(reasons), tuple(to_confirm))


def _unlisted(policy: Policy, release: str, code: str, whole_table: bool) -> Reason:
    program = policy.program
    if whole_table:
        return _reason("NOT_ON_TELEHEALTH_TABLE", f"{code} is not on the CMAP telehealth table (release {release}, "
                       "which holds the whole table): only listed codes are payable via telehealth.",
                       _program_rule(policy, "/program"), program.official_table)
    return _reason("CODE_NOT_IN_DATA", f"{code} is not in this data: release {release} holds only the rows public "
                   "sources name, so it cannot say whether the code is on the CMAP telehealth table. "
                   f"{_official(program)}.", _program_rule(policy, "/program"), program.official_table)


def _between_rows(policy: Policy, release: str, code: str, view: CodeView, before: Period | None,
                  after: Period | None, whole_table: bool) -> Reason:
    near = before if before is not None else after
    assert near is not None
    if known_gap(before, after, whole_table):
        return _reason("OUTSIDE_EFFECTIVE_DATES", _outside_message(code, before, after, whole_table),
                       _rule(view, near), near.citation)
    return _reason("DATE_NOT_IN_DATA", _gap_message(code, release, before, after, policy.program),
                   _rule(view, near), policy.program.official_table or near.citation)


def _modality_on_row(program: Program, line: ClaimLine, period: Period, rule: str, modality: str | None,
                     signals: dict[str, list[str]]) -> list[Reason]:
    """Whether the row allows the line's modality, or what the line should say of it."""
    allowed = " or ".join(_modality_name(program, m) for m in period.modalities)
    if modality is not None and modality in period.undetermined_modalities:
        return [_reason("MODALITY_UNDETERMINED", f"{line.code} is listed for {allowed} ({_row_span(period)}); the "
                        f"sources neither allow nor rule out {_modality_name(program, modality)} for it. "
                        f"{_official(program)}.", rule, period.citation)]
    if modality is not None and modality not in period.modalities:
        return [_reason("MODALITY_NOT_ALLOWED", f"{line.code} is listed for {allowed} only ({_row_span(period)}); "
                        f"the line is {_modality_name(program, modality)} ({', '.join(signals[modality])}).",
                        rule, period.citation)]
    if modality is not None or signals:
        return []
    video = ", ".join(m.code for m in program.modifiers.values()
                      if m.modality == "audio-video" and m.marks_telehealth)
    audio = ", ".join(m.code for m in program.modifiers.values()
                      if m.modality == "audio-only" and m.marks_telehealth)
    how = f"add the modifier of the way it was delivered (audio-video: {video}; audio-only: {audio})"
    if set(_possible_modalities(program)) <= set(period.modalities):
        return [_reason("MODIFIER_EXPECTED", f"Nothing on the line says how it was delivered; {line.code} is "
                        f"listed for {allowed}, so either way is payable: {how}.", rule, period.citation)]
    return [_reason("MODALITY_NOT_INDICATED", f"The line is marked as telehealth but nothing on it says how it was "
                    f"delivered, and {line.code} is listed for {allowed} only: {how}.", rule, period.citation)]


def _rcc_reasons(line: ClaimLine, period: Period, rule: str) -> list[Reason]:
    """An institutional line on a row with revenue center codes must carry one of them."""
    if line.claim_type != "institutional" or not period.revenue_center_codes:
        return []
    rccs = ", ".join(period.revenue_center_codes)
    if line.rcc is None:
        return [_reason("RCC_REQUIRED", f"On an institutional claim {line.code} needs a revenue center code: one "
                        f"of {rccs}.", rule, period.citation)]
    if line.rcc not in period.revenue_center_codes:
        return [_reason("RCC_NOT_ALLOWED", f"Revenue center code {line.rcc} is not allowed with {line.code}; the "
                        f"table allows {rccs}.", rule, period.citation)]
    return []


# 5. Where no row decides the line, what sources say of every line of the modality on the date, whatever its
#    code (the years before the pandemic, a bulletin's conditions): a denial where the source and the line's
#    fields suffice, else the category's fact. A row, from the official table above all, outranks them.

def _eras(policy: Policy, line: ClaimLine, modality: str | None, period: Period | None,
          given: list[Reason]) -> tuple[list[Reason], list[Limit]]:
    if period is not None and not (modality is not None and modality in period.undetermined_modalities):
        return [], []
    era_reasons, confirm = era_rule_reasons(policy, line, modality)
    said = {r.code for r in given}  # a row's limit and an era's may refuse the same field: one reason
    return [r for r in era_reasons if r.code not in said], confirm


# 6. The outcome: any denial denies; else anything the data cannot decide leaves the line undetermined; else it
#    is payable (warnings say what to put on the claim, and change nothing).

def _outcome(policy: Policy, release: str, line: ClaimLine, modality: str | None, reasons: list[Reason],
             found: _Found) -> Decision:
    program = policy.program
    attestations = tuple(a for a in program.attestations if a.applies(line.date, modality))
    kinds = {r.kind for r in reasons}
    if "deny" in kinds:
        outcome = Outcome.NOT_PAYABLE
    elif "undetermined" in kinds:
        outcome = Outcome.UNDETERMINED
    else:
        period, view = found.period, found.view
        assert period is not None and view is not None
        outcome = Outcome.PAYABLE
        how = f" for {_modality_name(program, modality)}" if modality is not None else ""
        reasons.append(_reason("ON_TELEHEALTH_TABLE", f"{line.code} is on the CMAP telehealth table{how} "
                               f"({_row_span(period)}).", _rule(view, period), period.citation))
    reasons.sort(key=lambda r: ORDER[r.code])
    return Decision(outcome, tuple(reasons), found.period, modality, attestations, release, policy.hash,
                    found.to_confirm)


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
# A decision is immutable, and no message names the date of service, so a decision depends on the line only
# through its slot (``timeline.Slots``). ``evaluate`` keeps one decision per slot.


class _Memo:
    """One policy's decisions, by slot."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.slots = Slots(policy)
        self.decisions: Cache[tuple[object, ...], Decision] = Cache("interpreter.decisions")
        self.found = self.decisions.get  # bound once: the look-up every line makes
        self.latest = policy.latest.id
        self.release_ids = frozenset(r.id for r in policy.releases)


_MEMOS: Cache[int, _Memo] = Cache("interpreter.policies")


def _memo(policy: Policy) -> _Memo:
    memo = _MEMOS.get(id(policy))
    if memo is None or memo.policy is not policy:
        memo = _MEMOS.put(id(policy), _Memo(policy))
    return memo


def evaluate(policy: Policy, line: ClaimLine, *, release: str | None = None) -> Decision:
    """Decide ``line`` against ``policy`` as published in ``release`` (default: the latest).

    The same decision as ``decide``, from a cache when a line with the same slot was decided before.
    """
    memo = _memo(policy)
    rel = memo.latest if release is None else release
    if rel not in memo.release_ids:
        policy.release(rel)  # raises UnknownReleaseError
    key = memo.slots.key(rel, line)
    found = memo.found(key)
    if found is None:
        found = memo.decisions.put(key, decide(policy, line, release=rel))
    return found
