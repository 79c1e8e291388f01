"""``diff``: what a change to the policy changes, row by row and decision by decision.

The decision-level diff is exhaustive, not sampled. The interpreter's input
space is finite once it is cut into classes that the interpreter cannot tell
apart, and every class is evaluated, with the real ``evaluate``, on both sides:

* codes: every code either side lists, plus one code neither lists (it stands
  for all the others);
* dates: intervals cut at every period boundary of the code on both sides and
  at every attestation date of both programs (a date inside an interval sees
  the same period and the same attestations as the interval's first day);
* the "front" of a line (modifiers, place of service, stated modality, claim
  type): every combination of modifier classes (modifiers with the same
  meaning on both sides are interchangeable), none or each modality stated,
  no place of service, an in-person one and each telehealth one, each claim
  type, evaluated against a code neither side lists, and grouped by what the
  interpreter made of them on each side (telehealth or not, which modality,
  which of the line-level denials). The rest of the interpreter only reads
  that, so one line per group stands for the group;
* revenue center codes (institutional lines of a code that has some): none,
  each one named on either side, one other;
* limit fields: absent, and the first value of each interval between the
  boundaries of the code's limits on either side. Each field only ever adds
  its own reason (or its own "to confirm"), so a combination of fields
  differs between the sides only if one field alone, or none, already does:
  fields are varied one at a time.

A decision is compared by its signature: outcome, reason codes, the limits
left to confirm and the attestations. Messages are not compared: they quote
guideline text, which the row diff reports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PolicyError
from .explain import describe_line
from .interpreter import evaluate, find_period
from .loader import load_policy
from .model import ClaimLine, Decision, Limit, Outcome, Period, Policy, Program
from .reasons import ORDER
from .resources import policy_dir

Signature = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
FrontSig = tuple[bool, str | None, tuple[str, ...]]

NO_DECISION_CHANGES = "no decision changes"
# Modifiers a reader expects to see in an example, in this order; any other modifier comes after.
PREFERRED_MODIFIERS = ("95", "93", "GQ", "G0", "GT", "FQ", "FR")
IN_PERSON_POS = ("11", "22", "12", "49", "99")
UNLISTED_CODES = ("99499", "99199", "T1999", "S9999", "G9999")
OTHER_RCCS = ("0100", "0101", "0110", "0120")
OTHER_PROVIDER_TYPE = "other-provider-type"
FRONT_DAY = dt.date(2000, 1, 1)  # the front of a line does not depend on the date
MAX_AGE = 130  # the highest age a claim line may carry (lines.parse_line)


class DiffError(Exception):
    """BASE or HEAD could not be read; the message says which and what to do."""


# --- the two sides ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """A policy as of one of its releases, with a label for people."""

    policy: Policy
    release: str
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "release": self.release, "policy_hash": self.policy.hash}


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def _repo_of(folder: Path) -> tuple[Path, str] | None:
    """(the git work tree holding ``folder``, the folder's path inside it), or None outside a repository."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        return None
    root = Path(top.stdout.decode().strip())
    try:
        inside = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return root, inside


def _is_revision(repo: Path, rev: str) -> bool:
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0


def load_revision(rev: str, policy: str | Path | None = None) -> Policy:
    """The policy tree as committed in git revision ``rev`` (read with ``git show``; nothing is checked out)."""
    folder = Path(policy) if policy is not None else policy_dir()
    found = _repo_of(folder)
    if found is None:
        raise DiffError(f"{folder} is not inside a git repository, so {rev!r} cannot be read as a revision")
    repo, inside = found
    if not _is_revision(repo, rev):
        raise DiffError(f"{rev!r} is not a git revision of {repo.name} (try main, origin/main or a commit id)")
    listing = _git(repo, "ls-tree", "-r", "--name-only", rev, "--", f"{inside}/")
    names = [n for n in listing.stdout.decode().splitlines() if n.endswith(".json")]
    if listing.returncode != 0 or not names:
        raise DiffError(f"revision {rev!r} has no policy files under {inside}/")
    with tempfile.TemporaryDirectory(prefix="cmap-policy-") as tmp:
        root = Path(tmp) / folder.name  # the same folder name, so rule references read the same
        for name in names:
            blob = _git(repo, "show", f"{rev}:{name}")
            if blob.returncode != 0:
                raise DiffError(f"cannot read {name} at {rev!r}: {blob.stderr.decode().strip()}")
            target = root / Path(name).relative_to(inside)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)
        try:
            return load_policy(root)
        except PolicyError as err:
            raise DiffError(f"the policy at revision {rev!r} does not load: {err}") from None


