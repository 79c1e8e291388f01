"""A code's timeline and a line's slot: what a decision depends on, said once.

A decision reads the date of service only to find where it falls: in which row of the code (or in which gap
between rows), whether the release holds the whole table that day, and which of the program's dated rules are
in force. So every part of the package that must know "which days decide alike" asks this module:

* **the timeline of a code** (``stretches``): its rows as a release has them, and the gaps around them, each
  with the rows on either side; ``find_period`` finds the stretch of one day by bisection, and ``known_gap``
  says whether a gap is known to be off the table or one no public source covers. ``spans`` is that timeline
  as ``show`` tells it and the site draws it, a gap split where the release starts to hold the whole table.
* **the cut-offs** (``cut_offs``): the days on which something other than the code's rows changes what a line
  decides (a dated rule of the program; the first day the release holds the whole table); ``cells`` cuts a day
  line at a set of days, as the site's checker and the diff walk it.
* **the slot of a line** (``Slots``): the release, the code, its stretch on the date, the cut-offs passed, and
  the parts of the line a rule reads (the modifiers, place of service, claim type, revenue code and modality
  the program knows, and what the row's limits read, ``Reads``). Two lines with one slot get one decision:
  the interpreter memoises on it, the batch engine (``engines/slots``) computes it for columns with numpy,
  the site's checker and the diff enumerate it.

Plain Python and the model only: a one-line ``eval`` imports this, and no numpy.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from .model import MAX_AGE, ClaimLine, CodeView, Limit, Period, Policy

FOREVER = 1 << 62  # a bound no value reaches (units-per-day without a maximum)
A_DAY = dt.timedelta(days=1)
PLAIN_DAY = dt.date(2000, 1, 1)  # a day to decide on where no cut-off says which
EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01: how the columns, the site's data and its script name a date."""
    return (day - EPOCH).days


# --- the timeline of a code -------------------------------------------------------------------------------------


def find_period(view: CodeView, day: dt.date) -> tuple[Period | None, Period | None, Period | None]:
    """(period covering ``day``, the last one ending before it, the first one starting after it)."""
    i = bisect_right(view.starts, day.toordinal()) - 1
    before = view.periods[i] if i >= 0 else None
    after = view.periods[i + 1] if i + 1 < len(view.periods) else None
    if before is not None and before.covers(day):
        return before, None, after
    return None, before, after


def known_gap(before: Period | None, after: Period | None, whole_table: bool) -> bool:
    """Whether a date between rows is known to be off the table, rather than one no public source covers.

    Known when the release holds the whole table that day, or the row before says the code left the table
    when it ended; but never before a row whose real start is not known (it may have started earlier).
    """
    if after is not None and not after.start_known:
        return False
    return whole_table or (before is not None and before.removed)


@dataclass(frozen=True, slots=True)
class Stretch:
    """Days of one code, first to last (None: since always, onwards), that fall in one row or in one gap.

    A gap keeps the rows on either side (``before``, ``after``): what it decides depends on them alone.
    """

    first: dt.date | None
    last: dt.date | None
    period: Period | None  # None: a gap
    before: Period | None = None
    after: Period | None = None


