"""Invariants of the interpreter and the loader, as Hypothesis properties.

They run over the bundled CMAP policy, the DEMO policy and generated (never CMAP) policies.
The reference for "which reasons apply to this line" is an oracle written here from the raw
JSON of the policy tree, sharing no code with ``cmap_policy.interpreter`` or the loader's
release views: when the two disagree, one of them is wrong.

Example counts come from the Hypothesis profile (tests/conftest.py): "ci" (CI=true) runs at
least 500 examples per property with no deadline, "dev" a quick 60. A generated policy is
written to disk and loaded once per example, and each example decides many lines.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import io
import json
import os
import random
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from cmap_policy import api
from cmap_policy.errors import PolicyError
from cmap_policy.interpreter import decide, evaluate
from cmap_policy.lines import parse_line
from cmap_policy.load.loader import load_policy
from cmap_policy.model import ClaimLine, Decision, Outcome, Policy, Reason
from cmap_policy.reasons import REASONS
from cmap_policy.resources import examples_dir, schema_dir
from cmap_policy.testing import PolicyTree, bundled_tree, read_tree, write_tree
from cmap_policy.testing.strategies import (
    CODE_POOL,
    DAY0,
    MODALITIES,
    OTHER_MODIFIERS,
    PROVIDER_TYPES,
    RCCS,
    SPAN_DAYS,
    claim_records,
    hostile_csv,
    hostile_json_fragment,
    hostile_jsonl,
    hostile_records,
    policy_trees,
)

from .hostile import assert_all_lines_accounted, batch_reads, interpreter_reads

# --- trees on disk ------------------------------------------------------------------------------------------------

BUNDLED_TREE = bundled_tree()
DEMO_TREE = read_tree(examples_dir() / "demo-policy")
_FIXED: dict[int, Policy] = {}
_AS_OF: dict[tuple[int, str], Policy] = {}  # the fixed trees as of each of their releases


def load_tree(tree: PolicyTree, folder: str = "policy") -> Policy:
    """Write ``tree`` to a fresh folder named ``folder`` and load it (rules name the folder, so it is fixed)."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_policy(write_tree(tree, Path(tmp) / folder))


# Each example is a whole policy and dozens of lines: large by Hypothesis's measure, and slow-ish by design.
# CMAP_PROPERTIES_NO_SHRINK=1 reports the first failing example as found, unshrunk: for deliberate-break runs,
# where loading a policy per shrink step makes shrinking take minutes.
PROPERTY = settings(suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow,
                                          HealthCheck.data_too_large, HealthCheck.filter_too_much],
                    **cast(dict[str, Any], {"phases": [Phase.explicit, Phase.reuse, Phase.generate]}
                           if os.environ.get("CMAP_PROPERTIES_NO_SHRINK") else {}))


@pytest.fixture(autouse=True)
def _no_policy_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load every generated policy for real: the on-disk cache of loaded policies would only add pickling."""
    monkeypatch.setenv("CMAP_POLICY_CACHE", "0")


def fixed_policy(tree: PolicyTree) -> Policy:
    if id(tree) not in _FIXED:
        _FIXED[id(tree)] = load_tree(tree)
    return _FIXED[id(tree)]


# --- the oracle: the policy as published in a release, and each reason, from the raw JSON -----------------------

def release_ids(tree: PolicyTree) -> list[str]:
    return [r["id"] for r in tree.releases["releases"]]


def as_of(tree: PolicyTree, release: str | None) -> PolicyTree:
    """The tree as it stood when ``release`` was published: later releases, the periods they added and the
    ends they set are dropped. Built from the raw documents, not from the loader's release views."""
    ids = release_ids(tree)
    keep = set(ids[: ids.index(release) + 1] if release is not None else ids)
    out = PolicyTree(copy.deepcopy(tree.program), {**tree.releases,
                                                    "releases": [r for r in tree.releases["releases"]
                                                                 if r["id"] in keep]})
    for name, doc in tree.codes.items():
        periods = []
        for p in doc["periods"]:
            if p["introduced_in"] not in keep:
                continue
            q = copy.deepcopy(p)
            if q.get("ended_in") not in keep:
                q.pop("end", None)
                q.pop("ended_in", None)
                q.pop("removed", None)
            for r in tree.releases["releases"]:
                for c in r.get("corrections", ()):
                    if r["id"] not in keep and (c["code"], c["introduced_in"], c["now"]) == (
                            doc["code"], q["introduced_in"], q["effective"]):
                        q["effective"], q["start_known"] = c["was"], False
            periods.append(q)
        if periods:
            out.codes[name] = {**copy.deepcopy(doc), "periods": periods}
    return out


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def covering(doc: dict[str, Any] | None, day: dt.date) -> list[dict[str, Any]]:
    if doc is None:
        return []
    return [p for p in doc["periods"] if _day(p["effective"]) <= day and ("end" not in p or day <= _day(p["end"]))]


def code_doc(tree: PolicyTree, code: str) -> dict[str, Any] | None:
    return next((d for d in tree.codes.values() if d["code"] == code), None)


def telehealth_modifiers(tree: PolicyTree, line: ClaimLine) -> list[dict[str, Any]]:
    """The program modifiers on the line that mark it as telehealth (FR, about a supervisor, does not)."""
    mods = {m["code"]: m for m in tree.program["modifiers"]}
    return [mods[m] for m in line.modifiers if m in mods and mods[m].get("marks_telehealth", True)]


def signalled(tree: PolicyTree, line: ClaimLine) -> set[str]:
    out = {m["modality"] for m in telehealth_modifiers(tree, line) if m["modality"] is not None}
    return out | ({line.modality} if line.modality is not None else set())