def _load_folder(path: Path, what: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as err:
        raise DiffError(f"the {what} policy at {path} does not load: {err}; run `cmap-policy validate {path}`") \
            from None


def resolve(spec: str | Path | Policy | Side | None, *, policy: str | Path | None = None, what: str = "BASE",
            working: Policy | None = None) -> Side:
    """Read BASE or HEAD: a policy folder, a release id of the working policy, or a git revision.

    ``None`` is the working tree (``policy``, default the repository's policy folder) at its latest release.
    A prefix forces the reading when a name is ambiguous: ``path:``, ``release:`` or ``rev:``.
    """
    folder = Path(policy) if policy is not None else policy_dir()

    def work() -> Policy:
        return working if working is not None else _load_folder(folder, "working")

    if isinstance(spec, Side):
        return spec
    if isinstance(spec, Policy):
        return Side(spec, spec.latest.id, spec.root)
    if spec is None:
        pol = work()
        return Side(pol, pol.latest.id, "working tree")
    text = str(spec)
    kind, _, rest = text.partition(":")
    if kind in ("path", "release", "rev") and rest:
        text = rest
    else:
        kind = ""
    if kind == "path" or (not kind and isinstance(spec, Path)) or (not kind and Path(text).is_dir()):
        if not Path(text).is_dir():
            raise DiffError(f"{what} {text!r} is not a folder")
        pol = _load_folder(Path(text), what)
        return Side(pol, pol.latest.id, text)
    if kind in ("", "release"):
        pol = work()
        if any(r.id == text for r in pol.releases):
            return Side(pol, text, f"release {text}")
        if kind == "release":
            known = ", ".join(r.id for r in pol.releases)
            raise DiffError(f"{what}: unknown release {text!r} (known: {known})")
    found = _repo_of(folder) if folder.is_dir() else None
    if kind == "rev" or (found is not None and _is_revision(found[0], text)):
        pol = load_revision(text, folder)
    else:
        known = ", ".join(r.id for r in work().releases) if folder.is_dir() else "none"
        raise DiffError(f"{what} {text!r} is not a policy folder, a release id (known: {known}) or a git revision "
                        "of this repository (such as main or origin/main)")
    return Side(pol, pol.latest.id, text)


# --- rows: periods added, ended, changed ---------------------------------------------------------------------------


def period_dict(p: Period) -> dict[str, Any]:
    return p.as_dict()


def _field_changes(before: dict[str, Any], after: dict[str, Any], skip: Iterable[str] = ()) -> list[dict[str, Any]]:
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in after if k not in skip and before.get(k) != after.get(k)]


def _periods(side: Side, code: str) -> tuple[Period, ...]:
    view = side.policy.views[side.release].get(code)
    return view.periods if view is not None else ()


# Fields that say when and by which release, not what a row says: not "changes" when one row replaces another.
_BOOKKEEPING = ("code", "period", "effective", "end", "introduced_in", "ended_in", "dates_note")


def _replaced(periods: dict[dt.date, dict[str, Any]], day: dt.date) -> dict[str, Any] | None:
    """The period that ends the day before ``day``, if one does."""
    before = (day - dt.timedelta(days=1)).isoformat()
    return next((p for p in periods.values() if p["end"] == before), None)


