"""The data behind "check a claim line": every answer the form can give, decided at build time by the interpreter.

The form on the home page and on each code page takes a claim line (code, date of service, modifiers, place of
service, claim type, revenue center code) and answers it in the browser, offline. Its script
(``docs/assets/javascripts/cmap-check.js``) only looks the answer up in the data written here; it never restates a
rule. One definition of the decision, the interpreter's, for the command line, the engines and the site.

What a decision reads of a line is its slot (``timeline.Slots``): the code's row (or gap) on the date,
which of the program's dated rules are in force, the modifiers and place of service the program knows, the claim
type, and the revenue center code when the row lists some and the claim is institutional. So:

* **The date.** Each code's day line is cut into *cells* (``timeline.cells``) at its rows' starts and ends
  (``timeline.row_cuts``) and at the cut-offs of the release (``timeline.cut_offs``: every date on which a dated
  rule of the program starts or stops, and where the release starts to hold the whole table). Every day of a
  cell decides alike.
* **The front of the line** (modifiers, place of service, claim type) is read against the program's dated rules
  only, so the fronts are classed once per *interval* between the program's bounds. Two fronts are in one class
  when the interpreter tells them apart nowhere: the same decision for a code no release lists (which shows the
  line's own reasons, its modality and whether it is telehealth at all), the same decision once more with a
  stated modality that conflicts (whose message names every modifier that signals the line's modality, which a
  "not allowed" message names too), and in the end the same decision on every cell of the interval. The form
  offers the modifiers the program knows as boxes to tick (at most ``lines.MAX_MODIFIERS``), so a front is a
  claim type, a place of service the program knows (any other place decides as none) and a set of modifiers,
  in the program's order.
* **The answer** of a cell and a front class is the interpreter's decision for a representative line, kept with
  every reason, its CARC, the rule, the citation, the attestations and the limits to confirm. A code no release
  lists is decided once as the stand-in ``{code}``, and the script puts the typed code in its place (the
  decision names the code only in its messages); an institutional line on a row with revenue center codes is
  decided once with no code, once with each listed code and once with the stand-in ``{rcc}`` for any other.

The common part (front classes, the program's words, the unlisted code) goes into ``assets/check/data.js`` and
each listed code's cells into ``assets/check/codes/<CODE>.js``, which the script loads when the code is asked
about: a page loads only what it needs, however many codes the table has. They are scripts rather than JSON
files so that the site also works opened from disk, where a browser refuses to fetch files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .. import timeline
from ..errors import LineError
from ..explain import KIND_WORDS
from ..interpreter import decide
from ..lines import (
    ALIASES,
    CLAIM_TYPES,
    CODE_RE,
    DATE_RE,
    FIELDS,
    MAX_MODIFIERS,
    MISSING,
    MODIFIER_RE,
    POS_RE,
    RCC_RE,
    check_claim_type,
    check_code,
    check_modifiers,
    check_pos,
    check_rcc,
    parse_date,
    parse_line,
)
from ..model import Citation, ClaimLine, CodeView, Decision, Outcome, Period, Policy
from ..reasons import REASONS
from ..timeline import day_number as day_number  # the site's pages name dates as its data does

CODE_STAND_IN = "{code}"
RCC_STAND_IN = "{rcc}"
DATA_DIR = "assets/check"
DATA_VERSION = 1

# What each outcome is called wherever the site shows a decision, and its colour class (cmap.css).
OUTCOME_WORDS = {
    Outcome.PAYABLE.value: "Payable via telehealth",
    Outcome.NOT_PAYABLE.value: "Not payable via telehealth",
    Outcome.UNDETERMINED.value: "Undetermined: the public sources this data holds do not say; the official CMAP "
                                "Telehealth Table decides",
    Outcome.NOT_TELEHEALTH.value: "Not a telehealth line: the telehealth table does not apply",
}

# What a biller does next, in plain words: the first reason of a decision (in its order) that has a step here
# gives it, else its outcome does. The script fills {allowed} with the modifiers of the ways the row allows and
# {telehealth} with the modifiers that mark a line as telehealth: words about the answer, not a rule.
NEXT_STEPS = {
    "MODALITY_NOT_ALLOWED": "Bill {allowed} if the visit was by {allowed_ways}; delivered the way this line says, "
                            "it is not payable via telehealth.",
    "NOT_PERMITTED_VIA_TELEHEALTH": "Do not bill it as telehealth: on this date the table lists it as not "
                                    "permitted that way. Delivered in person, bill it without telehealth modifiers.",
    "OUTSIDE_EFFECTIVE_DATES": "Do not bill it as telehealth for this date of service: the table did not list it "
                               "then. Check the date, or bill an in-person visit without telehealth modifiers.",
    "NOT_ON_TELEHEALTH_TABLE": "Do not bill it as telehealth: the table does not list it on this date. Delivered "
                               "in person, bill it without telehealth modifiers.",
    "CONFLICTING_MODIFIERS": "Keep only the modifier of the way the visit was delivered, and check again.",
    "MODIFIER_NOT_IN_EFFECT": "Use a modifier in effect on the date of service (the billing page gives their "
                              "dates), and check again.",
    "MODIFIER_NOT_FOR_CLAIM_TYPE": "Use the modifier this claim type takes (see the billing page), and check again.",
    "POS_NOT_IN_EFFECT": "Use a place of service in effect on the date of service, and check again.",
    "POS_NOT_ACCEPTED": "Use a place of service accepted on the date of service (see the billing page), and "
                        "check again.",
    "RCC_REQUIRED": "Add one of the revenue center codes the row lists, and check again.",
    "RCC_NOT_ALLOWED": "Use one of the revenue center codes the row lists, and check again.",
    "MODALITY_NOT_INDICATED": "Tick the modifier of the way the visit was delivered ({telehealth}), and check again.",
    "MODALITY_UNDETERMINED": "Look the code up on the official CMAP Telehealth Table for this way of delivery "
                             "before billing; {allowed} is listed for {allowed_ways}. This is not a denial.",
    "CODE_NOT_IN_DATA": "Look the code up on the official CMAP Telehealth Table for the date of service before "
                        "billing. This is not a denial.",
    "DATE_NOT_IN_DATA": "Look the code up on the official CMAP Telehealth Table for the date of service before "
                        "billing. This is not a denial.",
    "MODIFIER_EXPECTED": "Bill it with the modifier of the way the visit was delivered ({telehealth}).",
    Outcome.PAYABLE.value: "Bill the line as checked, and keep in the record what the provider must also meet "
                           "(below).",
    Outcome.NOT_PAYABLE.value: "Do not bill this line via telehealth as it stands.",
    Outcome.UNDETERMINED.value: "Look the code up on the official CMAP Telehealth Table before billing. This is "
                                "not a denial.",
    Outcome.NOT_TELEHEALTH.value: "If the visit was by telehealth, tick the modifier you will bill ({telehealth}) "
                                  "and check again; in person, the telehealth table does not apply.",
}

# The fields of a line the data decides by (the form's), and those a file may carry only to be copied through.
FORM_FIELDS = ("code", "date", "modifiers", "pos", "claim_type", "rcc", "line_id", "claim_id")

# The form names the field that is empty (the command line's MISSING names both, for a line of a file).
FORM_MISSING = {"code": "missing: enter the procedure code", "date": "missing: enter the date of service"}


@dataclass(frozen=True, slots=True)
class Front:
    claim_type: str
    pos: str | None
    mask: int  # bit i: the i-th modifier of the form's list


@dataclass
class _Pool:
    """Values kept once and named by their position. A pool may extend a ``base`` pool (the common file's):
    a value the base holds keeps its number there, and new values are numbered after the base's."""

    base: _Pool | None = None
    items: list[Any] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, value: Any) -> int:
        key = json.dumps(value, sort_keys=True, separators=(",", ":"))
        if self.base is not None and key in self.base.index:
            return self.base.index[key]
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.items) + (len(self.base.items) if self.base is not None else 0)
            self.items.append(value)
        return found