def in_force(item: dict[str, Any], day: dt.date) -> bool:
    return ("effective" not in item or _day(item["effective"]) <= day) and ("end" not in item or
                                                                           day <= _day(item["end"]))


def whole_table_on(published: PolicyTree, day: dt.date) -> bool:
    """Whether the tree (as of a release) holds the whole table on ``day``: its latest complete release says so."""
    complete = [r for r in published.releases["releases"] if r["coverage"] == "complete"]
    if not complete:
        return False
    last = complete[-1]
    return day >= _day(last.get("covers_from", last["effective"]))


DENY = {"NOT_ON_TELEHEALTH_TABLE", "NOT_PERMITTED_VIA_TELEHEALTH", "OUTSIDE_EFFECTIVE_DATES", "CONFLICTING_MODIFIERS",
        "MODIFIER_NOT_IN_EFFECT", "MODIFIER_NOT_FOR_CLAIM_TYPE", "POS_NOT_IN_EFFECT", "POS_NOT_ACCEPTED",
        "MODALITY_NOT_ALLOWED", "RCC_REQUIRED", "RCC_NOT_ALLOWED", "AGE_OUTSIDE_LIMIT", "PROVIDER_TYPE_NOT_ALLOWED",
        "ESTABLISHED_PATIENT_REQUIRED", "UNITS_OVER_LIMIT", "NOT_PAID_IN_ERA"}
SILENT = {"CODE_NOT_IN_DATA", "DATE_NOT_IN_DATA", "MODALITY_NOT_INDICATED", "MODALITY_UNDETERMINED",
          "ERA_UNDETERMINED"}
WARN = {"POS_GUIDANCE", "MODIFIER_EXPECTED"}


@dataclasses.dataclass
class Expected:
    outcome: Outcome
    reasons: dict[str, bool]  # every reason code -> whether it is true of the line
    period: str | None
    modality: str | None
    to_confirm: list[str]
    attestations: list[str]
    wrong_claim_type_modifiers: int = 0
    out_of_effect_modifiers: int = 0

    @property
    def codes(self) -> set[str]:
        return {code for code, holds in self.reasons.items() if holds}


def oracle(published: PolicyTree, line: ClaimLine) -> Expected:
    """What the decision must be, from ``published`` (a tree as of one release, see ``as_of``) alone."""
    prog = published.program
    places = {p["code"]: p for p in prog["places_of_service"]}
    th = telehealth_modifiers(published, line)
    pos = places.get(line.pos) if line.pos is not None else None
    pos_marks = bool(pos and pos["marks_telehealth"])
    r = dict.fromkeys(("NOT_A_TELEHEALTH_LINE", "ON_TELEHEALTH_TABLE", *DENY, *SILENT, *WARN), False)
    if not th and not pos_marks and line.modality is None:
        r["NOT_A_TELEHEALTH_LINE"] = True
        return Expected(Outcome.NOT_TELEHEALTH, r, None, None, [], [])
    day = line.date
    signals = signalled(published, line)
    modality = next(iter(signals)) if len(signals) == 1 else None
    r["CONFLICTING_MODIFIERS"] = len(signals) > 1
    wrong_type = sum(line.claim_type not in m["claim_types"] for m in th)
    r["MODIFIER_NOT_FOR_CLAIM_TYPE"] = wrong_type > 0
    gone = sum(not in_force(m, day) for m in th)
    r["MODIFIER_NOT_IN_EFFECT"] = gone > 0
    if pos_marks and pos is not None:
        r["POS_NOT_IN_EFFECT"] = not in_force(pos, day)
        kinds = {g["kind"] for g in pos.get("guidance", []) if in_force(g, day)}
        r["POS_NOT_ACCEPTED"] = "deny" in kinds
        r["POS_GUIDANCE"] = "warn" in kinds
    doc = code_doc(published, line.code)
    found = covering(doc, day)
    assert len(found) <= 1, "a loadable policy has at most one period on a date"
    period = found[0] if found else None
    to_confirm: list[str] = []
    whole = whole_table_on(published, day)
    if doc is None:
        r["NOT_ON_TELEHEALTH_TABLE" if whole else "CODE_NOT_IN_DATA"] = True
    elif period is None:
        periods = sorted(doc["periods"], key=lambda p: p["effective"])
        before = [p for p in periods if _day(p["effective"]) <= day]
        after = [p for p in periods if _day(p["effective"]) > day]
        prev, nxt = (before[-1] if before else None), (after[0] if after else None)
        known = (nxt is None or nxt.get("start_known", True)) and (whole or bool(prev and prev.get("removed")))
        r["OUTSIDE_EFFECTIVE_DATES" if known else "DATE_NOT_IN_DATA"] = True
    elif period["status"] == "not-permitted":
        r["NOT_PERMITTED_VIA_TELEHEALTH"] = True
    else:
        silent = period.get("undetermined_modalities", [])
        r["MODALITY_UNDETERMINED"] = modality is not None and modality in silent
        r["MODALITY_NOT_ALLOWED"] = modality is not None and modality not in silent and \
            modality not in period["modalities"]
        if not signals:
            covered = {m["id"] for m in prog["modalities"] if m["coverage"] != "not-covered"}
            every_way = covered <= set(period["modalities"])
            r["MODIFIER_EXPECTED"], r["MODALITY_NOT_INDICATED"] = every_way, not every_way
        rccs = period.get("revenue_center_codes", [])
        institutional = line.claim_type == "institutional" and bool(rccs)
        r["RCC_REQUIRED"] = institutional and line.rcc is None
        r["RCC_NOT_ALLOWED"] = institutional and line.rcc is not None and line.rcc not in rccs
        for lim in period.get("limits", []):
            if not lim.get("modalities") or modality in lim["modalities"]:
                _check_limit(lim, line, r, to_confirm)
    # the era rules, where no row decides the line: a deny rule denies; an undetermined one leaves the line
    # undetermined, unless one of its limits denies it
    decided_by_row = period is not None and (modality is None or modality not in period.get(
        "undetermined_modalities", []))
    for rule in prog.get("era_rules", []):
        if decided_by_row or not in_force(rule, day) or (modality or "unspecified") not in rule["modalities"]:
            continue
        r["NOT_PAID_IN_ERA"] |= rule["verdict"] == "deny"
        refused = [_check_limit(lim, line, r, to_confirm) for lim in rule.get("limits", [])]
        r["ERA_UNDETERMINED"] |= rule["verdict"] == "undetermined" and not any(refused)
    denied = any(r[c] for c in DENY)
    unknown = any(r[c] for c in SILENT)
    r["ON_TELEHEALTH_TABLE"] = not denied and not unknown
    outcome = Outcome.NOT_PAYABLE if denied else Outcome.UNDETERMINED if unknown else Outcome.PAYABLE
    attest = sorted(a["id"] for a in prog["attestations"]
                    if _day(a["effective"]) <= day and ("end" not in a or day <= _day(a["end"]))
                    and (not a.get("modalities") or modality in a["modalities"]))
    pid = f"{line.code}@{period['effective']}" if period is not None else None
    return Expected(outcome, r, pid, modality, sorted(to_confirm), attest, wrong_type, gone)


