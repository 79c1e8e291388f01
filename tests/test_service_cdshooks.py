"""CDS Hooks 2.0: discovery, appointment-book and order-sign, cards and Da Vinci CRD coverage information.

The requests follow the shape of the examples of the CDS Hooks specification and of the Da Vinci CRD guide
(a hook, a hookInstance, the hook's context with a Bundle of draft resources, a prefetch with the patient's
Coverage), with CMAP codes and dates.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmap_policy.model import Outcome
from cmap_policy.service import ServiceConfig
from cmap_policy.service import cdshooks as ch

from .service_support import Running, serve

LOG: list[Path] = []
COVERAGE = {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [{
    "fullUrl": "http://ehr.example/fhir/Coverage/husky-1",
    "resource": {"resourceType": "Coverage", "id": "husky-1", "status": "active",
                 "beneficiary": {"reference": "Patient/p1"},
                 "payor": [{"display": "Connecticut Medicaid (HUSKY Health)"}]}}]}
VIRTUAL = {"url": ch.VIRTUAL_SERVICE, "extension": [
    {"url": "channelType", "valueCoding": {"system": "http://hl7.org/fhir/virtual-service-type", "code": "zoom"}},
    {"url": "addressUrl", "valueUrl": "https://video.example/room/42"}]}


def _mode(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ch.PARTICIPATION_MODE, "code": code}]}


def appointment(code: str, start: str, *, system: str = ch.CPT, extension: list[Any] | None = None,
                appointment_type: dict[str, Any] | None = None, rid: str = "a1") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Appointment", "id": rid, "status": "proposed",
        "serviceType": [{"coding": [{"system": system, "code": code}]}],
        "start": start, "end": start.replace("T09", "T10"),
        "participant": [{"actor": {"reference": "Patient/p1"}, "required": "required", "status": "accepted"},
                        {"actor": {"reference": "Practitioner/dr1"}, "required": "required", "status": "accepted"}]}
    if extension is not None:
        res["extension"] = extension
    if appointment_type is not None:
        res["appointmentType"] = appointment_type
    return res


def service_request(code: str, system: str, when: str | None, *, category: list[Any] | None = None,
                    rid: str = "sr1") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "ServiceRequest", "id": rid, "status": "draft",
                           "intent": "original-order", "code": {"coding": [{"system": system, "code": code}]},
                           "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-02"}
    if when is not None:
        res["occurrenceDateTime"] = when
    if category is not None:
        res["category"] = category
    return res


def hook(name: str, resources: list[dict[str, Any]], *, coverage: bool = True) -> dict[str, Any]:
    key = "appointments" if name == "appointment-book" else "draftOrders"
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()), "hook": name, "fhirServer": "http://ehr.example/fhir",
        "context": {"userId": "Practitioner/dr1", "patientId": "p1", "encounterId": "e1",
                    key: {"resourceType": "Bundle", "type": "collection",
                          "entry": [{"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r.get('id')}",
                                     "resource": r} for r in resources]}},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1990-04-01"}}}
    if coverage:
        body["prefetch"]["coverage"] = COVERAGE
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    log = tmp_path_factory.mktemp("cds") / "decisions.jsonl"
    LOG.append(log)
    with serve(ServiceConfig(log=log, access_log=False, site_url="https://cmap.example/site/")) as running:
        yield running


def _call(server: Running, name: str, body: Any) -> Any:
    with server.client() as c:
        return c.post(f"/cds-services/{name}", json=body)


def _coverage(action: dict[str, Any]) -> dict[str, Any]:
    ext = next(e for e in action["resource"]["extension"] if e["url"] == ch.COVERAGE_INFORMATION)
    return {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]}


def test_discovery_lists_both_services_with_their_prefetch(server: Running) -> None:
    with server.client() as c:
        services = c.get("/cds-services").json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {("appointment-book", "appointment-book"),
                                                         ("order-sign", "order-sign")}
    for s in services:
        assert s["description"] and s["prefetch"]["coverage"].startswith("Coverage?patient={{context.patientId}}")


def test_a_video_appointment_for_a_listed_code_is_covered(server: Running) -> None:
    got = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00-05:00", extension=[VIRTUAL])]))
    assert got.status_code == 200, got.text
    body = got.json()
    (card,) = body["cards"]
    assert card["indicator"] == "info" and len(card["summary"]) <= 140
    assert "97153 by audio-video on 2026-01-05 is payable" in card["summary"]
    assert "ON_TELEHEALTH_TABLE" in card["detail"] and card["source"]["label"].startswith("CMAP telehealth table")
    assert card["links"] == [{"label": "97153 on the CMAP telehealth table",
                              "url": "https://cmap.example/site/codes/97153.html", "type": "absolute"}]
    uuid.UUID(card["uuid"])
    (action,) = body["systemActions"]
    assert action["type"] == "update" and action["resource"]["id"] == "a1"
    cov = _coverage(action)
    assert cov["covered"] == "covered" and cov["coverage"] == {"reference": "Coverage/husky-1"}
    assert cov["coverage-assertion-id"] in card["detail"] and "date" in cov
    assert action["resource"]["extension"][0] == VIRTUAL  # the resource's own extensions are kept


def test_a_telephone_appointment_for_a_video_only_code_is_not_covered(server: Running) -> None:
    body = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00Z", appointment_type=_mode("PHONE"))])).json()
    (card,) = body["cards"]
    assert card["indicator"] == "critical" and "NOT payable (MODALITY_NOT_ALLOWED)" in card["summary"]
    cov = _coverage(body["systemActions"][0])
    assert cov["covered"] == "not-covered" and "audio-video" in cov["reason"]["text"]


def test_order_sign_decides_each_service_request_by_its_hcpcs_code_and_leaves_other_orders_alone(
        server: Running) -> None:
    orders = [service_request("T1016", "urn:oid:2.16.840.1.113883.6.285", "2026-01-05T10:00:00Z",
                              category=[_mode("VIDEOCONF")]),
              service_request("726551006", "http://snomed.info/sct", "2026-01-05", rid="sr2"),
              {"resourceType": "MedicationRequest", "id": "m1", "status": "draft", "intent": "order"}]
    body = _call(server, "order-sign", hook("order-sign", orders)).json()
    (card,) = body["cards"]
    assert "T1016 by audio-video on 2026-01-05 is payable" in card["summary"]
    assert [a["resource"]["id"] for a in body["systemActions"]] == ["sr1"]


def test_the_date_of_service_comes_from_the_occurrence(server: Running) -> None:
    early = _call(server, "order-sign", hook("order-sign", [
        service_request("97153", ch.CPT, "2019-06-01", category=[_mode("VIDEOCONF")])])).json()
    (card,) = early["cards"]
    # a video visit before the pandemic: the sources say CMAP did not pay for one, whatever the code
    assert card["indicator"] == "critical" and "2019-06-01" in card["summary"] and "NOT_PAID_IN_ERA" in card["summary"]
    assert "occurrenceDateTime" in card["detail"]
    later = _call(server, "order-sign", hook("order-sign", [
        service_request("97153", ch.CPT, "2019-06-01", category=[_mode("PHONE")])])).json()
    (card,) = later["cards"]
    # by telephone, the era had an exception no code names: the data cannot say, and the card warns
    assert card["indicator"] == "warning" and "2019-06-01" in card["summary"]


def test_release_decides_as_an_earlier_table_did(server: Running) -> None:
    body = hook("appointment-book", [appointment("97153", "2024-06-01T09:00:00Z",
                                                 appointment_type=_mode("VIDEOCONF"))])
    with server.client() as c:
        latest = c.post("/cds-services/appointment-book", json=body).json()["cards"][0]
        then = c.post("/cds-services/appointment-book", params={"release": "PB-2020-14"}, json=body).json()["cards"][0]
        unknown = c.post("/cds-services/appointment-book", params={"release": "nope"}, json=body)
    assert "release PB-2020-14" in then["source"]["label"] and "PB-2020-14" not in latest["source"]["label"]
    # PB 2020-14's row had no end yet; the latest data knows it ended 2023-05-11 and no source it holds covers 2024
    assert then["indicator"] == "info" and latest["indicator"] == "warning" and "DATE_NOT_IN_DATA" in latest["summary"]
    assert unknown.status_code == 400 and unknown.json()["field"] == "release"


def test_without_coverage_there_is_a_card_but_no_coverage_assertion(server: Running) -> None:
    body = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00Z", extension=[VIRTUAL])], coverage=False)).json()
    assert len(body["cards"]) == 1 and "systemActions" not in body


def test_an_in_person_appointment_gets_no_card(server: Running) -> None:
    body = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00Z")])).json()
    assert body == {"cards": []}


def test_virtual_without_a_modality_asks_for_it(server: Running) -> None:
    vr = {"coding": [{"system": ch.ACT_CODE, "code": "VR"}]}
    body = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00Z", appointment_type=vr)])).json()
    (card,) = body["cards"]
    assert card["indicator"] == "warning" and "audio-video or audio-only" in card["summary"]
    assert "systemActions" not in body


def test_every_decision_of_a_hook_is_logged(server: Running) -> None:
    before = _log_ids()
    body = _call(server, "appointment-book", hook("appointment-book", [
        appointment("97153", "2026-01-05T09:00:00Z", extension=[VIRTUAL], rid="x1"),
        appointment("T1016", "2026-01-05T09:00:00Z", appointment_type=_mode("PHONE"), rid="x2")])).json()
    ids = {_coverage(a)["coverage-assertion-id"] for a in body["systemActions"]}
    assert len(ids) == 2
    with server.client() as c:
        c.get("/health")  # the writer flushes when its queue runs dry
    import time

    deadline = time.monotonic() + 10
    while not ids <= _log_ids() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    new = [r for r in _records() if r["decision_id"] in ids]
    assert {r["source"] for r in new} == {"cds-services/appointment-book"}
    assert {r["input"]["line_id"] for r in new} == {"Appointment/x1", "Appointment/x2"}


def _records() -> list[dict[str, Any]]:
    if not LOG[0].exists():
        return []
    return [r for r in map(json.loads, LOG[0].read_text().splitlines()) if "log" not in r]  # not the start record


def _log_ids() -> set[str]:
    return {r["decision_id"] for r in _records()}


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.update(hook="order-sign"), "hook"),
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b["context"].pop("appointments"), "context.appointments"),
    (lambda b: b["context"]["appointments"]["entry"][0]["resource"].pop("participant"),
     "context.appointments.entry[0].resource.participant"),
    (lambda b: b["context"]["appointments"]["entry"][0]["resource"].update(start="next tuesday"),
     "context.appointments.entry[0].resource.start"),
])
def test_a_request_that_is_not_valid_is_a_problem_naming_the_field(server: Running, mutate: Any,
                                                                   field: str) -> None:
    body = copy.deepcopy(hook("appointment-book", [appointment("97153", "2026-01-05T09:00:00Z",
                                                               extension=[VIRTUAL])]))
    mutate(body)
    got = _call(server, "appointment-book", body)
    assert got.status_code == 400 and got.headers["content-type"] == "application/problem+json"
    assert got.json()["field"] == field


def test_an_unknown_service_is_404(server: Running) -> None:
    got = _call(server, "order-select", hook("order-sign", []))
    assert got.status_code == 404 and got.json()["status"] == 404


def test_every_outcome_of_the_model_has_a_deliberate_place_in_the_ehr() -> None:
    for outcome in Outcome:  # a new outcome must be given an indicator (or be silent) on purpose
        assert outcome.value in ch.INDICATORS or outcome.value in ch.SILENT, outcome
    assert ch.INDICATORS["undetermined"] == "warning" and "undetermined" not in ch.COVERAGE
    assert set(ch.COVERAGE.values()) <= {"covered", "not-covered", "conditional"}
