"""Author tests: claim lines with the decision a policy's authors expect, and what they cover.

Like ``opa test`` or OpenFisca's YAML tests, each case of a test file (``tests/*.json``
beside the policy, under ``schema/tests.schema.json``) passes or fails, and a failure
says field by field what was expected and what came out. Coverage counts the periods
(in every release's view of the table) whose decisions the cases reach, and the reason
codes they produce; reasons the policy's data can never produce are reported apart as
unreachable rather than counted against the authors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LineError, Problem, SpecFileError
from ..guard import tree_files
from ..lines import CLAIM_TYPES, parse_line
from ..load import schema
from ..load.jsonfile import JsonDoc, read_json
from ..load.loader import load_policy
from ..model import DECIDED_FIELDS, MAX_AGE, MAX_UNITS, ClaimLine, Decision, Policy
from ..reasons import ORDER, REASONS
from ..resources import working_policy_dir
from ..results import decision_of

__all__ = ["CaseResult", "Coverage", "SpecFileError", "SpecReport", "load_cases", "reachable_reasons", "test"]

# parse_line caps ages and units (model.MAX_AGE, MAX_UNITS), so a limit beyond them can never be broken.
_RCC_SPACE = 10_000




@dataclass(frozen=True, slots=True)
class Case:
    file: str
    pointer: str
    line_no: int | None
    name: str
    release: str | None
    line: ClaimLine
    expect: dict[str, Any]
    note: str = ""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case and its verdict; ``diff`` lists each expected field that came out otherwise."""

    case: Case
    release: str
    actual: dict[str, Any]
    diff: tuple[dict[str, Any], ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        return not self.diff

    def as_dict(self) -> dict[str, Any]:
        c = self.case
        return {"file": c.file, "line": c.line_no, "pointer": c.pointer, "name": c.name, "release": self.release,
                "passed": self.passed, "expected": c.expect, "actual": self.actual, "diff": list(self.diff)}


@dataclass(frozen=True, slots=True)
class Coverage:
    periods: tuple[tuple[str, str], ...]  # (release id, period id) in every release's view
    periods_covered: frozenset[tuple[str, str]]
    reasons_covered: frozenset[str]
    unreachable: dict[str, str]  # reason code -> why the policy's data cannot produce it

    @property
    def periods_uncovered(self) -> tuple[tuple[str, str], ...]:
        return tuple(p for p in self.periods if p not in self.periods_covered)

    @property
    def reasons_reachable(self) -> tuple[str, ...]:
        return tuple(r for r in REASONS if r not in self.unreachable)

    @property
    def reasons_uncovered(self) -> tuple[str, ...]:
        return tuple(r for r in self.reasons_reachable if r not in self.reasons_covered)

    @property
    def period_percent(self) -> float:
        return _percent(len(self.periods) - len(self.periods_uncovered), len(self.periods))

    @property
    def reason_percent(self) -> float:
        reachable = self.reasons_reachable
        return _percent(len(reachable) - len(self.reasons_uncovered), len(reachable))

    def as_dict(self) -> dict[str, Any]:
        return {
            "periods": {
                "total": len(self.periods),
                "covered": len(self.periods) - len(self.periods_uncovered),
                "percent": self.period_percent,
                "uncovered": [{"release": r, "period": p} for r, p in self.periods_uncovered],
            },
            "reasons": {
                "reachable": len(self.reasons_reachable),
                "covered": sorted(self.reasons_covered & set(self.reasons_reachable), key=ORDER.__getitem__),
                "percent": self.reason_percent,
                "uncovered": list(self.reasons_uncovered),
                "unreachable": dict(sorted(self.unreachable.items(), key=lambda kv: ORDER[kv[0]])),
            },
        }


def _percent(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else round(100.0 * part / whole, 1)


@dataclass(frozen=True, slots=True)
class SpecReport:
    files: tuple[str, ...]
    results: tuple[CaseResult, ...]
    coverage: Coverage
    fail_under: float | None = None
    policy_hash: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def coverage_ok(self) -> bool:
        if self.fail_under is None:
            return True
        return min(self.coverage.period_percent, self.coverage.reason_percent) >= self.fail_under

    @property
    def ok(self) -> bool:
        return self.failed == 0 and bool(self.results) and self.coverage_ok

    @property
    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

    def as_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "policy_hash": self.policy_hash,
                "cases": [r.as_dict() for r in self.results], "coverage": self.coverage.as_dict(),
                "fail_under": self.fail_under, "coverage_ok": self.coverage_ok, "passed": self.passed,
                "failed": self.failed, "ok": self.ok, "summary": self.summary}


# --- finding and reading test files -------------------------------------------------------------------------------

def resolve(path: str | Path | None, policy: str | Path | None) -> tuple[Path, Path]:
    """(policy folder, tests file or folder). Without ``policy``, a tests folder beside a policy tree uses that tree."""
    if path is None:
        root = Path(policy) if policy is not None else working_policy_dir()
        return root, root / "tests"
    target = Path(path)
    if policy is not None:
        return Path(policy), target
    folder = target if target.is_dir() else target.parent
    if (folder / "program.json").is_file():  # PATH is the policy folder itself
        return folder, folder / "tests"
    if (folder.parent / "program.json").is_file():  # PATH is the tests folder (or a file in it) beside a policy
        return folder.parent, target
    return working_policy_dir(), target


def _shown(path: Path, root: Path) -> str:
    try:  # the file's own name, not the target of a link: a link out of the tree is named where it is
        return str(Path(root.name) / (path.parent.resolve() / path.name).relative_to(root.resolve()))
    except ValueError:
        return str(path)


def test_files(target: Path) -> list[Path]:
    """The test files under ``target`` (or ``target`` itself): links, FIFOs and devices too, which the reader
    then refuses by name."""
    if target.is_dir():
        return tree_files(target, "*.json", recursive=True)
    return [target]


def load_cases(files: Iterable[Path], policy: Policy, within: Path | None = None) -> list[Case]:
    """Every case of ``files``, checked by the tests schema and against ``policy``; ``SpecFileError`` otherwise.

    Each file is read only if it is a regular file inside ``within`` (default: its own folder).
    """
    root = Path(policy.root)
    problems: list[Problem] = []
    cases: list[Case] = []
    for path in files:
        shown = _shown(path, root)
        if not path.exists() and not path.is_symlink():
            problems.append(Problem(shown, "", "no test file here", "io", "give a tests folder or a .json file"))
            continue
        doc = read_json(path, shown, within if within is not None else path.parent)
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        found = schema.check(doc, "tests")
        if found:
            problems.extend(found)
            continue
        file_problems = list(_check_cases(doc, policy))
        problems.extend(file_problems)
        if not file_problems:
            cases.extend(_cases(doc, policy))
    if problems:
        raise SpecFileError(problems)
    return cases


def _check_cases(doc: JsonDoc, policy: Policy) -> Iterator[Problem]:
    """What the schema cannot say: names, releases, modifiers, modalities and periods the policy knows."""
    program = policy.program
    releases = {r.id for r in policy.releases}
    names: dict[str, int] = {}
    for i, case in enumerate(doc.data["cases"]):
        base = f"/cases/{i}"
        if case["name"] in names:
            yield doc.problem(f"{base}/name", f"duplicate case name {case['name']!r} (first at /cases/"
                              f"{names[case['name']]})", "meaning:duplicate", "give each case its own name")
        names.setdefault(case["name"], i)
        release = case.get("release")
        if release is not None and release not in releases:
            yield doc.problem(f"{base}/release", f"unknown release {release!r}", "meaning:unknown-release",
                              f"use one of {', '.join(r.id for r in policy.releases)}")
        line = case["line"]
        for j, mod in enumerate(line.get("modifiers", [])):
            if mod not in program.modifiers:
                yield doc.problem(f"{base}/line/modifiers/{j}", f"unknown modifier {mod!r}: not a telehealth "
                                  "modifier of this policy", "meaning:unknown-modifier",
                                  f"use one of {', '.join(program.modifiers)}; other modifiers never change a "
                                  "decision, so leave them out")
        if "modality" in line and line["modality"] not in program.modalities:
            yield doc.problem(f"{base}/line/modality", f"unknown modality {line['modality']!r}",
                              "meaning:unknown-modality", f"use one of {', '.join(program.modalities)}")
        if line.get("claim_type", "professional") not in program.claim_types:
            yield doc.problem(f"{base}/line/claim_type", f"claim type {line['claim_type']!r} is not in program.json",
                              "meaning:unknown-claim-type", f"use one of {', '.join(program.claim_types)}")
        expect = case["expect"]
        reasons = set(expect["reasons"])
        outcome = expect["outcome"]
        yield from _impossible(doc, base, outcome, reasons)
        period = expect.get("period")
        if period is not None:
            code, _, effective = period.partition("@")
            known = policy.codes.get(code)
            if code != line["code"]:
                yield doc.problem(f"{base}/expect/period", f"period {period!r} is not a period of {line['code']}",
                                  "meaning:unknown-period", f"name a period of {line['code']}: {line['code']}@DATE")
            elif known is None or all(p.effective.isoformat() != effective for p in known.periods):
                have = ", ".join(p.id for p in known.periods) if known else "none: the code is not listed"
                yield doc.problem(f"{base}/expect/period", f"{code} has no period starting {effective}",
                                  "meaning:unknown-period", f"its periods: {have}")


def _cases(doc: JsonDoc, policy: Policy) -> Iterator[Case]:
    for i, raw in enumerate(doc.data["cases"]):
        pointer = f"/cases/{i}"
        line_no, _ = doc.position(pointer)
        try:
            line = parse_line(raw["line"], policy.program)
        except LineError as err:  # the schema and the meaning checks leave little for this to catch
            raise SpecFileError([doc.problem(f"{pointer}/line/{err.field}" if err.field else f"{pointer}/line",
                                             err.message, "meaning:line", "fix the claim line")]) from None
        yield Case(doc.path, pointer, line_no, raw["name"], raw.get("release"), line, raw["expect"],
                   raw.get("note", ""))


# --- running cases ------------------------------------------------------------------------------------------------

def _sorted_reasons(codes: Iterable[str]) -> list[str]:
    return sorted(set(codes), key=ORDER.__getitem__)


def run_case(case: Case, policy: Policy) -> CaseResult:
    decision = decision_of(case.line, case.line_no or 0, policy, case.release)
    actual = decision.summary().as_dict(DECIDED_FIELDS)
    expect = case.expect
    diff: list[dict[str, Any]] = []
    if expect["outcome"] != actual["outcome"]:
        diff.append({"field": "outcome", "expected": expect["outcome"], "actual": actual["outcome"]})
    want, got = set(expect["reasons"]), set(actual["reasons"])
    if want != got:
        diff.append({"field": "reasons", "expected": _sorted_reasons(want), "actual": _sorted_reasons(got),
                     "missing": _sorted_reasons(want - got), "unexpected": _sorted_reasons(got - want),
                     "messages": {r.code: r.message for r in decision.reasons if r.code not in want}})
    if "period" in expect and expect["period"] != actual["period"]:
        diff.append({"field": "period", "expected": expect["period"], "actual": actual["period"]})
    return CaseResult(case, decision.release, actual, tuple(diff), decision)


# --- coverage -----------------------------------------------------------------------------------------------------

def _uncovered_days(starts_ends: list[tuple[dt.date, dt.date | None]]) -> bool:
    """True when some date of service (from year 1 on) falls in no span."""
    day = dt.date.min
    for start, end in sorted(starts_ends):
        if start > day:
            return True
        if end is None or end >= dt.date.max:
            return False
        day = max(day, end + dt.timedelta(days=1))
    return True


def reachable_reasons(policy: Policy) -> dict[str, str]:
    """Reason codes that no claim line can get from this policy's data, each with why (empty: all reachable)."""
    program = policy.program
    periods = [p for view in policy.views.values() for cv in view.values() for p in cv.periods]
    permitted = [p for p in periods if p.permitted]
    limits = [*(lim for p in permitted for lim in p.limits), *(lim for r in program.era_rules for lim in r.limits)]
    signalled = {m.modality for m in program.modifiers.values() if m.modality is not None and m.marks_telehealth}
    claim_types = set(program.claim_types) | set(CLAIM_TYPES)
    why: dict[str, str] = {}
    if not permitted:
        why["ON_TELEHEALTH_TABLE"] = "no period is permitted"
    if not any(not p.permitted for p in periods):
        why["NOT_PERMITTED_VIA_TELEHEALTH"] = "no period is not-permitted"
    gaps = any(_uncovered_days([(p.effective, p.end) for p in cv.periods])
               for view in policy.views.values() for cv in view.values())
    whole = [d for d in policy.complete_from.values() if d is not None]
    # a row whose source says the code left the table makes the days after it (until a later row) known gaps
    left = any(p.removed and p.end is not None and p.end < dt.date.max
               and not (nxt is not None and nxt.effective <= p.end + dt.timedelta(days=1))
               for view in policy.views.values() for cv in view.values()
               for p, nxt in zip(cv.periods, [*cv.periods[1:], None], strict=True))
    if not whole:
        why["NOT_ON_TELEHEALTH_TABLE"] = "no release holds the whole table (coverage complete)"
    if not whole and not left:
        why["OUTSIDE_EFFECTIVE_DATES"] = "no release holds the whole table (coverage complete), and no row's source " \
                                         "says its code left the table"
    elif not gaps:
        why["OUTSIDE_EFFECTIVE_DATES"] = "every listed code has a period on every date"
    if len(whole) == len(policy.releases) and all(d == dt.date.min for d in whole):
        why["CODE_NOT_IN_DATA"] = "every release holds the whole table on every date"
        why["DATE_NOT_IN_DATA"] = "every release holds the whole table on every date"
    elif not gaps:
        why["DATE_NOT_IN_DATA"] = "every listed code has a period on every date"
    for verdict, code in (("deny", "NOT_PAID_IN_ERA"), ("undetermined", "ERA_UNDETERMINED")):
        if not any(r.verdict == verdict for r in program.era_rules):
            why[code] = f"no era rule has verdict {verdict}"
    telehealth_mods = [m for m in program.modifiers.values() if m.marks_telehealth]
    dated = [m for m in telehealth_mods if m.effective is not None or m.end is not None]
    if not dated:
        why["MODIFIER_NOT_IN_EFFECT"] = "no telehealth modifier has dates"
    places = [pos for pos in program.places_of_service.values() if pos.marks_telehealth]
    if not any(pos.effective is not None or pos.end is not None for pos in places):
        why["POS_NOT_IN_EFFECT"] = "no telehealth place of service has dates"
    if not any(g.kind == "deny" for pos in places for g in pos.guidance):
        why["POS_NOT_ACCEPTED"] = "no source denies a telehealth place of service"
    if not any(g.kind == "warn" for pos in places for g in pos.guidance):
        why["POS_GUIDANCE"] = "no place of service has billing guidance"
    if not any(set(p.undetermined_modalities) & signalled for p in permitted):
        why["MODALITY_UNDETERMINED"] = "no permitted period leaves a signalled modality undetermined"
    if not signalled or len(program.modalities) < 2:
        why["CONFLICTING_MODIFIERS"] = "no two modalities can be signalled on one line"
    possible = {m for m, mod in program.modalities.items() if mod.coverage != "not-covered"}
    if not any(m.modality is None for m in telehealth_mods) and not places:
        why["MODALITY_NOT_INDICATED"] = "every telehealth modifier names a modality and no place of service marks " \
                                        "telehealth"
        why["MODIFIER_EXPECTED"] = why["MODALITY_NOT_INDICATED"]
    else:
        if not any(possible - set(p.modalities) for p in permitted):
            why["MODALITY_NOT_INDICATED"] = "every permitted period allows every covered modality"
        if not any(possible <= set(p.modalities) for p in permitted):
            why["MODIFIER_EXPECTED"] = "no permitted period allows every covered modality"
    if not any(set(program.modalities) - set(p.modalities) for p in permitted):
        why["MODALITY_NOT_ALLOWED"] = "every permitted period allows every modality"
    if not any(claim_types - set(m.claim_types) for m in telehealth_mods):
        why["MODIFIER_NOT_FOR_CLAIM_TYPE"] = "every telehealth modifier is valid on every claim type"
    if not any(p.revenue_center_codes for p in permitted):
        why["RCC_REQUIRED"] = "no period lists revenue center codes"
    if not any(0 < len(p.revenue_center_codes) < _RCC_SPACE for p in permitted):
        why["RCC_NOT_ALLOWED"] = "no period lists revenue center codes"
    if not any(lim.kind == "age" and ((lim.min_age or 0) > 0 or (lim.max_age if lim.max_age is not None
                                                                   else MAX_AGE) < MAX_AGE) for lim in limits):
        why["AGE_OUTSIDE_LIMIT"] = "no period has an age limit"
    if not any(lim.kind == "provider-type" for lim in limits):
        why["PROVIDER_TYPE_NOT_ALLOWED"] = "no period has a provider-type limit"
    if not any(lim.kind == "established-patient" for lim in limits):
        why["ESTABLISHED_PATIENT_REQUIRED"] = "no period has an established-patient limit"
    if not any(lim.kind == "units-per-day" and lim.max_units is not None and lim.max_units < MAX_UNITS
               for lim in limits):
        why["UNITS_OVER_LIMIT"] = "no period has a units-per-day limit"
    return why


def _impossible(doc: JsonDoc, base: str, outcome: str, reasons: set[str]) -> Iterator[Problem]:
    """An expected outcome that its expected reasons could never give (as ``interpreter.decide`` picks outcomes)."""
    kinds = {REASONS[r].kind for r in reasons}
    why = ""
    if outcome == "not_telehealth" and reasons != {"NOT_A_TELEHEALTH_LINE"}:
        why = "a not_telehealth decision gives exactly one reason, NOT_A_TELEHEALTH_LINE"
    elif outcome == "payable" and ("ON_TELEHEALTH_TABLE" not in reasons or kinds - {"info", "warn"}
                                   or "NOT_A_TELEHEALTH_LINE" in reasons):
        why = "a payable decision gives ON_TELEHEALTH_TABLE and, at most, warnings"
    elif outcome == "not_payable" and ("deny" not in kinds or "info" in kinds):
        why = "a not_payable decision gives at least one denial, and no ON_TELEHEALTH_TABLE / NOT_A_TELEHEALTH_LINE"
    elif outcome == "undetermined" and ("undetermined" not in kinds or kinds & {"deny", "info"}):
        why = "an undetermined decision gives at least one undetermined reason, and no denial or information"
    if why:
        yield doc.problem(f"{base}/expect/reasons", why, "meaning:impossible-expectation",
                          "change the expected reasons or the outcome (docs: the reason kinds)")


def coverage(policy: Policy, results: Iterable[CaseResult]) -> Coverage:
    items = tuple((rel.id, p.id) for rel in policy.releases for cv in policy.views[rel.id].values()
                  for p in cv.periods)
    covered: set[tuple[str, str]] = set()
    reasons: set[str] = set()
    for res in results:
        reasons.update(res.decision.reason_codes)
        if res.decision.period is not None:
            covered.add((res.release, res.decision.period.id))
    return Coverage(items, frozenset(covered), frozenset(reasons), reachable_reasons(policy))


# --- the entry point ----------------------------------------------------------------------------------------------

def test(path: str | Path | None = None, *, policy: str | Path | Policy | None = None,
         fail_under: float | None = None) -> SpecReport:
    """Run the author tests at ``path`` (a file or folder; default: the policy's ``tests/``) and measure coverage.

    ``policy`` is a policy folder or a loaded ``Policy``; without it, a tests folder beside a
    policy tree is run against that tree, and anything else against the bundled policy.
    Raises ``PolicyError`` when the policy does not load and ``SpecFileError`` when a test file
    is malformed; failing cases are results, not errors.
    """
    if isinstance(policy, Policy):
        pol = policy
        target = Path(path) if path is not None else Path(pol.root) / "tests"
    else:
        root, target = resolve(path, policy)
        pol = load_policy(root)
    files = test_files(target)
    notes = () if files else (f"no test files under {target}",)
    cases = load_cases(files, pol, target if target.is_dir() else None)
    results = tuple(run_case(c, pol) for c in cases)
    root = Path(pol.root)
    return SpecReport(tuple(_shown(f, root) for f in files), results, coverage(pol, results), fail_under, pol.hash,
                      notes)


# pytest collects module-level names starting with "test" from any module a test imports into its namespace.
test.__test__ = False  # type: ignore[attr-defined]
test_files.__test__ = False  # type: ignore[attr-defined]


# --- the text report ---

def _diff_lines(diff: dict[str, Any]) -> list[str]:
    name = diff["field"]
    if name != "reasons":
        return [f"      {name:<8} expected {diff['expected']}, got {diff['actual']}"]
    out = [f"      reasons  expected [{', '.join(diff['expected'])}], got [{', '.join(diff['actual'])}]"]
    if diff["missing"]:
        out.append(f"               - missing:    {', '.join(diff['missing'])}")
    for code in diff["unexpected"]:
        out.append(f"               + unexpected: {code}: {diff['messages'].get(code, '')}".rstrip(": "))
    return out


def render_text(report: SpecReport, verbose: bool = False) -> str:
    """The report for people: failures with an expected-versus-actual diff, coverage, and the counts last."""
    out: list[str] = []
    for res in report.results:
        c = res.case
        where = f"{c.file}:{c.line_no}" if c.line_no is not None else c.file
        if res.passed:
            if verbose:
                out.append(f"PASS  {where} {c.pointer}  {c.name}")
            continue
        out.append(f"FAIL  {where} {c.pointer}  {c.name}")
        out.append(f"      release  {res.release}")
        for d in res.diff:
            out.extend(_diff_lines(d))
    out.extend(report.notes)
    cov = report.coverage
    covered_periods = len(cov.periods) - len(cov.periods_uncovered)
    reachable = cov.reasons_reachable
    if out:  # a blank line parts the failures and notes from the coverage; nothing comes before it otherwise
        out.append("")
    out.append(f"coverage: periods {covered_periods}/{len(cov.periods)} ({cov.period_percent:.1f}%) in every "
               f"release's view; reasons {len(reachable) - len(cov.reasons_uncovered)}/{len(reachable)} reachable "
               f"({cov.reason_percent:.1f}%)")
    if cov.periods_uncovered:
        out.append("  uncovered periods:")
        out.extend(f"    {period} (release {rel})" for rel, period in cov.periods_uncovered)
    if cov.reasons_uncovered:
        out.append(f"  uncovered reasons: {', '.join(cov.reasons_uncovered)}")
    if cov.unreachable:
        out.append("  unreachable in this policy:")
        out.extend(f"    {code}: {why}" for code, why in cov.unreachable.items())
    if report.fail_under is not None and not report.coverage_ok:
        out.append(f"coverage is under {report.fail_under:g}%")
    out.append(report.summary)
    return "\n".join(out)