def row_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Periods (rows of the table) added, ended, changed or removed between ``base`` and ``head``."""
    rows: list[dict[str, Any]] = []
    codes = sorted(set(base.policy.views[base.release]) | set(head.policy.views[head.release]))
    for code in codes:
        old = {p.effective: period_dict(p) for p in _periods(base, code)}
        new = {p.effective: period_dict(p) for p in _periods(head, code)}
        for day in sorted(set(old) | set(new)):
            a, b = old.get(day), new.get(day)
            if a is None and b is not None:
                row = {"action": "added", **b, "changes": []}
                prev = _replaced(new, day)
                if prev is not None:
                    # a row that takes over the day after another ends: say what it changes
                    row["replaces"] = prev["period"]
                    row["changes"] = _field_changes(prev, b, skip=_BOOKKEEPING)
                rows.append(row)
            elif b is None and a is not None:
                rows.append({"action": "removed", **a, "changes": []})
            elif a is not None and b is not None and a != b:
                changes = _field_changes(a, b, skip=("code", "period"))
                action = "ended" if a["end"] is None and b["end"] is not None else "changed"
                rows.append({"action": action, **b, "changes": changes})
    return rows


def _code_attrs(policy: Policy, code: str) -> dict[str, Any] | None:
    c = policy.codes.get(code)
    if c is None:
        return None
    return {"system": c.system, "description": c.description, "category": c.category, "note": c.note}


def code_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Changes to a code's own fields (description, category...), for codes both sides list."""
    out = []
    for code in sorted(set(base.policy.codes) & set(head.policy.codes)):
        a, b = _code_attrs(base.policy, code), _code_attrs(head.policy, code)
        assert a is not None and b is not None
        changes = _field_changes(a, b)
        if changes:
            out.append({"code": code, "changes": changes})
    return out


def _program_items(program: Program) -> dict[str, dict[str, Any]]:
    return {
        "sources": dict(program.sources),
        "modalities": dict(program.modalities),
        "modifiers": dict(program.modifiers),
        "places_of_service": dict(program.places_of_service),
        "claim_types": dict(program.claim_types),
        "categories": dict(program.categories),
        "statutes": {s.id: s for s in program.statutes},
        "attestations": {a.id: a for a in program.attestations},
    }


def program_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Entries of program.json added, removed or changed, by section and id."""
    out = []
    a, b = _program_items(base.policy.program), _program_items(head.policy.program)
    for section in a:
        old, new = a[section], b[section]
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append({"section": section, "id": key, "action": "added"})
            elif key not in new:
                out.append({"section": section, "id": key, "action": "removed"})
            elif old[key] != new[key]:
                out.append({"section": section, "id": key, "action": "changed"})
    pa, pb = base.policy.program, head.policy.program
    for name in ("id", "name", "plans", "authority"):
        if getattr(pa, name) != getattr(pb, name):
            out.append({"section": "program", "id": name, "action": "changed"})
    return out


def release_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Releases in head's history (up to its release) that base's history does not hold, or holds differently."""
    def history(side: Side) -> dict[str, Any]:
        rel = side.policy.release(side.release)
        return {r.id: r for r in side.policy.releases[: rel.ordinal + 1]}

    old, new = history(base), history(head)
    out = []
    for rid, rel in new.items():
        was = old.get(rid)
        if was is not None and (was.published, was.effective, was.summary, was.implements) == (
                rel.published, rel.effective, rel.summary, rel.implements):
            continue
        out.append({"action": "added" if was is None else "changed", "id": rid,
                    "published": rel.published.isoformat(), "effective": rel.effective.isoformat(),
                    "implements": [s.id for s in rel.implements], "summary": rel.summary})
    return out


# --- decisions: the exhaustive comparison ------------------------------------------------------------------------


def signature(decision: Decision) -> Signature:
    """What a decision decides, without its wording: outcome, reasons, limits to confirm, attestations."""
    codes = sorted(set(decision.reason_codes), key=lambda c: ORDER.get(c, len(ORDER)))
    return (decision.outcome.value, tuple(codes), tuple(sorted({lim.kind for lim in decision.to_confirm})),
            tuple(sorted(a.id for a in decision.attestations)))


def signature_dict(sig: Signature) -> dict[str, Any]:
    return {"outcome": sig[0], "reasons": list(sig[1]), "to_confirm": list(sig[2]), "attestations": list(sig[3])}