def _check_limit(lim: dict[str, Any], line: ClaimLine, r: dict[str, bool], to_confirm: list[str]) -> bool:
    """Mark the reason of a limit the line breaks (returning True), or the limit to confirm when it lacks the field."""
    kind = lim["kind"]
    value = {"age": line.member_age, "provider-type": line.provider_type,
             "established-patient": line.established_patient, "units-per-day": line.units}[kind]
    if value is None:
        to_confirm.append(kind)
        return False
    if kind == "age":
        refused = (("min_age" in lim and line.member_age < lim["min_age"])
                   or ("max_age" in lim and line.member_age > lim["max_age"]))
        r["AGE_OUTSIDE_LIMIT"] |= refused
    elif kind == "provider-type":
        refused = line.provider_type not in lim["provider_types"]
        r["PROVIDER_TYPE_NOT_ALLOWED"] |= refused
    elif kind == "established-patient":
        refused = line.established_patient is False
        r["ESTABLISHED_PATIENT_REQUIRED"] |= refused
    else:
        refused = line.units > lim["max_units"]
        r["UNITS_OVER_LIMIT"] |= refused
    return bool(refused)


LINE_LEVEL = {code for code, r in REASONS.items() if r.scope == "line"}


def _from_an_era_rule(reason: Reason) -> bool:
    """A reason an era rule gave: what a source says of every code on the date, not of this code's rows."""
    return reason.rule is not None and "/era_rules/" in reason.rule


# --- scenarios: a policy, a release and many claim lines ----------------------------------------------------------

def quick_records(tree: PolicyTree, rnd: random.Random, n: int) -> list[dict[str, Any]]:
    """Many more lines than Hypothesis can draw one by one, near the tree's period boundaries."""
    codes = [d["code"] for d in tree.codes.values()] + list(CODE_POOL)
    bounds = [DAY0]
    for doc in tree.codes.values():
        for p in doc["periods"]:
            for key in ("effective", "end"):
                if key in p:
                    bounds.extend(_day(p[key]) + dt.timedelta(days=k) for k in (-1, 0, 1))
    mods = [m["code"] for m in tree.program["modifiers"]] + list(OTHER_MODIFIERS)
    out = []
    for _ in range(n):
        day = rnd.choice(bounds) if rnd.random() < 0.6 else DAY0 + dt.timedelta(days=rnd.randint(0, SPAN_DAYS))
        rec: dict[str, Any] = {"code": rnd.choice(codes), "date": day.isoformat(),
                               "modifiers": rnd.sample(mods, rnd.choice((0, 1, 1, 1, 2, 2, 3))),
                               "claim_type": rnd.choice(("professional", "institutional"))}
        for name, choices in (("pos", ("02", "10", "11", "12")), ("rcc", (*RCCS, "0100")),
                              ("member_age", (0, 2, 3, 9, 17, 18, 30, 64, 100)),
                              ("provider_type", (*PROVIDER_TYPES, "dentist")), ("units", (0, 1, 4, 5, 8, 12)),
                              ("established_patient", (True, False))):
            if rnd.random() < 0.5:
                rec[name] = rnd.choice(choices)
        if rnd.random() < 0.15:
            rec["modality"] = rnd.choice(MODALITIES)
        out.append(rec)
    return out


@st.composite
def program_variants(draw: st.DrawFn, tree: PolicyTree) -> PolicyTree:
    """A generated tree whose program also restricts modifiers to a claim type (``policy_trees`` already varies
    the dates of modifiers and places of service and their guidance)."""
    for mod in tree.program["modifiers"]:
        if draw(st.integers(0, 5)) == 0:
            mod["claim_types"] = [draw(st.sampled_from(["institutional", "professional"]))]
    return tree


# A plain Random from one drawn seed: Hypothesis's own randoms() costs a full draw per call, and the bulk lines
# and shuffles make thousands of calls per example. The seed is part of the example, so a failure reproduces.
class _Seeded(random.Random):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed_value = seed

    def __repr__(self) -> str:  # a failing example shows the seed that rebuilds its lines
        return f"Random({self.seed_value})"


SEEDED = st.integers(0, 2**32 - 1).map(_Seeded)


def generated_trees() -> st.SearchStrategy[PolicyTree]:
    return policy_trees().flatmap(program_variants)