def stretches(view: CodeView | None) -> tuple[Stretch, ...]:
    """The code's day line, cut into its rows and the gaps between them, in order, from always to onwards.

    It follows ``find_period`` to the letter: a day belongs to the last row starting on or before it if that
    row still covers it, else to the gap after that row. ``None`` (a code the release lacks) is one gap.
    """
    if view is None:
        return (Stretch(None, None, None),)
    out: list[Stretch] = []
    day: dt.date | None = None  # the first day not yet placed (None: since always)
    prev: Period | None = None
    periods = view.periods
    for i, p in enumerate(periods):
        if day is None or day < p.effective:
            out.append(Stretch(day, p.effective - A_DAY, None, prev, p))
        nxt = periods[i + 1].effective if i + 1 < len(periods) else None
        last = nxt - A_DAY if nxt is not None and (p.end is None or p.end >= nxt) else p.end
        if last is None or last >= p.effective:
            out.append(Stretch(p.effective, last, p))
        prev = p
        if last is None:
            return tuple(out)
        day = last + A_DAY
    out.append(Stretch(day, None, None, prev, None))
    return tuple(out)


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

    ``stretches``, with each gap split where the release starts to hold the whole table (``known_gap`` on
    either side of that day): the site draws it, ``show`` tells it.
    """
    rel = policy.release(release)
    whole = policy.complete_from.get(rel.id)
    out: list[Span] = []
    for s in stretches(policy.views[rel.id].get(code)):
        if s.period is not None:
            out.append(Span(s.first, s.last, s.period))
            continue
        before_whole, in_whole = known_gap(s.before, s.after, False), known_gap(s.before, s.after, True)
        if whole is None or before_whole == in_whole or (s.last is not None and s.last < whole):
            out.append(Span(s.first, s.last, None, before_whole))
        elif s.first is not None and s.first >= whole:
            out.append(Span(s.first, s.last, None, in_whole))
        else:  # the release starts to hold the whole table inside the gap
            out.append(Span(s.first, whole - A_DAY, None, before_whole))
            out.append(Span(whole, s.last, None, in_whole))
    return tuple(out)


# --- cut-offs and cells -----------------------------------------------------------------------------------------


def cut_offs(policy: Policy, release: str) -> tuple[dt.date, ...]:
    """The days on which something other than a code's rows changes what a line of ``release`` decides.

    Every day a dated rule of the program starts or stops applying (attestations, modifiers and places of
    service in their code sets, billing guidance: ``Program.date_bounds``), and the first day the release holds
    the whole table (from then on, a code it lacks is off the table rather than unknown).
    """
    days = set(policy.program.date_bounds())
    whole = policy.complete_from.get(release)
    if whole is not None:
        days.add(whole)
    return tuple(sorted(days))


def row_cuts(periods: Iterable[Period]) -> set[dt.date]:
    """The days on which a row starts, or the day after one ends."""
    out: set[dt.date] = set()
    for p in periods:
        out.add(p.effective)
        if p.end is not None and p.end < dt.date.max:
            out.add(p.end + A_DAY)
    return out


@dataclass(frozen=True, slots=True)
class Cell:
    """The days between two cuts, first to last (None: since always, onwards), and one of them to decide on."""

    first: dt.date | None
    last: dt.date | None
    day: dt.date


def cells(cuts: Iterable[dt.date]) -> list[Cell]:
    """The day line cut at each of ``cuts``: every day of a cell decides alike when the cuts are the code's rows'
    (``row_cuts``) and the ``cut_offs``. The first cell runs from always and is decided on its last day."""
    ordered = sorted(set(cuts))
    if not ordered:
        return [Cell(None, None, PLAIN_DAY)]
    out: list[Cell] = []
    if ordered[0] > dt.date.min:
        out.append(Cell(None, ordered[0] - A_DAY, ordered[0] - A_DAY))
    for i, first in enumerate(ordered):
        last = ordered[i + 1] - A_DAY if i + 1 < len(ordered) else None
        out.append(Cell(first, last, first))
    return out


# --- the slot of a line -----------------------------------------------------------------------------------------


class Reads:
    """What the limits and revenue codes of one row read of a line.

    A value every limit accepts decides like any other accepted value (the messages name only values a limit
    refuses), so all of them share one key: "ok". A missing value stays None, since a missing value puts the
    limit on the list to confirm.
    """

    __slots__ = ("ages", "est", "limited", "rcc", "several", "types", "units")

    def __init__(self, limits: Iterable[Limit] = (), rcc: bool = False) -> None:
        limits = tuple(limits)
        # each age limit as its range; each provider-type limit as its set; each units limit as its maximum
        self.ages = tuple((lim.min_age if lim.min_age is not None else 0,
                           lim.max_age if lim.max_age is not None else MAX_AGE) for lim in limits if lim.kind == "age")
        self.types = tuple(frozenset(lim.provider_types) for lim in limits if lim.kind == "provider-type")
        self.units = tuple(lim.max_units if lim.max_units is not None else FOREVER for lim in limits
                           if lim.kind == "units-per-day")
        self.est = any(lim.kind == "established-patient" for lim in limits)
        self.rcc = rcc
        # the kinds of limit the row has more than one of: which of them refuse a value depends on the value
        self.several = frozenset(k for k in ("age", "provider-type", "units-per-day")
                                 if sum(lim.kind == k for lim in limits) > 1)
        # whether some limit reads the line at all; most rows and stretches have none, and then ``key`` is
        # UNREAD without a call (every line's slot asks this twice)
        self.limited = bool(self.ages or self.types or self.units or self.est)

    @classmethod
    def of(cls, p: Period | None) -> Reads:
        return NOTHING if p is None else cls(p.limits, bool(p.revenue_center_codes))

    @property
    def age_range(self) -> tuple[int, int] | None:
        """The ages every age limit accepts, lowest to highest (None: no age limit)."""
        return (max(lo for lo, _ in self.ages), min(hi for _, hi in self.ages)) if self.ages else None

    @property
    def provider_types(self) -> frozenset[str] | None:
        """The provider types every provider-type limit accepts (None: no such limit)."""
        return frozenset.intersection(*self.types) if self.types else None

    @property
    def max_units(self) -> int | None:
        """The most units every units limit accepts (None: no such limit)."""
        return min(self.units) if self.units else None

    def key(self, line: ClaimLine) -> tuple[object, object, object, object]:
        """What the limits read of ``line``: UNREAD when no limit does."""
        age, ptype, units = line.member_age, line.provider_type, line.units
        return (
            (age if age is None or not all(lo <= age <= hi for lo, hi in self.ages) else "ok") if self.ages else None,
            (ptype if ptype is None or not all(ptype in t for t in self.types) else "ok") if self.types else None,
            (units if units is None or not all(units <= m for m in self.units) else "ok") if self.units else None,
            line.established_patient if self.est else None,
        )


NOTHING = Reads()
UNREAD = (None, None, None, None)  # ``Reads.key`` of a line where no limit reads it

# a code's rows in one release, for the bisect of a day: (first days, last days or None, what each row reads)
_CodeRows = tuple[tuple[int, ...], tuple[int | None, ...], tuple[Reads, ...]]


class Slots:
    """The slot of a line under one policy: every part of the line and its date that a decision reads.

    ``key(release, line)`` is a tuple: two lines with equal keys get equal decisions (the key may be finer
    than the decision, never coarser). Built once per policy; each code's rows are compiled when first asked.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        program = policy.program
        # release -> (its codes' rows, compiled when first asked; its cut-offs as ordinal days)
        self.releases: dict[str, tuple[dict[str, _CodeRows | None], list[int]]] = {
            r.id: ({}, [d.toordinal() for d in cut_offs(policy, r.id)]) for r in policy.releases}
        self.program_modifiers = program.modifiers
        self.program_places = program.places_of_service
        self.one_type = one_type_modifiers(policy)
        # a line's modifiers -> (those the program knows, whether one of them is for one claim type only)
        self.modifiers: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
        # per release, per stretch between its cut-offs: what the limits of the era rules in force then read
        self.era_reads = {rel: [Reads(lim for rule in program.era_rules if rule.in_force(day) for lim in rule.limits)
                                for day in (dt.date.min, *(dt.date.fromordinal(d) for d in cuts))]
                          for rel, (_, cuts) in self.releases.items()}

    def _rows(self, release: str, code: str) -> _CodeRows | None:
        view = self.policy.views[release].get(code)
        entry = self.releases[release][0][code] = None if view is None else (
            view.starts, tuple(p.end.toordinal() if p.end is not None else None for p in view.periods),
            tuple(Reads.of(p) for p in view.periods))
        return entry

    def key(self, release: str, line: ClaimLine) -> tuple[object, ...]:
        """The slot of ``line`` in ``release`` (a release the policy has)."""
        day = line.date.toordinal()
        table, cuts = self.releases[release]
        try:  # one look-up on the path every line takes
            entry = table[line.code]
        except KeyError:
            entry = self._rows(release, line.code)
        i, covered, reads = -1, False, NOTHING
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
        stretch = bisect_right(cuts, day)
        era = self.era_reads[release][stretch]
        return (release, line.code, i, covered, stretch, *(era.key(line) if era.limited else UNREAD), modifiers,
                line.pos if line.pos in self.program_places else None, claim_type,
                line.rcc if reads.rcc and line.claim_type == "institutional" else None, line.modality,
                *(reads.key(line) if reads.limited else UNREAD))


def one_type_modifiers(policy: Policy) -> frozenset[str]:
    """The modifiers used on some claim types only: with one of them, a line's claim type is part of its slot."""
    program = policy.program
    every = set(program.claim_types)
    return frozenset(m.code for m in program.modifiers.values() if set(m.claim_types) != every)
