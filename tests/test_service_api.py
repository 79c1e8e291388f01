"""The JSON API of `cmap-policy serve` on a real uvicorn: the same decisions as `eval`, in order, with problems."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from cmap_policy.cli import main
from cmap_policy.lines import FIELDS
from cmap_policy.load import load_policy
from cmap_policy.model import Outcome
from cmap_policy.reasons import KINDS
from cmap_policy.service import ServiceConfig
from cmap_policy.service.openapi import document

from .service_support import Running, serve, wait_until

ROOT = Path(__file__).resolve().parent.parent
LINES: list[dict[str, Any]] = [
    {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"], "pos": "11"},
    {"code": "97153", "date": "2026-01-05", "modifiers": ["93"], "claim_id": "C1", "line_id": "L1"},
    {"code": "97153", "date": "2021-06-01", "modifiers": ["95"]},
    {"code": "99999", "date": "2026-01-05", "modifiers": ["95"]},
    {"code": "90791", "date": "2026-01-05"},
    {"procedure_code": "90834", "dos": "2026-01-05", "modifier": "95 GT"},
]
ACCESS = io.BytesIO()


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with serve(ServiceConfig(access_stream=ACCESS)) as running:
        yield running


def _eval(args: list[str], stdin: str | None = None) -> list[dict[str, Any]]:
    out = CliRunner().invoke(main, ["eval", *args], input=stdin)
    return [json.loads(x) for x in out.stdout.splitlines() if x.strip()]


def _without_id(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "decision_id"}


@pytest.mark.parametrize("line", LINES)
def test_a_decision_is_what_eval_prints_for_the_same_line_plus_its_id(server: Running, line: dict[str, Any]) -> None:
    with server.client() as c:
        got = c.post("/v1/decide", json=line)
    assert got.status_code == 200, got.text
    body = got.json()
    assert isinstance(body["decision_id"], str) and body["decision_id"]
    assert _without_id(body) == _eval(["-"], stdin=json.dumps(line))[0]
    assert got.headers["x-policy-release"] == body["release"]
    assert got.headers["x-policy-hash"] == body["policy_hash"]


def test_release_decides_as_an_earlier_table_did_everywhere(server: Running) -> None:
    line = {"code": "97153", "date": "2021-06-01", "modifiers": ["93"]}
    with server.client() as c:
        latest = c.post("/v1/decide", json=line).json()
        then = c.post("/v1/decide", params={"release": "PB-2020-14"}, json=line).json()
        batch = [json.loads(x) for x in c.post("/v1/decide/batch", params={"release": "PB-2020-14"},
                                                 content=json.dumps(line)).text.splitlines()]
        code = c.get("/v1/codes/97153", params={"release": "PB-2020-14", "date": "2021-06-01"}).json()
        releases = c.get("/v1/releases", params={"release": "PB-2020-14"}).json()
    expected = _eval(["-", "--release", "PB-2020-14"], stdin=json.dumps(line))[0]
    assert _without_id(then) == expected and _without_id(batch[0]) == expected
    assert then["release"] == "PB-2020-14" != latest["release"]
    assert code["release"] == "PB-2020-14"
    assert [r["id"] for r in releases["releases"]][-1] == "PB-2020-14"


def test_batch_answers_every_line_in_order_with_errors_in_place(server: Running) -> None:
    text = "\n".join([json.dumps(LINES[0]), "{not json", "", json.dumps({"code": "T1016"}),
                      json.dumps({**LINES[1], "colour": "red"}), *map(json.dumps, LINES[1:])]) + "\n"
    with server.client() as c:
        got = c.post("/v1/decide/batch", content=text, headers={"content-type": "application/x-ndjson"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/x-ndjson")
    results = [json.loads(x) for x in got.text.splitlines()]
    sent = [x for x in text.splitlines() if x.strip()]
    assert len(results) == len(sent)  # lines in = results out
    expected = _eval(["-", "--input-format", "jsonl"], stdin=text)
    assert [_without_id(r) for r in results] == expected
    errors = [r for r in results if "error" in r]
    assert [(e["line"], e["field"]) for e in errors] == [(2, None), (4, "date"), (5, "colour")]
    assert all("decision_id" in r for r in results if "error" not in r)
    assert len({r["decision_id"] for r in results if "error" not in r}) == len(results) - 3


def test_batch_takes_a_json_array_too(server: Running) -> None:
    items: list[Any] = [*LINES, 42, {"code": "T1016", "date": "2026-02-30"}]
    with server.client() as c:
        results = c.post("/v1/decide/batch", json=items).json()
    assert [r["line"] for r in results] == list(range(1, len(items) + 1))
    assert [_without_id(r) for r in results] == _eval(["-", "--input-format", "json"], stdin=json.dumps(items))
    assert results[-1]["field"] == "date" and "error" in results[-2]


def test_codes_and_releases_say_what_show_and_the_policy_say(server: Running) -> None:
    with server.client() as c:
        code = c.get("/v1/codes/t1016", params={"date": "2026-01-05"})
        releases = c.get("/v1/releases").json()
    shown = CliRunner().invoke(main, ["show", "T1016", "--date", "2026-01-05", "--format", "json"])
    assert code.json() == json.loads(shown.stdout)
    policy = load_policy()
    assert [r["id"] for r in releases["releases"]] == [r.id for r in policy.releases]
    assert releases["latest"] == policy.latest.id and releases["policy_hash"] == policy.hash


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("post", "/v1/decide", {"code": "T1016", "date": "2026-13-01"}, 422, "date"),
    ("post", "/v1/decide", {"code": "T1016"}, 422, "date"),
    ("post", "/v1/decide", {"code": "T1016", "date": "2026-01-05", "units": "many"}, 422, "units"),
    ("post", "/v1/decide", {"code": "T1016", "date": "2026-01-05", "colour": 1}, 422, "colour"),
    ("post", "/v1/decide?release=PB-1999", {"code": "T1016", "date": "2026-01-05"}, 400, "release"),
    ("get", "/v1/codes/T1016?date=yesterday", None, 400, "date"),
    ("get", "/v1/releases?release=nope", None, 400, "release"),
    ("post", "/v1/decide/batch?release=nope", {"code": "T1016"}, 400, "release"),
])
def test_errors_are_problem_details_naming_the_field(server: Running, method: str, path: str, body: Any,
                                                     status: int, field: str) -> None:
    with server.client() as c:
        got = c.request(method.upper(), path, json=body)
    assert got.status_code == status
    assert got.headers["content-type"] == "application/problem+json"
    problem = got.json()
    assert problem["status"] == status and problem["field"] == field
    assert problem["type"].startswith("urn:cmap-policy:problem:") and problem["title"] and problem["detail"]
    assert problem["errors"][0]["field"] == field
    assert "Traceback" not in got.text


@pytest.mark.parametrize(("method", "path", "content", "status"), [
    ("POST", "/v1/decide", b"{not json", 400),
    ("POST", "/v1/decide", b"[1, 2]", 422),
    ("POST", "/v1/decide/batch", b"[{\"code\": ", 400),
    ("GET", "/v1/nothing", None, 404),
    ("GET", "/v1/decide", None, 405),
])
def test_other_errors_are_problem_details_too(server: Running, method: str, path: str, content: bytes | None,
                                              status: int) -> None:
    with server.client() as c:
        got = c.request(method, path, content=content)
    assert got.status_code == status
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["status"] == status


def test_health_metrics_and_the_access_log(server: Running) -> None:
    with server.client() as c:
        health = c.get("/health").json()
        before = c.get("/metrics").text
        c.post("/v1/decide", json={"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]})
        c.post("/v1/decide", json={"code": "99999", "date": "2026-01-05", "modifiers": ["95"]})
        after = c.get("/metrics").text
    policy = load_policy()
    assert health["status"] == "ok" and health["policy_hash"] == policy.hash and health["release"] == policy.latest.id

    def value(text: str, series: str) -> float:
        return next(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(series + " "))

    for outcome, reason in (("payable", "ON_TELEHEALTH_TABLE"), ("undetermined", "CODE_NOT_IN_DATA")):
        series = f'cmap_policy_decision_reasons_total{{outcome="{outcome}",reason="{reason}"}}'
        assert value(after, series) - (value(before, series) if series in before else 0) == 1
    for outcome in Outcome:  # every outcome of the model is a label from the start, a fourth one too
        assert f'cmap_policy_decisions_total{{outcome="{outcome.value}"}}' in before
    assert f'cmap_policy_policy_info{{policy_hash="{policy.hash}",release="{policy.latest.id}"' in after
    assert "cmap_policy_decision_seconds_bucket" in after and "cmap_policy_reload_failures_total" in after
    records = wait_until(lambda: [json.loads(x) for x in ACCESS.getvalue().splitlines()
                                  if b'"/v1/decide"' in x], what="access log records")
    assert {"time", "method", "path", "status", "duration_ms", "bytes", "client", "route"} <= set(records[-1])
    assert records[-1]["method"] == "POST" and records[-1]["status"] == 200


def test_the_openapi_document_is_served_and_kept_in_the_docs(server: Running) -> None:
    with server.client() as c:
        served = c.get("/openapi.json").json()
    assert served == document()
    kept = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert kept == served, "run: python -m cmap_policy.service.openapi > docs/openapi.json"
    assert set(served["components"]["schemas"]["ClaimLine"]["properties"]) == set(FIELDS)


def _authors_cases() -> dict[str | None, list[dict[str, Any]]]:
    """The policy authors' test lines (``policy/tests``), by release: they reach every reason of the policy."""
    by_release: dict[str | None, list[dict[str, Any]]] = {}
    for path in sorted((ROOT / "policy" / "tests").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            by_release.setdefault(case.get("release"), []).append(case["line"])
    return by_release


def test_real_answers_of_every_outcome_and_reason_kind_fit_the_served_schemas(server: Running) -> None:
    with server.client() as c:
        components = c.get("/openapi.json").json()["components"]
        answers: list[Any] = []
        for release, lines in _authors_cases().items():
            params = {"release": release} if release else {}
            answers.extend(c.post("/v1/decide", params=params, json=line).json() for line in lines)
            body = "\n".join(json.dumps(line) for line in [*lines, {"code": "T1016"}])
            answers.extend(json.loads(x) for x in c.post("/v1/decide/batch", params=params, content=body,
                                                         headers={"content-type": "application/x-ndjson"}).text.split(
                "\n") if x)
            answers.extend(c.post("/v1/decide/batch", params=params, json=lines).json())

    def validator(name: str) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})

    decided, line_error = validator("Decided"), validator("LineError")
    for answer in answers:
        (line_error if "error" in answer else decided).validate(answer)
    assert {a["outcome"] for a in answers if "outcome" in a} == {o.value for o in Outcome}
    assert {r["kind"] for a in answers for r in a.get("reasons", [])} == set(KINDS)
    assert any("error" in a for a in answers)
    broken = {**answers[0], "outcome": "maybe"}
    assert not decided.is_valid(broken)  # the schema does check the outcome


def test_a_client_cannot_make_new_metric_series_with_field_names(server: Running) -> None:
    with server.client() as c:
        for i in range(5):
            c.post("/v1/decide", json={"code": "T1016", "date": "2026-01-05", f"made_up_{i}": 1})
        metrics = c.get("/metrics").text
    assert "made_up_" not in metrics
    assert 'cmap_policy_line_errors_total{field="unknown"}' in metrics