@dataclasses.dataclass
class Scenario:
    tree: PolicyTree
    policy: Policy
    release: str | None
    records: list[dict[str, Any]]

    def lines(self) -> list[ClaimLine]:
        return [parse_line(rec, self.policy.program) for rec in self.records]

    def published(self) -> PolicyTree:
        return as_of(self.tree, self.release)


@st.composite
def records_for(draw: st.DrawFn, tree: PolicyTree, bulk: int = 60) -> list[dict[str, Any]]:
    drawn = draw(st.lists(claim_records(tree), min_size=1, max_size=6))
    return drawn + quick_records(tree, draw(SEEDED), bulk)


@st.composite
def scenarios(draw: st.DrawFn, bulk: int = 60) -> Scenario:
    """The bundled policy, the DEMO policy or a generated one; one of its releases (or the latest); lines."""
    source = draw(st.sampled_from(["generated", "bundled", "demo"]))
    if source == "generated":
        tree = draw(generated_trees())
        policy = load_tree(tree)
    else:
        tree = BUNDLED_TREE if source == "bundled" else DEMO_TREE
        policy = fixed_policy(tree)
    release = draw(st.one_of(st.none(), st.sampled_from(release_ids(tree))))
    return Scenario(tree, policy, release, draw(records_for(tree, bulk)))


def decisions(s: Scenario) -> Iterator[tuple[ClaimLine, Decision]]:
    for line in s.lines():
        yield line, evaluate(s.policy, line, release=s.release)


def _show(line: ClaimLine, d: Decision) -> str:
    return f"{line} -> {d.outcome.value} {list(d.reason_codes)} period={d.period.id if d.period else None}"


# --- decisions ----------------------------------------------------------------------------------------------------

@PROPERTY
@given(scenarios())
def test_unlisted_code_is_never_payable_and_a_partial_release_never_denies_it_for_that(s: Scenario) -> None:
    # a release that holds the whole table denies a code it does not list; one that names only some rows can
    # say nothing of it (undetermined), though a line-level denial (two modalities, say) still denies the line
    published = s.published()
    for line, d in decisions(s):
        if code_doc(published, line.code) is not None or d.outcome is Outcome.NOT_TELEHEALTH:
            continue
        assert not d.payable, _show(line, d)
        if whole_table_on(published, line.date):
            assert d.outcome is Outcome.NOT_PAYABLE and "NOT_ON_TELEHEALTH_TABLE" in d.reason_codes, _show(line, d)
        else:
            assert "CODE_NOT_IN_DATA" in d.reason_codes and "NOT_ON_TELEHEALTH_TABLE" not in d.reason_codes
            table_denials = {r.code for r in d.reasons if r.kind == "deny" and not _from_an_era_rule(r)} - LINE_LEVEL
            assert not table_denials, _show(line, d)
            assert d.outcome is (Outcome.NOT_PAYABLE if d.reasons and any(r.kind == "deny" for r in d.reasons)
                                 else Outcome.UNDETERMINED), _show(line, d)