class _Chunk:
    """One data file: its citations, reasons, periods and decisions, each kept once (and the citations and
    reasons the common file already holds not again)."""

    citations: _Pool
    reasons: _Pool
    periods: _Pool
    decisions: _Pool

    def __init__(self, outcomes: Sequence[str], modalities: Sequence[str], attestations: dict[str, int],
                 base: _Chunk | None = None) -> None:
        self.outcomes, self.modalities, self.attestations = list(outcomes), list(modalities), attestations
        self.citations = _Pool(base.citations if base else None)
        self.reasons = _Pool(base.reasons if base else None)
        self.periods = _Pool()
        self.decisions = _Pool()

    def citation(self, c: Citation | None) -> int:
        if c is None:
            return -1
        return self.citations.add([c.source.id, c.section, c.note])

    def period(self, p: Period | None) -> int:
        if p is None:
            return -1
        return self.periods.add({
            "id": p.id, "effective": p.effective.isoformat(), "end": p.end.isoformat() if p.end else None,
            "start_known": p.start_known, "permitted": p.permitted, "modalities": list(p.modalities),
            "undetermined_modalities": list(p.undetermined_modalities), "guideline": p.guideline,
            "rccs": list(p.revenue_center_codes)})

    def decision(self, d: Decision) -> int:
        """A decision as [outcome, period, modality (-1: none), attestations, limits to confirm, reasons...]."""
        reasons = [self.reasons.add([r.code, r.message, r.rule or "", self.citation(r.citation)]) for r in d.reasons]
        modality = self.modalities.index(d.modality) if d.modality is not None else -1
        return self.decisions.add([self.outcomes.index(d.outcome.value), self.period(d.period), modality,
                                   [self.attestations[a.id] for a in d.attestations],
                                   [[lim.kind, lim.guideline] for lim in d.to_confirm], *reasons])

    def as_dict(self) -> dict[str, Any]:
        return {"citations": self.citations.items, "reasons": self.reasons.items, "periods": self.periods.items,
                "decisions": self.decisions.items}


