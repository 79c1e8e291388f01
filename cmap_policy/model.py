"""The policy and the decision as immutable values.

Everything here is a frozen dataclass: once ``load_policy`` returns, nothing in
the policy can change, so a decision can be cached and shared safely.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import UnknownReleaseError

Date = dt.date

MAX_AGE = 130  # the oldest member age a claim line may carry, in whole years
MAX_UNITS = 100_000  # the most units a claim line may carry for one day


class Outcome(StrEnum):
    PAYABLE = "payable"
    NOT_PAYABLE = "not_payable"
    NOT_TELEHEALTH = "not_telehealth"
    # The data cannot decide: the public sources it holds are silent on this line (a code or a date they do
    # not cover, a modality they neither allow nor rule out). The official CMAP Telehealth Table decides.
    UNDETERMINED = "undetermined"


def in_force(effective: Date | None, end: Date | None, day: Date) -> bool:
    """Whether a dated rule (no start: from always; no end: until changed) is in force on ``day``."""
    return (effective is None or effective <= day) and (end is None or day <= end)


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    url: str
    kind: str
    secondary: bool
    publisher: str = ""
    published: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Citation:
    source: Source
    section: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "source": self.source.id,
            "title": self.source.title,
            "url": self.source.url,
            "secondary": self.source.secondary,
        }
        if self.section:
            out["section"] = self.section
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Modality:
    id: str
    name: str
    description: str
    coverage: str  # "all-listed-codes" | "where-dss-specifies" | "not-covered"
    citation: Citation


@dataclass(frozen=True, slots=True)
class Guidance:
    """A dated billing rule for a place of service: "bill it this way" (``warn``) or, only where a source
    says lines are denied, ``deny``."""

    kind: str  # "warn" | "deny"
    text: str
    citation: Citation
    effective: Date | None = None
    end: Date | None = None
    start_known: bool = True

    def in_force(self, day: Date) -> bool:
        return in_force(self.effective, self.end, day)


@dataclass(frozen=True, slots=True)
class Modifier:
    code: str
    meaning: str
    modality: str | None  # the modality it signals, or None (it says nothing of how the member was seen)
    claim_types: tuple[str, ...]
    citation: Citation
    note: str = ""
    marks_telehealth: bool = True  # False for a modifier about something else (FR: how a supervisor was present)
    effective: Date | None = None  # the first date of service it exists in its code set, when a source says
    end: Date | None = None

    def in_effect(self, day: Date) -> bool:
        return in_force(self.effective, self.end, day)


@dataclass(frozen=True, slots=True)
class PlaceOfService:
    code: str
    name: str
    marks_telehealth: bool
    citation: Citation
    note: str = ""
    effective: Date | None = None  # the first date of service it exists in the CMS code set
    end: Date | None = None
    guidance: tuple[Guidance, ...] = ()

    def in_effect(self, day: Date) -> bool:
        return in_force(self.effective, self.end, day)

    def guidance_on(self, day: Date) -> tuple[Guidance, ...]:
        return tuple(g for g in self.guidance if g.in_force(day))


@dataclass(frozen=True, slots=True)
class ClaimType:
    id: str
    name: str
    transaction: str


@dataclass(frozen=True, slots=True)
class Attestation:
    id: str
    text: str
    citation: Citation
    effective: Date
    end: Date | None = None
    modalities: tuple[str, ...] = ()  # empty: every telehealth line

    def applies(self, day: Date, modality: str | None) -> bool:
        in_force = self.effective <= day and (self.end is None or day <= self.end)
        return in_force and (not self.modalities or modality in self.modalities)


@dataclass(frozen=True, slots=True)
class Statute:
    id: str
    citation: str
    requirement: str
    source: Source


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Undecidable:
    """A question the sources raise that no claim line can answer, and why: said once, shown on the site."""

    id: str
    what: str  # a few words, for the site's coverage banner
    why: str
    citation: Citation | None = None


@dataclass(frozen=True, slots=True)
class Program:
    id: str
    name: str
    plans: tuple[str, ...]
    authority: str
    sources: Mapping[str, Source]
    statutes: tuple[Statute, ...]
    modalities: Mapping[str, Modality]
    modifiers: Mapping[str, Modifier]
    places_of_service: Mapping[str, PlaceOfService]
    claim_types: Mapping[str, ClaimType]
    categories: Mapping[str, Category]
    attestations: tuple[Attestation, ...]
    official_table: Citation | None = None  # where the official table is: what decides when the data cannot
    citation: Citation | None = None  # where the program's telehealth policy is published (the page the table is on)
    era_rules: tuple[EraRule, ...] = ()  # what sources say of a stretch of dates for every code (see EraRule)
    undecidable: tuple[Undecidable, ...] = ()  # what a claim line cannot decide, and why

    def era_rules_on(self, day: Date, modality: str | None) -> tuple[EraRule, ...]:
        return tuple(r for r in self.era_rules if r.applies(day, modality))

    def date_bounds(self) -> tuple[Date, ...]:
        """Every date on which something the program says about a line starts or stops applying."""
        bounds: set[Date] = set()

        def add(effective: Date | None, end: Date | None) -> None:
            if effective is not None:
                bounds.add(effective)
            if end is not None and end < dt.date.max:
                bounds.add(end + dt.timedelta(days=1))

        for a in self.attestations:
            add(a.effective, a.end)
        for r in self.era_rules:
            add(r.effective, r.end)
        for m in self.modifiers.values():
            add(m.effective, m.end)
        for p in self.places_of_service.values():
            add(p.effective, p.end)
            for g in p.guidance:
                add(g.effective, g.end)
        return tuple(sorted(bounds))


@dataclass(frozen=True, slots=True)
class StartCorrection:
    """A row whose start an earlier source did not know, dated by a later release (the official table)."""

    code: str
    was: Date  # the date the earlier source first saw the row in force
    now: Date  # its real start
    introduced_in: str


@dataclass(frozen=True, slots=True)
class Release:
    id: str
    published: Date
    effective: Date
    implements: tuple[Source, ...]
    summary: str
    ordinal: int
    # "complete": the release states the whole table (an import of the official spreadsheet): a code it does
    # not list is not on the table, for dates of service from ``covers_from``. "partial": it names only some
    # rows (a bulletin, an Important Message, a secondary reading); a code it does not name keeps what
    # earlier releases said of it, and what no release says is unknown.
    coverage: str = "partial"
    covers_from: Date | None = None
    dates_known: bool = True  # False: no source gives the dates; published and effective are lower bounds
    corrections: tuple[StartCorrection, ...] = ()
    # the authors' own paragraphs for the release's Important Message draft, kept word for word
    notice_paragraphs: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.coverage == "complete"


@dataclass(frozen=True, slots=True)
class Limit:
    """A machine-checkable condition of a period, with its human guideline."""

    kind: str  # "age" | "provider-type" | "established-patient" | "units-per-day"
    guideline: str
    citation: Citation | None
    modalities: tuple[str, ...] = ()  # empty: applies to every modality
    min_age: int | None = None
    max_age: int | None = None
    provider_types: tuple[str, ...] = ()
    max_units: int | None = None

    def applies_to(self, modality: str | None) -> bool:
        return not self.modalities or modality in self.modalities

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "guideline": self.guideline}
        if self.modalities:
            out["modalities"] = list(self.modalities)
        for name in ("min_age", "max_age", "max_units"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.provider_types:
            out["provider_types"] = list(self.provider_types)
        if self.citation is not None:
            out["citation"] = self.citation.as_dict()
        return out


LIMIT_FIELDS = {"age": "member_age", "provider-type": "provider_type", "established-patient": "established_patient",
                "units-per-day": "units"}  # the kind of a limit -> the claim line's field it reads

UNSPECIFIED = "unspecified"  # an era rule's stand-in for a line that does not say how it was delivered


@dataclass(frozen=True, slots=True)
class EraRule:
    """What a source says of every line of a modality in a stretch of dates, whatever its code.

    Sources on the years before the pandemic and on its bulletins speak of categories ("live video was
    not paid", "telephone only for case management of members 18 and under", "e-consults in four
    settings") without naming codes. A rule speaks only where no row decides the line (a row, the
    official table's above all, outranks it). A rule of verdict ``deny`` denies every such line; a rule
    of verdict ``undetermined`` names a category no code of which can be recognised, so it says why the
    line is undetermined; its ``limits`` deny what the line's own fields rule out (an adult's telephone
    line) and are listed to confirm when the line lacks the field.
    """

    id: str
    verdict: str  # "deny" | "undetermined"
    text: str
    citation: Citation
    modalities: tuple[str, ...]  # modality ids, or UNSPECIFIED for a line that does not say
    effective: Date | None = None  # None: since always
    end: Date | None = None
    category: str | None = None  # the category of codes it speaks of, when a source names one
    limits: tuple[Limit, ...] = ()

    def in_force(self, day: Date) -> bool:
        return (self.effective is None or self.effective <= day) and (self.end is None or day <= self.end)

    def applies(self, day: Date, modality: str | None) -> bool:
        return self.in_force(day) and (modality if modality is not None else UNSPECIFIED) in self.modalities


@dataclass(frozen=True, slots=True)
class Period:
    code: str
    effective: Date
    end: Date | None
    permitted: bool
    modalities: tuple[str, ...]
    revenue_center_codes: tuple[str, ...]
    limits: tuple[Limit, ...]
    guideline: str
    citation: Citation
    introduced_in: str
    ended_in: str | None
    dates_note: str = ""
    # False when ``effective`` is only the earliest date a source shows the row in force (a dated copy of the
    # table), not the day it started: before it, back to the last state the data knows, the data cannot say.
    start_known: bool = True
    # Modalities the sources neither allow nor rule out for this row: a line by one of them is undetermined.
    undetermined_modalities: tuple[str, ...] = ()
    # True when the source says the code leaves the table at ``end``: until a later row, it is not listed.
    removed: bool = False

    @property
    def id(self) -> str:
        return f"{self.code}@{self.effective.isoformat()}"

    def covers(self, day: Date) -> bool:
        return self.effective <= day and (self.end is None or day <= self.end)

    @property
    def secondary(self) -> bool:
        return self.citation.source.secondary

    def as_dict(self) -> dict[str, object]:
        """The period as plain data; limits in a stable order (their order in the file means nothing)."""
        return {
            "code": self.code,
            "period": self.id,
            "effective": self.effective.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "status": "permitted" if self.permitted else "not-permitted",
            "modalities": list(self.modalities),
            "revenue_center_codes": list(self.revenue_center_codes),
            "guideline": self.guideline,
            "limits": sorted((lim.as_dict() for lim in self.limits), key=lambda d: json.dumps(d, sort_keys=True)),
            "citation": self.citation.as_dict(),
            "introduced_in": self.introduced_in,
            "ended_in": self.ended_in,
            "dates_note": self.dates_note,
            "start_known": self.start_known,
            "undetermined_modalities": list(self.undetermined_modalities),
            "removed": self.removed,
        }


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    system: str  # "CPT" | "HCPCS"
    description: str
    category: str
    periods: tuple[Period, ...]
    file: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class CodeView:
    """A code's periods as published in one release, ready for a bisect."""

    code: Code
    periods: tuple[Period, ...]
    starts: tuple[int, ...]  # ordinal days of each period's effective date