def _program_key(program: Program) -> tuple[Any, ...]:
    """The parts of the program the interpreter's decisions depend on."""
    return (
        tuple(sorted((m.code, m.modality, tuple(sorted(m.claim_types))) for m in program.modifiers.values())),
        tuple(sorted((p.code, p.marks_telehealth, p.accepted) for p in program.places_of_service.values())),
        tuple(sorted(program.modalities)),
        tuple(sorted(program.claim_types)),
        tuple(sorted((a.id, a.effective, a.end, a.modalities) for a in program.attestations)),
    )


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
    telehealth = decision.outcome is not Outcome.NOT_TELEHEALTH
    line_reasons = tuple(sorted({r for r in decision.reason_codes if r != "NOT_ON_TELEHEALTH_TABLE"}))
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
        return None if m is None else (m.modality, tuple(sorted(m.claim_types)))

    def preference(code: str) -> tuple[int, str]:
        return (PREFERRED_MODIFIERS.index(code) if code in PREFERRED_MODIFIERS else len(PREFERRED_MODIFIERS), code)

    reps: dict[tuple[Any, ...], str] = {}
    for code in sorted(set(pa.modifiers) | set(pb.modifiers), key=preference):
        reps.setdefault((attrs(pa, code), attrs(pb, code)), code)
    return list(reps.values())


_FRONTS: dict[tuple[Any, ...], tuple[Front, ...]] = {}


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
    seen: dict[tuple[str, FrontSig, FrontSig], Front] = {}
    for claim_type, mods, modality, pos in candidates:
        line = ClaimLine(code, FRONT_DAY, modifiers=mods, pos=pos, claim_type=claim_type, modality=modality)
        fa = _front_sig(evaluate(base.policy, line, release=base.release))
        fb = _front_sig(evaluate(head.policy, line, release=head.release))
        if not fa[0] and not fb[0]:
            continue  # not telehealth on either side, whatever the code and date: it cannot flip
        seen.setdefault((claim_type, fa, fb), Front(mods, pos, modality, claim_type, fa, fb))
    result = tuple(seen.values())
    _FRONTS[key] = result
    return result


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


LIMIT_FIELDS = {"age": "member_age", "provider-type": "provider_type", "established-patient": "established_patient",
                "units-per-day": "units"}


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
    periods = [*_periods(base, code), *_periods(head, code)]
    rccs = sorted({r for p in periods for r in p.revenue_center_codes})
    other_rcc = next(r for r in OTHER_RCCS if r not in rccs)
    fields = _field_values(lim for p in periods for lim in p.limits)
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


def _period_key(p: Period) -> tuple[Any, ...]:
    limits = tuple(sorted((lim.kind, lim.modalities, lim.min_age, lim.max_age, lim.provider_types, lim.max_units)
                          for lim in p.limits))
    return (p.permitted, p.modalities, p.revenue_center_codes, limits)


def _state(side: Side, code: str, day: dt.date) -> tuple[Any, ...]:
    """Everything about ``day`` that a decision on ``code`` reads: the period in force and the attestations."""
    view = side.policy.views[side.release].get(code)
    if view is None:
        ps: tuple[Any, ...] = ("unlisted",)
    else:
        period = find_period(view, day)[0]
        ps = ("outside",) if period is None else ("period", *_period_key(period))
    att = tuple(sorted((a.id, a.modalities) for a in side.policy.program.attestations
                       if a.effective <= day and (a.end is None or day <= a.end)))
    return ps, att


def _next_day(day: dt.date) -> dt.date | None:
    return None if day == dt.date.max else day + dt.timedelta(days=1)