def form_modifiers(policy: Policy) -> list[str]:
    """The modifiers the form offers, in the order it lists them and a line carries them: the program's own."""
    return list(policy.program.modifiers)


def _masks(n: int) -> list[int]:
    """Every set of at most MAX_MODIFIERS of ``n`` modifiers, as bit masks, smallest sets first."""
    return sorted((sum(1 << i for i in combo) for k in range(min(n, MAX_MODIFIERS) + 1)
                   for combo in itertools.combinations(range(n), k)), key=lambda m: (bin(m).count("1"), m))


def _line(code: str, day: dt.date, front: Front, modifiers: Sequence[str], rcc: str | None = None,
          modality: str | None = None) -> ClaimLine:
    mods = tuple(m for i, m in enumerate(modifiers) if front.mask >> i & 1)
    return ClaimLine(code, day, mods, front.pos, front.claim_type, rcc, modality)


def _key(d: Decision) -> str:
    return json.dumps(d.as_dict(), sort_keys=True)


def _cells(policy: Policy, view: CodeView | None) -> list[tuple[dt.date, dt.date, Period | None]]:
    """(first day, a day to decide it on, the row in force) of each cell of a code in the latest release (None: a
    code it does not list); the first cell runs from always (``dt.date.min``)."""
    cuts = timeline.row_cuts(view.periods if view else ()).union(timeline.cut_offs(policy, policy.latest.id))
    return [(c.first if c.first is not None else dt.date.min, c.day,
             timeline.find_period(view, c.day)[0] if view else None) for c in timeline.cells(cuts)]