@PROPERTY
@given(scenarios())
def test_payable_is_never_given_where_the_data_is_silent(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        if not d.payable:
            continue
        doc = code_doc(published, line.code)
        (period,) = covering(doc, line.date)  # a row the data holds covers the date
        assert period["status"] == "permitted", _show(line, d)
        assert d.modality is None or d.modality in period["modalities"], _show(line, d)
        assert not any(r.kind == "undetermined" for r in d.reasons), _show(line, d)


@PROPERTY
@given(scenarios())
def test_listed_code_is_never_payable_outside_all_its_periods(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        doc = code_doc(published, line.code)
        if doc is not None and not covering(doc, line.date):
            assert not d.payable, _show(line, d)
            if not whole_table_on(published, line.date):
                # where the data holds only named rows, a date no row covers is undetermined unless a source
                # says the code left the table
                assert "OUTSIDE_EFFECTIVE_DATES" not in d.reason_codes or any(
                    p.get("removed") for p in doc["periods"]), _show(line, d)


@PROPERTY
@given(scenarios())
def test_audio_only_is_payable_only_where_the_period_allows_it(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        if d.payable and "audio-only" in signalled(published, line):
            (period,) = covering(code_doc(published, line.code), line.date)
            assert "audio-only" in period["modalities"], _show(line, d)


@PROPERTY
@given(scenarios())
def test_not_permitted_is_never_payable(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        if any(p["status"] == "not-permitted" for p in covering(code_doc(published, line.code), line.date)):
            assert not d.payable, _show(line, d)


@PROPERTY
@given(scenarios())
def test_payable_means_exactly_one_period_covers_the_date_and_is_cited(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        if not d.payable:
            continue
        found = covering(code_doc(published, line.code), line.date)
        assert len(found) == 1, _show(line, d)
        (raw,) = found
        pid = f"{line.code}@{raw['effective']}"
        assert d.period is not None and d.period.id == pid, _show(line, d)
        assert (d.period.end.isoformat() if d.period.end else None) == raw.get("end"), _show(line, d)
        (reason,) = [r for r in d.reasons if r.kind != "warn"]
        assert reason.code == "ON_TELEHEALTH_TABLE"
        assert reason.rule is not None and reason.rule.endswith(f"#{pid}"), reason.rule
        assert reason.citation is not None and reason.citation.source.id == raw["citation"]["source"]


@PROPERTY
@given(scenarios())
def test_every_reason_given_is_true_and_none_that_applies_is_missing(s: Scenario) -> None:
    published = s.published()
    for line, d in decisions(s):
        want = oracle(published, line)
        given_codes = set(d.reason_codes)
        false = [c for c in given_codes if not want.reasons[c]]
        missing = [c for c in want.codes if c not in given_codes]
        assert not false and not missing, f"{_show(line, d)}: not true of the line {false}; missing {missing}"
        # one MODIFIER_NOT_FOR_CLAIM_TYPE per offending modifier (each names its modifier); others at most once
        assert d.reason_codes.count("MODIFIER_NOT_FOR_CLAIM_TYPE") == want.wrong_claim_type_modifiers, _show(line, d)
        assert d.reason_codes.count("MODIFIER_NOT_IN_EFFECT") == want.out_of_effect_modifiers, _show(line, d)
        once = given_codes - {"MODIFIER_NOT_FOR_CLAIM_TYPE", "MODIFIER_NOT_IN_EFFECT", "POS_GUIDANCE",
                              "POS_NOT_ACCEPTED"}
        assert all(d.reason_codes.count(c) == 1 for c in once), _show(line, d)
        assert d.outcome is want.outcome, _show(line, d)
        assert (d.period.id if d.period else None) == want.period, _show(line, d)
        assert d.modality == want.modality, _show(line, d)
        assert sorted(lim.kind for lim in d.to_confirm) == want.to_confirm, _show(line, d)
        assert [a.id for a in d.attestations] == want.attestations, _show(line, d)


@PROPERTY
@given(scenarios(bulk=30))
def test_the_same_line_gets_the_same_decision(s: Scenario) -> None:
    # a replica of the policy has a cache of its own, and decide() uses none: all must agree
    replica = dataclasses.replace(s.policy)
    for line, d in decisions(s):
        copy_ = dataclasses.replace(line)
        for again in (evaluate(s.policy, copy_, release=s.release), evaluate(replica, copy_, release=s.release),
                      decide(s.policy, copy_, release=s.release), decide(s.policy, copy_, release=s.release)):
            assert _without_hash(again) == _without_hash(d) and again.policy_hash == d.policy_hash, _show(line, d)


@PROPERTY
@given(scenarios(bulk=40), SEEDED, st.lists(hostile_jsonl(), max_size=3))
def test_the_order_of_lines_in_a_file_does_not_matter(s: Scenario, rnd: random.Random, hostile: list[bytes]) -> None:
    # hostile lines among the good ones: each gives its own error wherever it stands, and nothing else changes
    records = [(json.dumps({**rec, "line_id": f"L{i}"}) + "\n").encode() for i, rec in enumerate(s.records)]
    records += [line + b"\n" for text in hostile for line in text.removeprefix(b"\xef\xbb\xbf").split(b"\n")]
    shuffled = records[:]
    rnd.shuffle(shuffled)

    def results(lines: list[bytes], policy: Policy) -> list[str]:
        data = b"".join(lines)
        got = list(api.eval_lines(io.BytesIO(data), policy=policy, release=s.release, input_format="jsonl"))
        assert_all_lines_accounted([r.number for r in got], data, header=False)  # lines in = decisions + errors
        rows = []
        for res in got:
            row = res.as_dict()
            del row["line"]  # the physical line number moves with the shuffle; nothing else may
            rows.append(json.dumps(row, sort_keys=True))
        return sorted(rows)

    # each order on its own replica of the policy, so that neither run sees the other's cached decisions
    assert results(shuffled, dataclasses.replace(s.policy)) == results(records, dataclasses.replace(s.policy))


# --- policy trees -------------------------------------------------------------------------------------------------

def reorder(value: Any, rnd: random.Random, key: str = "") -> Any:
    """The same policy with every object's keys and every set-like list in a random order (releases keep theirs)."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd, k) for k, v in items}
    if isinstance(value, list):
        items = [reorder(v, rnd) for v in value]
        if key != "releases":
            rnd.shuffle(items)
        return items
    return value


@st.composite
def trees_with_lines(draw: st.DrawFn, bulk: int = 40) -> tuple[PolicyTree, list[dict[str, Any]]]:
    tree = draw(st.one_of(generated_trees(), st.just(BUNDLED_TREE), st.just(DEMO_TREE)))
    return tree, draw(records_for(tree, bulk))


@PROPERTY
@given(trees_with_lines(), SEEDED)
def test_the_order_of_files_and_keys_in_the_policy_does_not_matter(
        case: tuple[PolicyTree, list[dict[str, Any]]], rnd: random.Random) -> None:
    tree, records = case
    shuffled = PolicyTree(reorder(tree.program, rnd), reorder(tree.releases, rnd),
                          reorder(tree.codes, rnd))  # the codes' order is the order the files are written in
    a, b = load_tree(tree), load_tree(shuffled)
    assert b.hash == a.hash
    release = rnd.choice([None, *release_ids(tree)])
    for rec in records:
        line = parse_line(rec, a.program)
        da, db = evaluate(a, line, release=release), evaluate(b, line, release=release)
        assert db.as_dict() == da.as_dict(), _show(line, da)


def _without_hash(d: Decision) -> dict[str, Any]:
    out = d.as_dict()
    del out["policy_hash"]
    return out


@PROPERTY
@given(trees_with_lines(), st.data())
def test_deciding_as_of_a_release_equals_deciding_on_the_tree_as_it_stood_then(
        case: tuple[PolicyTree, list[dict[str, Any]]], data: st.DataObject) -> None:
    tree, records = case
    release = data.draw(st.sampled_from(release_ids(tree)))
    fixed = tree is BUNDLED_TREE or tree is DEMO_TREE
    whole = fixed_policy(tree) if fixed else load_tree(tree)
    key = (id(tree), release)
    if not fixed or key not in _AS_OF:
        _AS_OF[key] = load_tree(as_of(tree, release))
    then = _AS_OF.pop(key) if not fixed else _AS_OF[key]
    assert then.latest.id == release
    for rec in records:
        line = parse_line(rec, whole.program)
        past = evaluate(whole, line, release=release)
        assert _without_hash(past) == _without_hash(evaluate(then, line)), _show(line, past)


# --- monotonicity -------------------------------------------------------------------------------------------------

def _iso(day: dt.date) -> str:
    return day.isoformat()


def _new_release(tree: PolicyTree, rid: str, after_days: int) -> None:
    last = _day(tree.releases["releases"][-1]["published"])
    day = _iso(last + dt.timedelta(days=after_days))
    tree.releases["releases"].append({"id": rid, "published": day, "effective": day, "implements": ["GENERATED"],
                                      "summary": f"Generated release {rid}", "coverage": "partial"})


@st.composite
def new_period(draw: st.DrawFn, start: dt.date, end: dt.date | None, release: str) -> dict[str, Any]:
    status = draw(st.sampled_from(["permitted", "permitted", "not-permitted"]))
    p: dict[str, Any] = {"effective": _iso(start), "status": status,
                         "modalities": [] if status == "not-permitted" else draw(
                             st.lists(st.sampled_from(MODALITIES), min_size=1, unique=True)),
                         "guideline": "Generated row.", "citation": {"source": "GENERATED"}, "introduced_in": release}
    if end is not None:
        p.update({"end": _iso(end), "ended_in": release})
    return p


def _spans(doc: dict[str, Any]) -> list[tuple[dt.date, dt.date]]:
    return [(_day(p["effective"]), _day(p["end"]) if "end" in p else dt.date.max) for p in doc["periods"]]


@st.composite
def with_additions(draw: st.DrawFn) -> tuple[PolicyTree, PolicyTree, str, str]:
    """(tree, the tree plus a release that only adds codes and periods, the old latest id, the new id)."""
    tree = draw(generated_trees())
    grown = tree.copy()
    old = release_ids(tree)[-1]
    _new_release(grown, "GEN-ADD", draw(st.integers(0, 60)))
    for code in draw(st.lists(st.sampled_from([c for c in CODE_POOL if c not in tree.codes]), unique=True,
                              max_size=3)):
        start = DAY0 + dt.timedelta(days=draw(st.integers(0, SPAN_DAYS)))
        end = draw(st.one_of(st.none(), st.integers(0, 900).map(
            cast(Callable[[int], dt.date], lambda n, s=start: s + dt.timedelta(days=n)))))
        grown.codes[code] = {"$schema": "../../schema/code.schema.json", "code": code,
                             "system": "CPT" if code[0].isdigit() else "HCPCS", "description": f"Generated {code}",
                             "category": "behavioral-health", "periods": [draw(new_period(start, end, "GEN-ADD"))]}
    for code in draw(st.lists(st.sampled_from(sorted(tree.codes)), unique=True, max_size=3)):
        doc = grown.codes[code]
        ends = [b for _, b in _spans(doc)]
        if dt.date.max not in ends and draw(st.booleans()):  # the next row after the code's last, ended one
            start = max(ends) + dt.timedelta(days=draw(st.integers(1, 30)))
        else:
            start = DAY0 + dt.timedelta(days=draw(st.integers(-400, SPAN_DAYS + 400)))
        end = start + dt.timedelta(days=draw(st.integers(0, 400)))
        if all(end < a or start > b for a, b in _spans(doc)):  # only into a gap: periods never overlap
            doc["periods"].append(draw(new_period(start, end, "GEN-ADD")))
    return tree, grown, old, "GEN-ADD"


def boundary_records(tree: PolicyTree) -> list[dict[str, Any]]:
    """A line on each first and last day of every period, once per modality: where a change of table shows."""
    out: list[dict[str, Any]] = []
    for doc in tree.codes.values():
        for p in doc["periods"]:
            for day in (p["effective"], p.get("end", p["effective"])):
                out.extend({"code": doc["code"], "date": day, "modifiers": [m]} for m in ("95", "93", "GQ"))
    return out


@PROPERTY
@given(with_additions(), SEEDED)
def test_a_release_that_only_adds_never_takes_payment_away(case: tuple[PolicyTree, PolicyTree, str, str],
                                                          rnd: random.Random) -> None:
    _, grown, old, new = case
    policy = load_tree(grown)
    for rec in boundary_records(grown) + quick_records(grown, rnd, 40):
        line = parse_line(rec, policy.program)
        before = evaluate(policy, line, release=old)
        if before.payable:
            assert evaluate(policy, line, release=new).payable, _show(line, before)


@st.composite
def with_ends(draw: st.DrawFn) -> tuple[PolicyTree, str, str]:
    """(a tree with a last release that only ends open periods, the release before it, that release)."""
    tree = draw(generated_trees())
    old = release_ids(tree)[-1]
    _new_release(tree, "GEN-END", draw(st.integers(0, 60)))
    open_periods = [p for doc in tree.codes.values() for p in doc["periods"] if "end" not in p]
    assume(open_periods)
    chosen = draw(st.lists(st.sampled_from(range(len(open_periods))), min_size=1, unique=True))
    for i in chosen:
        p = open_periods[i]
        p["end"] = _iso(_day(p["effective"]) + dt.timedelta(days=draw(st.integers(0, SPAN_DAYS))))
        p["ended_in"] = "GEN-END"
    return tree, old, "GEN-END"


@PROPERTY
@given(with_ends(), SEEDED)
def test_ending_a_period_never_makes_a_line_payable(case: tuple[PolicyTree, str, str], rnd: random.Random) -> None:
    tree, old, new = case
    policy = load_tree(tree)
    for rec in boundary_records(tree) + quick_records(tree, rnd, 40):
        line = parse_line(rec, policy.program)
        before = evaluate(policy, line, release=old)
        if not before.payable:
            assert not evaluate(policy, line, release=new).payable, _show(line, before)


# --- schema and loader agree --------------------------------------------------------------------------------------

@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Turn a hang into a failure instead of a stuck run."""
    def stop(signum: int, frame: Any) -> None:
        raise AssertionError(f"loading did not finish in {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _resolves(data: Any, pointer: str) -> bool:
    node = data
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def loads_or_fails_located(files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) as a policy folder; it loads, or every problem is located."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "policy"
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
        try:
            with time_limit(60):
                load_policy(root)
        except PolicyError as err:
            assert err.problems, "a PolicyError lists at least one problem"
            for problem in err.problems:
                rel = problem.file.removeprefix("policy/")
                assert rel in files or rel == "codes", str(problem)
                assert problem.pointer == "" or problem.pointer.startswith("/"), str(problem)
                assert problem.message, str(problem)
                if rel in files:  # every problem of a file that is there names a line of it
                    assert problem.line is not None, str(problem)
                try:
                    data = json.loads(files[rel])
                except (KeyError, ValueError, RecursionError):
                    continue
                assert _resolves(data, problem.pointer), str(problem)


def _dump(doc: Any) -> bytes:
    # ensure_ascii: generated strings may hold lone surrogates, which UTF-8 cannot encode
    return (json.dumps(doc, indent=2, ensure_ascii=True) + "\n").encode("utf-8")


def _base_files(codes: tuple[str, ...] = ("90791", "97153", "T1016")) -> dict[str, bytes]:
    out = {"program.json": _dump(BUNDLED_TREE.program), "releases.json": _dump(BUNDLED_TREE.releases)}
    out.update({f"codes/{c}.json": _dump(BUNDLED_TREE.codes[c]) for c in codes})
    return out


def _schema_strategy(kind: str) -> st.SearchStrategy[Any]:
    from tests.jsonschema_compat import from_bundled_schema

    return from_bundled_schema(schema_dir(), kind)


@st.composite
def schema_documents(draw: st.DrawFn) -> dict[str, bytes]:
    """A policy folder in which one document is generated from its JSON Schema."""
    kind = draw(st.sampled_from(["code", "code", "program", "releases"]))
    files = _base_files(("T1016",))
    doc = draw(_schema_strategy(kind))
    if kind == "code":
        # mostly named as its code (so the meaning checks run), sometimes not
        name = doc["code"] if draw(st.integers(0, 3)) else "90791"
        files[f"codes/{name}.json"] = _dump(doc)
    else:
        files[f"{kind}.json"] = _dump(doc)
    return files


@PROPERTY
@given(schema_documents())
def test_documents_generated_from_the_schemas_load_or_fail_with_located_problems(files: dict[str, bytes]) -> None:
    loads_or_fails_located(files)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*here, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*here, i)))
    return out


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 3000) | st.text(max_size=12) |
                     st.sampled_from(["2020-03-18", "2023-02-30", "audio-only", "permitted", "not-permitted",
                                      "PB-2020-14", "GENERATED", "95", "02", "T1016", "90791"]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=6)


_REFERENCES = frozenset({"introduced_in", "ended_in", "source", "category", "modality", "modalities", "implements",
                         "claim_types"})


@st.composite
def mutated_files(draw: st.DrawFn) -> dict[str, bytes]:
    """The bundled files with a few random edits: values replaced, keys dropped or added, items repeated or
    dropped, dates moved, or the bytes themselves damaged."""
    files = _base_files(("90791", "97153", "97156", "H2014", "T1016"))
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(sorted(files)))
        if draw(st.integers(0, 7)) == 0:
            files[name] = draw(hostile_file(files[name]))
            continue
        if draw(st.integers(0, 9)) == 0:
            raw = bytearray(files[name])
            if not raw:  # already cut to nothing by an earlier edit
                continue
            at = draw(st.integers(0, len(raw) - 1))
            how = draw(st.sampled_from(["cut", "byte", "drop"]))
            if how == "cut":
                raw = raw[:at]
            elif how == "byte":
                raw[at] = draw(st.integers(0, 255))
            else:
                del raw[at]
            files[name] = bytes(raw)
            continue
        try:
            doc = json.loads(files[name])
        except ValueError:
            continue
        paths = _paths(doc)
        refs = [p for p in paths if (p and p[-1] in _REFERENCES) or (len(p) > 1 and p[-2] in _REFERENCES)]
        if cast(object, refs) and draw(st.booleans()):
            # a well-formed id that names nothing (or the wrong kind of thing): only the meaning checks catch it
            kinds = sorted({p[-1] if p[-1] in _REFERENCES else p[-2] for p in refs})
            kind = draw(st.sampled_from(kinds))  # each kind of reference equally, however many of each
            path = draw(st.sampled_from([p for p in refs if kind in (p[-1], p[-2] if len(p) > 1 else None)]))
            target: Any = doc
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = draw(st.sampled_from(["PB-1999-01", "NOPE", "GENERATED", "audio-only", "crisis",
                                                     "TABLE-2025-12-26", "behavioral-health", "EO-7F-7G"]))
            files[name] = _dump(doc)
            continue
        spans = [p for p in paths if p and p[-1] == "end"]
        if spans and draw(st.integers(0, 3)) == 0:
            # an end before its period's effective date
            path = draw(st.sampled_from(spans))
            period: Any = doc
            for part in path[:-1]:
                period = period[part]
            start = _day(period["effective"]) if isinstance(period.get("effective"), str) else DAY0
            period["end"] = (start - dt.timedelta(days=draw(st.integers(1, 400)))).isoformat()
            files[name] = _dump(doc)
            continue
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1] if path else None
        how = draw(st.sampled_from(["replace", "delete", "add-key", "repeat", "date", "rename"]))
        if not path:
            doc = draw(_JSON)
        elif how == "replace":
            parent[last] = draw(_JSON)
        elif how == "delete":
            del parent[last]
        elif how == "add-key" and isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(["end", "ended_in", "note", "limits", "extra", "modality"]))] = \
                draw(_JSON)
        elif how == "repeat" and isinstance(parent[last], list) and parent[last]:
            parent[last].append(copy.deepcopy(draw(st.sampled_from(parent[last]))))
        elif how == "date" and isinstance(parent[last], str) and len(parent[last]) == 10:
            try:
                moved = _day(parent[last]) + dt.timedelta(days=draw(st.integers(-2000, 2000)))
                parent[last] = moved.isoformat()
            except ValueError:
                pass
        elif how == "rename" and name.startswith("codes/"):
            files.pop(name)
            name = f"codes/{draw(st.sampled_from(['H2014', '90846', 'T1016', '9079X']))}.json"
        files[name] = _dump(doc)
    return files