@dataclass(frozen=True, slots=True)
class Policy:
    root: str
    program: Program
    releases: tuple[Release, ...]
    codes: Mapping[str, Code]
    hash: str
    views: Mapping[str, Mapping[str, CodeView]] = field(repr=False)
    # release id -> the first date of service from which its view holds the whole table (the ``covers_from``
    # of the latest complete release up to it), or None when it holds only the rows sources name
    complete_from: Mapping[str, Date | None] = field(default_factory=dict, repr=False)
    # the checked documents it was built from, as plain JSON data (``loader.as_data``): a Spark job ships the
    # very policy it was given to its workers, whatever has become of its tree since. Never changed, never run.
    documents: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def holds_whole_table(self, release_id: str, day: Date) -> bool:
        """Whether the view of ``release_id`` is the whole table on ``day``: a code it lacks is not listed."""
        start = self.complete_from.get(release_id)
        return start is not None and day >= start

    @property
    def latest(self) -> Release:
        return self.releases[-1]

    def release(self, release_id: str | None) -> Release:
        if release_id is None:
            return self.latest
        for rel in self.releases:
            if rel.id == release_id:
                return rel
        raise UnknownReleaseError(release_id, tuple(r.id for r in self.releases))


@dataclass(frozen=True, slots=True)
class ClaimLine:
    code: str
    date: Date
    modifiers: tuple[str, ...] = ()
    pos: str | None = None
    claim_type: str = "professional"
    rcc: str | None = None
    modality: str | None = None
    member_age: int | None = None
    provider_type: str | None = None
    units: int | None = None
    established_patient: bool | None = None
    line_id: str | None = None
    claim_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    kind: str  # "deny" | "undetermined" | "warn" | "info" (reasons.KINDS)
    message: str
    carc: str | None
    rule: str | None  # "policy/codes/97153.json#97153@2020-03-18" or "policy/program.json#/modifiers/95"
    citation: Citation | None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "kind": self.kind, "message": self.message}
        if self.carc is not None:
            out["carc"] = self.carc
        if self.rule is not None:
            out["rule"] = self.rule
        if self.citation is not None:
            out["citation"] = self.citation.as_dict()
        return out