def _cells(code: str, base: Side, head: Side) -> list[tuple[dt.date | None, dt.date | None, dt.date]]:
    """(first day or None, last day or None, representative day) of each date interval for ``code``."""
    cuts: set[dt.date] = set()
    for p in [*_periods(base, code), *_periods(head, code)]:
        cuts.add(p.effective)
        if p.end is not None and (nxt := _next_day(p.end)) is not None:
            cuts.add(nxt)
    for a in [*base.policy.program.attestations, *head.policy.program.attestations]:
        cuts.add(a.effective)
        if a.end is not None and (nxt := _next_day(a.end)) is not None:
            cuts.add(nxt)
    ordered = sorted(cuts)
    if not ordered:
        return [(None, None, FRONT_DAY)]
    cells: list[tuple[dt.date | None, dt.date | None, dt.date]] = []
    if ordered[0] > dt.date.min:
        before = ordered[0] - dt.timedelta(days=1)
        cells.append((None, before, before))
    for i, start in enumerate(ordered):
        last = ordered[i + 1] - dt.timedelta(days=1) if i + 1 < len(ordered) else None
        cells.append((start, last, start))
    return cells


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
    rccs = {r for p in [*_periods(base, line.code), *_periods(head, line.code)] for r in p.revenue_center_codes}
    if line.claim_type == "institutional" and rccs:
        rcc = "none" if line.rcc is None else line.rcc if line.rcc in rccs else "other"
    else:
        rcc = "any"
    probe = ClaimLine(_unlisted(base, head), FRONT_DAY, modifiers=line.modifiers, pos=line.pos,
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
    cells: list[tuple[dt.date | None, dt.date | None, dt.date]]
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
    for ci, (_start, _end, day) in enumerate(result.cells):
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
            start, end = cd.cells[first][0], cd.cells[last][1]
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


# --- the result ------------------------------------------------------------------------------------------------------


@dataclass
class PolicyDiff:
    """The changes from ``base`` to ``head``: releases, program entries, codes, rows and decisions."""

    base: Side
    head: Side
    releases: list[dict[str, Any]]
    program: list[dict[str, Any]]
    codes: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    decisions: list[dict[str, Any]]

    @property
    def has_decision_changes(self) -> bool:
        return bool(self.decisions)

    @property
    def is_empty(self) -> bool:
        return not (self.releases or self.program or self.codes or self.rows or self.decisions)

    def flips(self) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """(example line record, before, after) for every change the diff reports."""
        return [(c["example"], c["before"], c["after"]) for e in self.decisions for c in e["changes"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.as_dict(),
            "head": self.head.as_dict(),
            "summary": self.summary(),
            "releases": self.releases,
            "program": self.program,
            "codes": self.codes,
            "rows": self.rows,
            "decisions": self.decisions,
        }

    def summary(self) -> str:
        if not self.decisions:
            return NO_DECISION_CHANGES
        codes = {e["code"] for e in self.decisions}
        n = sum(len(e["changes"]) for e in self.decisions)
        return (f"decision changes: {n} kind(s) of line in {len(self.decisions)} range(s) of "
                f"{len(codes)} code(s)")

    def to_markdown(self) -> str:
        return render_markdown(self)


def diff(base: str | Path | Policy | Side, head: str | Path | Policy | Side | None = None, *,
         policy: str | Path | None = None, exhaustive: bool = False) -> PolicyDiff:
    """Compare two policies: folders, git revisions of this repository, or release ids of the working policy.

    ``head`` defaults to the working tree (``policy``, default the repository's policy folder).
    """
    working: Policy | None = None
    if head is None or (isinstance(base, str) and not Path(base).is_dir()):
        folder = Path(policy) if policy is not None else policy_dir()
        working = _load_folder(folder, "working") if folder.is_dir() else None
    b = resolve(base, policy=policy, what="BASE", working=working)
    h = resolve(head, policy=policy, what="HEAD", working=working)
    return PolicyDiff(b, h, release_changes(b, h), program_changes(b, h), code_changes(b, h), row_changes(b, h),
                      decision_changes(b, h, exhaustive=exhaustive))


# --- Markdown ------------------------------------------------------------------------------------------------------

MAX_ROWS_PER_CODE = 30
# A pull-request comment holds at most 65,536 characters; leave room for the workflow's own text.
MAX_MARKDOWN_CHARS = 60_000


def _range(start: str | None, end: str | None) -> str:
    if start is None and end is None:
        return "every date"
    if start is None:
        return f"up to {end}"
    if end is None:
        return f"{start} onwards"
    return start if start == end else f"{start} to {end}"


def _decision_text(sig: dict[str, Any], other: dict[str, Any]) -> str:
    outcome = {"payable": "payable", "not_payable": "not payable", "not_telehealth": "not telehealth"}[sig["outcome"]]
    reasons = [r for r in sig["reasons"] if r not in ("ON_TELEHEALTH_TABLE", "NOT_A_TELEHEALTH_LINE")]
    text = f"**{outcome}**" + (f": {', '.join(reasons)}" if reasons else "")
    if sig["to_confirm"]:
        text += f" (confirm {', '.join(sig['to_confirm'])})"
    if sig["attestations"] != other["attestations"]:
        text += f"; attestations {', '.join(sig['attestations']) or 'none'}"
    return text


def _example_text(rec: dict[str, Any]) -> str:
    rec = dict(rec)
    line = ClaimLine(rec.pop("code"), dt.date.fromisoformat(rec.pop("date")),
                     modifiers=tuple(rec.pop("modifiers", ())), **rec)
    return describe_line(line)


def _period_span(row: dict[str, Any]) -> str:
    return f"{row['effective']} to {row['end']}" if row["end"] else f"from {row['effective']}"


def _cite(c: dict[str, Any]) -> str:
    text = str(c["source"]) + (f", {c['section']}" if c.get("section") else "")
    return text + (" (secondary)" if c.get("secondary") else "")


def _row_text(row: dict[str, Any]) -> str:
    if row["action"] == "added":
        what = ("payable by " + " or ".join(row["modalities"])) if row["status"] == "permitted" \
            else "not permitted via telehealth"
        if row["revenue_center_codes"]:
            what += f"; RCC {', '.join(row['revenue_center_codes'])}"
        if row.get("replaces"):
            changed = _change_list(row["changes"]) or "same content"
            what += f"; replaces {row['replaces']} ({changed})"
        return what
    if row["action"] == "removed":
        return "row removed"
    return _change_list(row["changes"])


def _change_list(changes: list[dict[str, Any]]) -> str:
    parts = []
    for ch in changes:
        before = "none" if ch["before"] in (None, [], "") else ch["before"]
        after = "none" if ch["after"] in (None, [], "") else ch["after"]
        if ch["field"] == "guideline":
            text = str(after) if len(str(after)) <= 200 else str(after)[:199] + "…"
            parts.append(f"guideline now: “{text}”")
        elif ch["field"] in ("dates_note", "limits", "citation"):
            parts.append(f"{ch['field']} changed")
        else:
            parts.append(f"{ch['field']}: {_plain(before)} → {_plain(after)}")
    return "; ".join(parts)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(d: PolicyDiff) -> str:
    """The diff as Markdown, for a pull-request comment."""
    out = [f"## Policy diff: `{d.base.label}` → `{d.head.label}`", "",
           f"Base: {d.base.label} (release {d.base.release}, policy hash `{d.base.policy.hash[:12]}`)  ",
           f"Head: {d.head.label} (release {d.head.release}, policy hash `{d.head.policy.hash[:12]}`)", ""]
    if d.base.policy.hash == d.head.policy.hash and d.base.release == d.head.release:
        out.append("The two policies have the same content hash: nothing changed but layout.")
        out.append("")
    if d.releases:
        out += ["### Releases", ""]
        for r in d.releases:
            out.append(f"- {r['action']} **{r['id']}** (published {r['published']}, effective {r['effective']}; "
                       f"implements {', '.join(r['implements'])}): {_esc(r['summary'])}")
        out.append("")
    if d.program:
        out += ["### Program (program.json)", ""]
        out += [f"- {p['section']}: {p['id']} {p['action']}" for p in d.program]
        out.append("")
    if d.codes:
        out += ["### Codes", ""]
        for c in d.codes:
            out.append(f"- {c['code']}: " + "; ".join(f"{ch['field']} changed" for ch in c["changes"]))
        out.append("")
    out += ["### Rows", ""]
    if d.rows:
        out += ["| Change | Code | Period | What | Citation | Release |", "|---|---|---|---|---|---|"]
        for row in d.rows:
            rel = row["ended_in"] if row["action"] == "ended" else row["introduced_in"]
            out.append(f"| {row['action']} | {row['code']} | {_period_span(row)} | {_esc(_row_text(row))} | "
                       f"{_esc(_cite(row['citation']))} | {rel} |")
    else:
        out.append("No rows added, ended or changed.")
    out += ["", "### Decisions", ""]
    if not d.decisions:
        out.append(f"**{NO_DECISION_CHANGES.capitalize()}.** Every claim line is decided as before.")
        return "\n".join(out) + "\n"
    head = "\n".join(out)
    for detail in (2, 1, 0):
        text = head + "\n" + "\n".join(_decision_sections(d, detail)) + "\n"
        if len(text) <= MAX_MARKDOWN_CHARS:
            return text
    return text


def _join(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


@dataclass
class _Row:
    """One row of a Markdown table: a date range, a before and an after as shown, the classes they apply to."""

    start: str | None
    end: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    claim_types: set[str]
    rccs: set[str]
    modalities: set[str]
    example: dict[str, Any]

    @property
    def span(self) -> str:
        return _range(self.start, self.end)

    @property
    def shown(self) -> tuple[str, str]:
        return _decision_text(self.before, self.after), _decision_text(self.after, self.before)


def _adjacent(end: str | None, start: str | None) -> bool:
    return end is not None and start is not None and \
        dt.date.fromisoformat(end) + dt.timedelta(days=1) == dt.date.fromisoformat(start)


def _table_rows(entries: list[dict[str, Any]]) -> list[_Row]:
    """The changes as a reader sees them: one row per date range and before and after as shown, whatever the
    claim type, RCC and modality; then adjacent ranges with the same row joined (the JSON keeps them apart
    when what differs is not shown, such as the attestations both sides give)."""
    by_span: dict[tuple[str | None, str | None, tuple[str, str]], _Row] = {}
    for e in entries:
        for c in e["changes"]:
            row = _Row(e["from"], e["to"], c["before"], c["after"], set(), set(), set(), c["example"])
            row = by_span.setdefault((e["from"], e["to"], row.shown), row)
            row.claim_types.add(e["claim_type"])
            row.rccs.add(e["rcc"])
            row.modalities.add(e["modality"])
    groups: dict[tuple[Any, ...], list[_Row]] = {}
    for row in by_span.values():
        key = (row.shown, tuple(sorted(row.claim_types)), tuple(sorted(row.rccs)), tuple(sorted(row.modalities)))
        groups.setdefault(key, []).append(row)
    out: list[_Row] = []
    for rows in groups.values():
        rows.sort(key=lambda r: r.start or "")
        joined = [rows[0]]
        for row in rows[1:]:
            if _adjacent(joined[-1].end, row.start):
                joined[-1] = _Row(joined[-1].start, row.end, joined[-1].before, joined[-1].after,
                                  joined[-1].claim_types, joined[-1].rccs, joined[-1].modalities, joined[-1].example)
            else:
                joined.append(row)
        out.extend(joined)
    out.sort(key=lambda r: (r.start or "", sorted(r.claim_types), sorted(r.modalities), r.shown))
    return out


def _decision_sections(d: PolicyDiff, detail: int) -> list[str]:
    """Per code: outcome flips in a table (detail >= 1), other reason changes folded away (detail 2)."""
    out = [f"{d.summary().capitalize()}. Checked exhaustively, not sampled: each row is a kind of claim line "
           "whose decision changes on those dates, with one example line that flips.", ""]
    by_code: dict[str, list[dict[str, Any]]] = {}
    for e in d.decisions:
        by_code.setdefault(e["code"], []).append(e)
    header = ["| Dates | Claim type | RCC | Modality | Before | After | Example line |",
              "|---|---|---|---|---|---|---|"]
    for code, entries in by_code.items():
        title = "Codes on neither table" if code == "*" else code
        rows = _table_rows(entries)
        flips = [r for r in rows if r.before["outcome"] != r.after["outcome"]]
        others = [r for r in rows if r.before["outcome"] == r.after["outcome"]]
        ranges = "; ".join(dict.fromkeys(r.span for r in sorted(rows, key=lambda r: r.start or "")))
        out.append(f"#### {title}")
        out.append("")
        out.append(f"Dates: {ranges}. {len(flips)} kind(s) of line change outcome; {len(others)} keep their "
                   "outcome with other reasons.")
        out.append("")
        if detail == 0:
            continue

        def table(items: list[_Row]) -> list[str]:
            lines = list(header)
            for r in items[:MAX_ROWS_PER_CODE]:
                before, after = r.shown
                lines.append(f"| {r.span} | {_join(r.claim_types)} | {_join(r.rccs)} | {_join(r.modalities)} | "
                             f"{before} | {after} | {_esc(_example_text(r.example))} |")
            if len(items) > MAX_ROWS_PER_CODE:
                lines += ["", f"… and {len(items) - MAX_ROWS_PER_CODE} more: `cmap-policy diff --format json` "
                          "lists them all."]
            return lines

        if flips:
            out += [*table(flips), ""]
        if others and detail == 2:
            out += [f"<details><summary>{len(others)} kind(s) of line keep their outcome with other "
                    "reasons</summary>", "", *table(others), "", "</details>", ""]
    return out