HOSTILE_MARK = "@@HOSTILE@@"


def _deepest(content: bytes) -> int:
    """How deep brackets nest in ``content`` (brackets inside strings count too: an upper bound)."""
    depth = deepest = 0
    for byte in content:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


@st.composite
def hostile_file(draw: st.DrawFn, content: bytes) -> bytes:
    """A policy file made hostile: one value's JSON text replaced by a hostile fragment (deep, a huge number, a lone
    surrogate, controls), or its bytes given a byte-order mark, CRLF endings, a NUL or bytes that are not UTF-8."""
    how = draw(st.sampled_from(["value", "value", "bom", "crlf", "nul", "bytes"]))
    if how == "value":
        if _deepest(content) > 200:  # made hostile before (deep nesting): whether json.loads recurses too deep
            return content           # depends on the stack it is called from, and generation must not
        try:
            doc = json.loads(content)
        except ValueError:
            return content
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return content
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = HOSTILE_MARK
        return _dump(doc).replace(json.dumps(HOSTILE_MARK).encode(),
                                  draw(hostile_json_fragment()).encode("utf-8", "surrogatepass"))
    if how == "bom":
        return b"\xef\xbb\xbf" + content
    if how == "crlf":
        return content.replace(b"\n", b"\r\n")
    at = draw(st.integers(0, len(content)))
    return content[:at] + (b"\x00" if how == "nul" else draw(st.binary(min_size=1, max_size=4))) + content[at:]