@dataclass
class _Interval:
    """The front classes of one interval between the program's bounds."""

    day: dt.date  # a day in it, to probe fronts on
    classes: list[list[Front]]  # each class: its fronts, the representative first
    members: dict[Front, int]  # front -> class


class CheckData:
    """The form's data for one policy, as published in its latest release."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        program = policy.program
        self.modifiers = form_modifiers(policy)
        self.places: list[str | None] = [None, *program.places_of_service]
        self.bounds = sorted(program.date_bounds())
        self.attestations = {a.id: i for i, a in enumerate(program.attestations)}
        self.fronts = [Front(ct, pos, mask) for ct in CLAIM_TYPES for pos in self.places
                       for mask in _masks(len(self.modifiers))]
        self.intervals = [self._classes(day) for day in self._interval_days()]
        self.codes = list(policy.views[policy.latest.id])
        taken = set(self.codes)
        assert CODE_STAND_IN not in taken
        # cells of every listed code, then of a code no release lists; each cell: (first day, decided day, period)
        self.cells: dict[str | None, list[tuple[dt.date, dt.date, Period | None]]] = {
            code: _cells(policy, policy.views[policy.latest.id][code]) for code in self.codes}
        self.cells[None] = _cells(policy, None)
        self._merge_classes()

    # --- fronts ---

    def _interval_days(self) -> list[dt.date]:
        """A day in each interval between the program's bounds (interval i starts at bound i - 1)."""
        first = self.bounds[0] - dt.timedelta(days=1) if self.bounds else dt.date(2000, 1, 1)
        return [first, *self.bounds]

    def interval_of(self, day: dt.date) -> int:
        return bisect_right(self.bounds, day)

    def _classes(self, day: dt.date) -> _Interval:
        """Fronts grouped by what the interpreter shows of them for a code no release lists (see the module's
        docstring); ``_merge_classes`` then joins the classes that decide alike on every cell."""
        modalities = list(self.policy.program.modalities)
        groups: dict[tuple[str, str, str], list[Front]] = {}
        for front in self.fronts:
            probe = decide(self.policy, _line(CODE_STAND_IN, day, front, self.modifiers))
            other = next((m for m in modalities if m != probe.modality), None)
            if probe.modality is None:
                shown = ""
            elif other is None:  # one modality only: nothing can conflict, so keep the modifiers themselves
                shown = str(front.mask)
            else:
                shown = _key(decide(self.policy, _line(CODE_STAND_IN, day, front, self.modifiers, modality=other)))
            groups.setdefault((front.claim_type, _key(probe), shown), []).append(front)
        classes = list(groups.values())
        return _Interval(day, classes, {f: i for i, members in enumerate(classes) for f in members})

    def _rcc_variants(self, period: Period | None) -> list[str | None]:
        return [None, *period.revenue_center_codes, RCC_STAND_IN] if period and period.revenue_center_codes else [None]

    def _decide(self, line: ClaimLine) -> int:
        """The number of the interpreter's decision of ``line`` (each distinct decision is numbered once)."""
        d = decide(self.policy, line)
        found = self.numbers.get(d)
        if found is None:
            found = self.numbers[d] = len(self.decisions)
            self.decisions.append(d)
        return found

    def _decide_cell(self, code: str | None, day: dt.date, period: Period | None, cls: list[Front]) -> list[int]:
        rep = cls[0]
        return [self._decide(_line(code or CODE_STAND_IN, day, rep, self.modifiers, rcc))
                for rcc in self._rcc_variants(period)]

    def _merge_classes(self) -> None:
        """Decide every cell for every class, then join the classes of an interval that decide alike everywhere."""
        self.decisions: list[Decision] = []
        self.numbers: dict[Decision, int] = {}
        # (code, cell) -> for each class of the cell's interval, the decision of each RCC variant
        self.answers: dict[tuple[str | None, int], list[list[int]]] = {}
        by_interval: dict[int, list[tuple[str | None, int]]] = {}
        for code, cells in self.cells.items():
            for ci, (_start, day, period) in enumerate(cells):
                iv = self.interval_of(day)
                self.answers[(code, ci)] = [self._decide_cell(code, day, period, cls)
                                            for cls in self.intervals[iv].classes]
                by_interval.setdefault(iv, []).append((code, ci))
        for iv, interval in enumerate(self.intervals):
            at = by_interval.get(iv, [])
            vectors: dict[tuple[tuple[int, ...], ...], int] = {}
            keep: list[int] = []
            new_of: list[int] = []
            for k in range(len(interval.classes)):
                vec = tuple(tuple(self.answers[c][k]) for c in at)
                if vec not in vectors:
                    vectors[vec] = len(keep)
                    keep.append(k)
                new_of.append(vectors[vec])
            merged: list[list[Front]] = [[] for _ in keep]
            for k, members in enumerate(interval.classes):
                merged[new_of[k]].extend(members)
            self.intervals[iv] = _Interval(interval.day, merged,
                                           {f: i for i, members in enumerate(merged) for f in members})
            for c in at:
                self.answers[c] = [self.answers[c][k] for k in keep]

    # --- the data files ---

    def front_index(self, front: Front) -> int:
        """The front's place in each interval's map: claim type, then place of service, then modifier mask."""
        n_pos, n_mask = len(self.places), 1 << len(self.modifiers)
        return (CLAIM_TYPES.index(front.claim_type) * n_pos + self.places.index(front.pos)) * n_mask + front.mask

    def _front_maps(self) -> tuple[int, list[str], list[int]]:
        """(digits per entry, the distinct maps, each interval's map). A map gives each front's class, in base
        36 with a fixed number of digits ("-" for more modifiers than a line carries)."""
        size = len(CLAIM_TYPES) * len(self.places) * (1 << len(self.modifiers))
        width = len(_base36(max(len(i.classes) for i in self.intervals)))
        maps: list[str] = []
        of_interval = []
        for interval in self.intervals:
            row = ["-" * width] * size
            for front, cls in interval.members.items():
                row[self.front_index(front)] = _base36(cls).rjust(width, "0")
            text = "".join(row)
            if text not in maps:
                maps.append(text)
            of_interval.append(maps.index(text))
        return width, maps, of_interval

    def _new_chunk(self, base: _Chunk | None) -> _Chunk:
        return _Chunk([o.value for o in Outcome], list(self.policy.program.modalities), self.attestations, base)

    def _chunk(self, code: str | None, chunk: _Chunk) -> dict[str, Any]:
        """The cells of ``code`` (None: a code no release lists), with their answers. A cell is [its first day
        (null: since always), its interval, the row's revenue center codes (null: the answer does not read the
        code), the answer of each front class (with revenue center codes: one per code: none, each listed, any
        other)]."""
        cells = []
        for ci, (start, day, period) in enumerate(self.cells[code]):
            answers = [[chunk.decision(self.decisions[d]) for d in variants] for variants in self.answers[(code, ci)]]
            rccs = list(period.revenue_center_codes) if period and period.revenue_center_codes else None
            cells.append([None if start == dt.date.min else day_number(start), self.interval_of(day), rccs,
                          [a if rccs else a[0] for a in answers]])
        return {"code": code or CODE_STAND_IN, "cells": cells, **chunk.as_dict()}

    def files(self) -> dict[str, dict[str, Any]]:
        """The common data, then each listed code's, by path under docs/."""
        program = self.policy.program
        rel = self.policy.latest
        base = self._new_chunk(None)
        unlisted = self._chunk(None, base)
        width, maps, of_interval = self._front_maps()
        common = {
            "kind": "common", "version": DATA_VERSION,
            "release": rel.id, "published": rel.published.isoformat(), "policy_hash": self.policy.hash,
            "program": program.name,
            "codes": self.codes,
            "modifiers": [{"code": m, "meaning": program.modifiers[m].meaning,
                           "modality": program.modifiers[m].modality if program.modifiers[m].marks_telehealth
                           else None, "telehealth": program.modifiers[m].marks_telehealth}
                          for m in self.modifiers],
            "max_modifiers": MAX_MODIFIERS,
            "places": [{"code": p.code, "name": p.name} for p in program.places_of_service.values()],
            "claim_types": [{"id": ct, "name": program.claim_types[ct].name if ct in program.claim_types else ct}
                            for ct in CLAIM_TYPES],
            "bounds": [day_number(d) for d in self.bounds],
            "front_width": width, "front_maps": maps, "interval_fronts": of_interval,
            "outcomes": [o.value for o in Outcome], "outcome_words": OUTCOME_WORDS, "kind_words": KIND_WORDS,
            "modalities": [[m.id, m.name] for m in program.modalities.values()],
            "sources": {s.id: [s.title, s.url, s.secondary] for s in program.sources.values()},
            "attestations": [[a.id, a.text] for a in program.attestations],
            "reason_kinds": {r.code: [r.kind, r.carc or ""] for r in REASONS.values()},
            "stand_in": {"code": CODE_STAND_IN, "rcc": RCC_STAND_IN},
            "messages": check_messages(), "next_steps": NEXT_STEPS,
            # how a line of a claim file is read (cmap-decide.js): the command line's field names and aliases,
            # and the fields that change a decision but that this data does not decide by
            "fields": list(FIELDS), "aliases": ALIASES, "unread_fields": [f for f in FIELDS if f not in FORM_FIELDS],
            "patterns": {"code": CODE_RE.pattern, "modifier": MODIFIER_RE.pattern, "pos": POS_RE.pattern,
                         "rcc": RCC_RE.pattern, "date": DATE_RE.pattern},
            "unlisted": unlisted,
        }
        out = {f"{DATA_DIR}/data.js": common}
        for code in self.codes:
            out[f"{DATA_DIR}/codes/{code}.js"] = {"kind": "code", **self._chunk(code, self._new_chunk(base))}
        return out


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _message(check: Any, value: Any, shown: str) -> str:
    """The message ``check`` gives for a bad ``value``, with the value as ``{value}``: the form says what
    the command line says of the same field."""
    try:
        check(value)
    except LineError as exc:
        return exc.message.replace(shown, "{value}")
    raise AssertionError(f"{value!r} passed {check.__name__}")  # pragma: no cover


