"""Example claim lines for the site, found by asking the real interpreter, never written by hand.

A code page shows a line that is payable (or says why none is); the reason-code page shows, for each
reason, a line that gets it. Both come from ``evaluate``, so the site cannot promise what the engine denies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..interpreter import evaluate, find_period
from ..model import ClaimLine, Decision, Limit, Period, Policy

# Office: the place the visit would have happened in person, which CMAP asks for instead of 02 or 10.
IN_PERSON_POS = "11"
# Codes that the example of "not on the table" may use, in order of preference; the first one the policy
# does not list is taken, so the example stays true when the table grows.
UNLISTED_CANDIDATES = ("99213", "90834", "99214", "90837", "99442", "G2012")


@dataclass(frozen=True, slots=True)
class Example:
    line: ClaimLine
    decision: Decision


def modifier_for(policy: Policy, modality: str) -> str:
    """The first modifier program.json lists for ``modality`` (95 for audio-video, 93 for audio-only)."""
    for mod in policy.program.modifiers.values():
        if mod.modality == modality:
            return mod.code
    raise KeyError(f"no modifier signals {modality!r}")


def meet_limits(line: ClaimLine, limits: tuple[Limit, ...]) -> ClaimLine:
    """``line`` with the fields set that meet every limit of a period."""
    for lim in limits:
        if lim.kind == "age":
            line = replace(line, member_age=lim.min_age if lim.min_age is not None else (lim.max_age or 30))
        elif lim.kind == "provider-type" and lim.provider_types:
            line = replace(line, provider_type=lim.provider_types[0])
        elif lim.kind == "established-patient":
            line = replace(line, established_patient=True)
        elif lim.kind == "units-per-day":
            line = replace(line, units=lim.max_units if lim.max_units is not None else 1)
    return line


def conforming_lines(policy: Policy, period: Period, day: dt.date) -> Iterator[ClaimLine]:
    """Lines on ``day`` that meet every condition ``period`` states: one per modality and claim type.

    For a not-permitted period, the line an unaware biller would send: audio-video, billed as in person.
    """
    # Audio-video first: it is what every listed code allows, so it makes the example a biller expects.
    modalities = sorted(period.modalities or ("audio-video",), key=lambda m: (m != "audio-video", m))
    for modality in modalities:
        base = meet_limits(ClaimLine(period.code, day, modifiers=(modifier_for(policy, modality),),
                                     pos=IN_PERSON_POS), period.limits)
        yield base
        for rcc in period.revenue_center_codes:
            yield replace(base, claim_type="institutional", rcc=rcc)


def payable_example(policy: Policy, period: Period, day: dt.date, release: str | None = None) -> Example | None:
    for line in conforming_lines(policy, period, day):
        decision = evaluate(policy, line, release=release)
        if decision.payable:
            return Example(line, decision)
    return None


@dataclass(frozen=True, slots=True)
class CodeExamples:
    """What a biller sending the code today would get, a payable line if any period allows one, and a payable
    audio-only line if any period allows audio-only."""

    today: Example
    payable: Example | None  # None: no period of the code is payable for any line we could build
    audio_only: Example | None = None


def audio_only_example(policy: Policy, code: str, today: dt.date, release: str | None = None) -> Example | None:
    """A payable line billed with an audio-only modifier, on today if its row allows audio-only, else on the first
    day an audio-only modifier exists in a row that allows it (the latest row first)."""
    rel = policy.release(release).id
    mods = [m for m in policy.program.modifiers.values() if m.modality == "audio-only" and m.marks_telehealth]
    for period in reversed(policy.views[rel][code].periods):
        if not period.permitted or "audio-only" not in period.modalities:
            continue
        for mod in mods:
            days = [today] if period.covers(today) else []
            days.append(max(period.effective, mod.effective or period.effective))
            for day in days:
                if not period.covers(day):
                    continue
                line = meet_limits(ClaimLine(code, day, modifiers=(mod.code,), pos=IN_PERSON_POS), period.limits)
                decision = evaluate(policy, line, release=rel)
                if decision.payable:
                    return Example(line, decision)
    return None


def code_examples(policy: Policy, code: str, today: dt.date, release: str | None = None) -> CodeExamples:
    rel = policy.release(release).id
    view = policy.views[rel][code]
    current = find_period(view, today)[0]
    audio = audio_only_example(policy, code, today, rel)
    if current is not None and current.permitted:
        found = payable_example(policy, current, today, rel)
        if found is not None:
            return CodeExamples(found, found, audio)
    # The line a biller would send today, and why it is not payable.
    probe_period = current or view.periods[-1]
    line = next(conforming_lines(policy, probe_period, today))
    today_ex = Example(line, evaluate(policy, line, release=rel))
    # Then a payable line in another period, the latest first: the most relevant to a biller.
    for period in reversed(view.periods):
        if period.permitted:
            found = payable_example(policy, period, period.effective, rel)
            if found is not None:
                return CodeExamples(today_ex, found, audio)
    return CodeExamples(today_ex, None, audio)


def _mutations(policy: Policy, line: ClaimLine, period: Period | None, unlisted: str) -> Iterator[ClaimLine]:
    """Single changes to a line, each a common billing mistake; the order sets which example is shown."""
    yield replace(line, modifiers=(), pos=IN_PERSON_POS, modality=None)
    yield replace(line, code=unlisted)
    if period is not None:
        yield replace(line, date=period.effective - dt.timedelta(days=1))
        if period.end is not None:
            yield replace(line, date=period.end + dt.timedelta(days=1))
    mods = list(policy.program.modifiers.values())
    for mod in mods:
        yield replace(line, modifiers=(mod.code,))
    for a in mods:
        for b in mods:
            if a.modality and b.modality and a.modality < b.modality:
                yield replace(line, modifiers=(a.code, b.code))
    for pos in policy.program.places_of_service:
        yield replace(line, pos=pos)
    for claim_type in policy.program.claim_types:
        yield replace(line, claim_type=claim_type, rcc=None)
        yield replace(line, claim_type=claim_type, rcc="0000")
    yield replace(line, established_patient=False)
    yield replace(line, member_age=0)
    yield replace(line, member_age=120)
    yield replace(line, provider_type="unlisted-provider-type")
    yield replace(line, units=999)


def unlisted_code(policy: Policy) -> str:
    for code in UNLISTED_CANDIDATES:
        if code not in policy.codes:
            return code
    n = 99201
    while str(n) in policy.codes:
        n += 1
    return str(n)


def reason_examples(policy: Policy, today: dt.date, release: str | None = None) -> dict[str, Example]:
    """For each reason code the policy can give, one line that gets it, preferring a line denied for that
    reason alone. Bases are the conforming lines of every row, today's rows first."""
    rel = policy.release(release).id
    view = policy.views[rel]
    unlisted = unlisted_code(policy)
    rows: list[tuple[Period, dt.date]] = []
    for cv in view.values():
        for p in cv.periods:
            rows.append((p, today if p.covers(today) else p.effective))
    rows.sort(key=lambda r: (not r[0].covers(today), r[0].code, r[0].effective))
    best: dict[str, tuple[int, int, Example]] = {}
    order = 0
    for period, day in rows:
        for base in conforming_lines(policy, period, day):
            for line in (base, *_mutations(policy, base, period, unlisted)):
                order += 1
                decision = evaluate(policy, line, release=rel)
                denials = sum(1 for r in decision.reasons if r.kind == "deny")
                for code in decision.reason_codes:
                    rank = (denials, order)
                    if code not in best or rank < best[code][:2]:
                        best[code] = (denials, order, Example(line, decision))
    return {code: ex for code, (_, _, ex) in best.items()}


def cli_command(line: ClaimLine) -> str:
    """The ``cmap-policy eval`` command that decides ``line``: what a reader can paste to check it."""
    parts = ["cmap-policy eval", f"--code {line.code}", f"--date {line.date}"]
    parts += [f"--modifier {m}" for m in line.modifiers]
    if line.pos is not None:
        parts.append(f"--pos {line.pos}")
    if line.claim_type != "professional":
        parts.append(f"--claim-type {line.claim_type}")
    if line.rcc is not None:
        parts.append(f"--rcc {line.rcc}")
    if line.modality is not None:
        parts.append(f"--modality {line.modality}")
    if line.member_age is not None:
        parts.append(f"--member-age {line.member_age}")
    if line.provider_type is not None:
        parts.append(f"--provider-type {line.provider_type}")
    if line.units is not None:
        parts.append(f"--units {line.units}")
    if line.established_patient is not None:
        parts.append("--established-patient" if line.established_patient else "--new-patient")
    return " ".join(parts)