@PROPERTY
@given(mutated_files())
def test_mutated_policy_files_load_or_fail_with_located_problems(files: dict[str, bytes]) -> None:
    loads_or_fails_located(files)


# --- the formatter ------------------------------------------------------------------------------------------------

@PROPERTY
@given(trees_with_lines(bulk=30), SEEDED)
def test_formatting_is_idempotent_and_never_changes_a_decision(case: tuple[PolicyTree, list[dict[str, Any]]],
                                                               rnd: random.Random) -> None:
    fmt = pytest.importorskip("cmap_policy.authoring.fmt")
    tree, records = case
    messy = PolicyTree(reorder(tree.program, rnd), reorder(tree.releases, rnd), reorder(tree.codes, rnd))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(messy, Path(tmp) / "policy")
        before = load_policy(root)
        for path in sorted(root.rglob("*.json")):
            once = fmt.format_text(path.read_text(encoding="utf-8"), path)
            assert fmt.format_text(once, path) == once, path.name
            path.write_text(once, encoding="utf-8")
        after = load_policy(root)
    assert after.hash == before.hash
    release = rnd.choice([None, *release_ids(tree)])
    for rec in records:
        line = parse_line(rec, before.program)
        d = evaluate(before, line, release=release)
        assert evaluate(after, line, release=release).as_dict() == d.as_dict(), _show(line, d)