def check_messages() -> dict[str, str]:
    """What the form says of a bad field: the command line's own messages (``lines``)."""
    many = ["AA"] * (MAX_MODIFIERS + 1)
    return {
        "missing": MISSING,
        "missing_code": FORM_MISSING["code"],
        "missing_date": FORM_MISSING["date"],
        "code": _message(check_code, "@", "'@'"),
        "date": _message(parse_date, "@", "'@'"),
        "calendar": _message(parse_date, "2021-02-30", "2021-02-30"),
        "modifier": _message(check_modifiers, "@", "'@'"),
        "modifiers": _message(check_modifiers, many, str(len(many))),
        "pos": _message(check_pos, "@", "'@'"),
        "claim_type": _message(check_claim_type, "@", "'@'"),
        "unknown": _message(lambda key: parse_line({key: "x"}, cast(Any, None)), "@", "'@'"),
        "rcc": _message(check_rcc, "@", "'@'"),
    }


def data_script(payload: dict[str, Any]) -> str:
    """A data file: one JSON value handed to the form's script. ``</`` is escaped so that no value can close
    a script element, and every non-ASCII character too, so the file reads the same in any encoding."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("</", "<\\/")
    return f"(window.CMAP_CHECK_DATA = window.CMAP_CHECK_DATA || []).push({text});\n"


def check_files(policy: Policy) -> dict[str, str]:
    """Every data file of the form, by its path under docs/."""
    return {path: data_script(payload) for path, payload in CheckData(policy).files().items()}