# What a decision decided, as the comparisons of decisions (a log's replay, the authors' tests) compare it; a
# summary also says against what it was decided (``SUMMARY_FIELDS``), which a changed policy changes by itself.
DECIDED_FIELDS = ("outcome", "reasons", "period")
SUMMARY_FIELDS = (*DECIDED_FIELDS, "release", "policy_hash")


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """A decision without its wording: the one shape in which the decision log keeps a decision, replay
    compares the logged one with the new one, and an author test compares its expectation with what came out.
    """

    outcome: str  # Outcome's value
    reasons: tuple[str, ...]  # the reason codes, in the decision's order (reasons.ORDER)
    period: str | None  # the id of the matched row
    release: str
    policy_hash: str

    def as_dict(self, fields: tuple[str, ...] = SUMMARY_FIELDS) -> dict[str, Any]:
        """``fields`` of the summary (all of them by default; ``DECIDED_FIELDS`` for what was decided) as JSON."""
        out: dict[str, Any] = {"outcome": self.outcome, "reasons": list(self.reasons), "period": self.period,
                               "release": self.release, "policy_hash": self.policy_hash}
        return {name: out[name] for name in fields}


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    period: Period | None
    modality: str | None
    attestations: tuple[Attestation, ...]
    release: str
    policy_hash: str
    to_confirm: tuple[Limit, ...] = ()

    @property
    def payable(self) -> bool:
        return self.outcome is Outcome.PAYABLE

    @property
    def undetermined(self) -> bool:
        return self.outcome is Outcome.UNDETERMINED

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def summary(self) -> DecisionSummary:
        return DecisionSummary(self.outcome.value, self.reason_codes, self.period.id if self.period else None,
                               self.release, self.policy_hash)

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "period": self.period.id if self.period else None,
            "modality": self.modality,
            "attestations": [{"id": a.id, "text": a.text} for a in self.attestations],
            "to_confirm": [{"kind": lim.kind, "guideline": lim.guideline} for lim in self.to_confirm],
            "release": self.release,
            "policy_hash": self.policy_hash,
        }