# --- hostile claim lines ------------------------------------------------------------------------------------------

@PROPERTY
@given(st.one_of(hostile_jsonl().map(lambda d: ("jsonl", d)), hostile_csv().map(lambda d: ("csv", d))))
def test_hostile_files_lose_no_line_and_both_engines_read_them_alike(case: tuple[str, bytes]) -> None:
    fmt, data = case
    program = fixed_policy(BUNDLED_TREE).program
    mine = interpreter_reads(data, program, fmt)  # nothing escapes but LineError: an exception fails the test
    assert_all_lines_accounted(mine, data, header=fmt == "csv")
    assert batch_reads(data, program, fmt) == mine
    assert batch_reads(data, program, fmt, block_bytes=64) == mine


@PROPERTY
@given(hostile_jsonl())
def test_guessing_the_format_of_hostile_json_lines_loses_no_line(data: bytes) -> None:
    program = fixed_policy(BUNDLED_TREE).program
    guessed = interpreter_reads(data, program, None)
    lines = [x.decode("utf-8", "replace").strip() for x in data.removeprefix(b"\xef\xbb\xbf").split(b"\n")]
    first = next((x for x in lines if x), "")
    if first.startswith("["):
        assert guessed == interpreter_reads(data, program, "json")
    elif first.startswith("{"):  # JSON Lines, or one JSON document spread over lines
        assert guessed in (interpreter_reads(data, program, "jsonl"), interpreter_reads(data, program, "json"))
    else:
        assert guessed == interpreter_reads(data, program, "csv")


@PROPERTY
@given(st.lists(hostile_records(), min_size=1, max_size=8))
def test_hostile_records_from_the_api_are_each_a_decision_or_a_line_error(records: list[dict[Any, Any]]) -> None:
    policy = fixed_policy(BUNDLED_TREE)
    got = list(api.eval_lines(records, policy=policy))  # nothing escapes but LineError
    assert [r.number for r in got] == list(range(1, len(records) + 1))
    for res in got:
        assert (res.decision is None) == (res.error is not None)
        json.dumps(res.as_dict(), ensure_ascii=False).encode("utf-8")  # every result can be written out
