"""CDS Hooks 2.0 services: the telehealth decision as a card in the EHR, with Da Vinci CRD coverage information.

Two services, named after the hooks they answer: ``appointment-book`` (``context.appointments``, a Bundle
of FHIR R4 Appointments) and ``order-sign`` (``context.draftOrders``, a Bundle whose ServiceRequests are
read; other orders are left alone). Each resource is validated with ``fhir.resources`` (its R4B models: the
Appointment and ServiceRequest of R4B are R4's) and turned into a claim line:

- **code**: each coding of ``Appointment.serviceType`` or ``ServiceRequest.code`` in the CPT or HCPCS system
  (``CODE_SYSTEMS``); a resource without one gets no card, since the table lists only those codes.
- **date of service**: ``Appointment.start``, else the first ``requestedPeriod.start``;
  ``ServiceRequest.occurrenceDateTime``, ``occurrencePeriod.start`` or the first ``occurrenceTiming.event``;
  else today (the day the order is signed or the appointment booked).
- **modality** (``MODALITY_CODES``, ``VIRTUAL_SERVICE``), from the first of:
  the R5 ``virtualService`` element carried on an R4 Appointment by its cross-version extension (R5 defines
  it as the details of how to join a virtual appointment, such as a video conference; its channel types
  are video-meeting platforms, so it means audio-video unless its channel type says telephone); a coding
  of ``Appointment.serviceType`` / ``appointmentType`` or ``ServiceRequest.category`` / ``orderDetail`` /
  ``locationCode`` from HL7 v3 ParticipationMode (``VIDEOCONF``: videoconferencing, audio-video;
  ``PHONE``: telephone, audio-only), or HL7 v3 ActCode ``VR`` (virtual: telehealth without saying how).
  Nothing of these: the line is not telehealth, and the decision says the table does not apply.

The answer: one card per decided code, its indicator by outcome (``INDICATORS``), its summary the
outcome, its detail the decision retold by ``explain``, its source the citation, a link to the code's page;
and, when the request's prefetch carries the patient's Coverage, a ``systemActions`` update adding CRD's
coverage-information extension to the resource (``COVERAGE``: covered or not-covered; no assertion when
the table cannot decide).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..explain import explain
from ..model import Outcome
from .decisions import Answer
from .problems import ProblemError
from .state import Serving

CPT = "http://www.ama-assn.org/go/cpt"
CODE_SYSTEMS = {
    CPT: "CPT",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "HCPCS",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "HCPCS",
    "urn:oid:2.16.840.1.113883.6.285": "HCPCS",
}
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TELEHEALTH = "telehealth"  # a code that says "virtual" but not how
# (system, code) -> the modality it states, or TELEHEALTH
MODALITY_CODES: dict[tuple[str, str], str] = {
    (PARTICIPATION_MODE, "VIDEOCONF"): "audio-video",
    (PARTICIPATION_MODE, "PHONE"): "audio-only",
    (ACT_CODE, "VR"): TELEHEALTH,
}
VIRTUAL_SERVICE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService"
COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"

# How each outcome shows in the EHR, and what CRD coverage it asserts. An outcome not named here (one the
# model gains later) gets DEFAULT_INDICATOR and no coverage assertion.
INDICATORS = {
    Outcome.PAYABLE.value: "info",
    Outcome.NOT_PAYABLE.value: "critical",
    Outcome.UNDETERMINED.value: "warning",  # the data cannot decide: the official table does
}
DEFAULT_INDICATOR = "warning"
COVERAGE = {Outcome.PAYABLE.value: "covered", Outcome.NOT_PAYABLE.value: "not-covered"}
SILENT = {Outcome.NOT_TELEHEALTH.value}  # outcomes that make no card: the telehealth table does not apply


@dataclass(frozen=True, slots=True)
class HookService:
    id: str
    hook: str
    title: str
    description: str
    context_key: str
    resource_type: str


SERVICES = {
    "appointment-book": HookService(
        "appointment-book", "appointment-book", "CMAP telehealth coverage of an appointment",
        "Whether Connecticut Medicaid (HUSKY Health) pays for the booked appointment's procedure code via "
        "telehealth, by the CMAP telehealth table on the appointment's date.", "appointments", "Appointment"),
    "order-sign": HookService(
        "order-sign", "order-sign", "CMAP telehealth coverage of an order",
        "Whether Connecticut Medicaid (HUSKY Health) pays for the ordered service's procedure code via "
        "telehealth, by the CMAP telehealth table on the service's date.", "draftOrders", "ServiceRequest"),
}
PREFETCH = {"patient": "Patient/{{context.patientId}}",
            "coverage": "Coverage?patient={{context.patientId}}&status=active"}


def discovery() -> dict[str, Any]:
    return {"services": [{"hook": s.hook, "id": s.id, "title": s.title, "description": s.description,
                          "prefetch": PREFETCH} for s in SERVICES.values()]}


def _models() -> dict[str, Any]:
    # imported on the first hook call: fhir.resources takes a noticeable time to import
    from fhir.resources.R4B.appointment import Appointment
    from fhir.resources.R4B.servicerequest import ServiceRequest

    return {"Appointment": Appointment, "ServiceRequest": ServiceRequest}


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(resource: Mapping[str, Any], where: str) -> Any:
    from pydantic import ValidationError

    model = _models()[str(resource.get("resourceType"))]
    try:
        return model.model_validate(resource)
    except ValidationError as err:
        errors = [{"field": f"{where}.{_field(e['loc'])}" if e["loc"] else where, "detail": e["msg"]}
                  for e in err.errors(include_url=False)]
        raise ProblemError(400, "invalid-request", f"the {resource.get('resourceType')} is not valid FHIR R4: "
                           f"{errors[0]['field']}: {errors[0]['detail']}", field=errors[0]["field"],
                           errors=errors) from None


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProblemError(400, "invalid-request", f"{field} must be a JSON object", field=field)
    return value


def _resources(body: Any, svc: HookService) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, resource) for every resource of the service's type in the request's context."""
    body = _object(body, "request")
    hook = body.get("hook")
    if hook != svc.hook:
        raise ProblemError(400, "invalid-request", f"this service answers the {svc.hook} hook, not {hook!r}",
                           field="hook")
    if not isinstance(body.get("hookInstance"), str):
        raise ProblemError(400, "invalid-request", "hookInstance must be a string (a UUID)", field="hookInstance")
    context = _object(body.get("context"), "context")
    key = f"context.{svc.context_key}"
    bundle = _object(context.get(svc.context_key), key)
    if bundle.get("resourceType") != "Bundle":
        raise ProblemError(400, "invalid-request", f"{key} must be a FHIR Bundle", field=f"{key}.resourceType")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ProblemError(400, "invalid-request", "a Bundle's entry is a list", field=f"{key}.entry")
    out = []
    for i, entry in enumerate(entries):
        resource = _object(_object(entry, f"{key}.entry[{i}]").get("resource"), f"{key}.entry[{i}].resource")
        if resource.get("resourceType") == svc.resource_type:
            out.append((f"{key}.entry[{i}].resource", resource))
    return out


def _codings(concepts: Any) -> list[Any]:
    out: list[Any] = []
    for concept in concepts or ():
        out.extend(concept.coding or ())
    return out


def _modality(resource: Any, concepts: list[Any]) -> str | None:
    for ext in resource.extension or ():
        if ext.url == VIRTUAL_SERVICE:
            for sub in ext.extension or ():
                coding = sub.valueCoding
                if sub.url == "channelType" and coding is not None:
                    stated = MODALITY_CODES.get((coding.system or "", coding.code or ""))
                    if stated is not None and stated != TELEHEALTH:
                        return stated
            return "audio-video"
    found = None
    for coding in _codings(concepts):
        stated = MODALITY_CODES.get((coding.system or "", coding.code or ""))
        if stated is not None and (found is None or found == TELEHEALTH):
            found = stated
    return found


def _date_of(resource: Any, resource_type: str) -> tuple[dt.date, str]:
    """The date of service and where it came from."""
    if resource_type == "Appointment":
        if resource.start is not None:
            return resource.start.date(), "start"
        for period in resource.requestedPeriod or ():
            if period.start is not None:
                return _day(period.start), "requestedPeriod.start"
    else:
        if resource.occurrenceDateTime is not None:
            return _day(resource.occurrenceDateTime), "occurrenceDateTime"
        if resource.occurrencePeriod is not None and resource.occurrencePeriod.start is not None:
            return _day(resource.occurrencePeriod.start), "occurrencePeriod.start"
        timing = resource.occurrenceTiming
        if timing is not None and timing.event:
            return _day(timing.event[0]), "occurrenceTiming.event"
    return dt.date.today(), "today (the resource gives no date)"


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])  # a partial date such as 2026-01 has no day: the 1st


@dataclass(frozen=True, slots=True)
class Ask:
    """A claim line read from a resource, where its date came from, and whether it is virtual but unstated."""

    record: dict[str, Any]
    date_from: str
    unstated: bool


def _asks(resource: Any, resource_type: str) -> list[Ask]:
    """One claim line per CPT/HCPCS code of the resource."""
    if resource_type == "Appointment":
        code_concepts = list(resource.serviceType or ())
        modality_concepts = [*code_concepts, *([resource.appointmentType] if resource.appointmentType else [])]
    else:
        code_concepts = [resource.code] if resource.code is not None else []
        modality_concepts = [*(resource.category or ()), *(resource.orderDetail or ()),
                             *(resource.locationCode or ())]
    day, date_from = _date_of(resource, resource_type)
    modality = _modality(resource, modality_concepts)
    codes = []
    for coding in _codings(code_concepts):
        if coding.system in CODE_SYSTEMS and coding.code and coding.code not in codes:
            codes.append(coding.code)
    out = []
    for code in codes:
        record: dict[str, Any] = {"code": code, "date": day.isoformat()}
        if modality is not None and modality != TELEHEALTH:
            record["modality"] = modality
        if resource.id:
            record["line_id"] = f"{resource_type}/{resource.id}"
        out.append(Ask(record, date_from, modality == TELEHEALTH))
    return out


def _coverage_reference(body: Mapping[str, Any]) -> str | None:
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, Mapping):
        return None
    coverage = prefetch.get("coverage")
    if isinstance(coverage, Mapping) and coverage.get("resourceType") == "Bundle":
        for entry in coverage.get("entry") or ():
            res = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(res, Mapping) and res.get("resourceType") == "Coverage" and res.get("id"):
                return f"Coverage/{res['id']}"
    elif isinstance(coverage, Mapping) and coverage.get("resourceType") == "Coverage" and coverage.get("id"):
        return f"Coverage/{coverage['id']}"
    return None


def code_page(code: str, site_url: str | None, api_base: str, day: dt.date) -> str:
    """The code's page on the published site, else the API's report of the code."""
    if site_url:
        return f"{site_url.rstrip('/')}/codes/{code}.html"
    return f"{api_base}/v1/codes/{code}?date={day.isoformat()}"


def _card(answer: Answer, serving: Serving, date_from: str, link: str) -> dict[str, Any]:
    result = answer.result
    decision, line = result.decision, result.line
    assert decision is not None and line is not None
    outcome = decision.outcome.value
    how = f" by {decision.modality}" if decision.modality else ""
    verdict = {"payable": "payable", "not_payable": "NOT payable"}.get(outcome, outcome.replace("_", " "))
    summary = f"CMAP telehealth: {line.code}{how} on {line.date} is {verdict}"
    if outcome != Outcome.PAYABLE.value:
        summary += f" ({', '.join(decision.reason_codes)})"
    cited = next((r.citation for r in decision.reasons if r.citation is not None), None)
    source: dict[str, Any] = {"label": f"CMAP telehealth table, release {decision.release}"}
    if cited is not None and cited.source.url.startswith(("http://", "https://")):
        source["url"] = cited.source.url
    detail = explain(serving.policy, line, decision).replace("\n", "  \n")
    detail += f"  \n\nDate of service from the resource's {date_from}. Decision id {answer.decision_id}."
    return {"uuid": str(uuid.uuid4()), "summary": summary[:140],
            "indicator": INDICATORS.get(outcome, DEFAULT_INDICATOR), "detail": detail, "source": source,
            "links": [{"label": f"{line.code} on the CMAP telehealth table", "url": link, "type": "absolute"}]}


def _unstated_card(code: str, day: dt.date, link: str) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "indicator": "warning",
            "summary": f"CMAP telehealth: say whether {code} on {day} is audio-video or audio-only",
            "detail": "The resource is marked virtual (HL7 v3 ActCode VR) but does not say how it is delivered. "
                      "CMAP lists some codes for audio-video only: state the modality with a HL7 v3 "
                      "ParticipationMode coding (VIDEOCONF or PHONE) or the R5 virtualService extension.",
            "source": {"label": "CMAP telehealth table"},
            "links": [{"label": f"{code} on the CMAP telehealth table", "url": link, "type": "absolute"}]}


def _coverage_extension(answer: Answer, coverage: str, covered: str) -> dict[str, Any]:
    decision = answer.result.decision
    assert decision is not None
    parts: list[dict[str, Any]] = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": covered},
        {"url": "date", "valueDate": dt.date.today().isoformat()},
        {"url": "coverage-assertion-id", "valueString": answer.decision_id},
    ]
    if covered == "not-covered":
        parts.append({"url": "reason", "valueCodeableConcept": {
            "text": "; ".join(r.message for r in decision.reasons)[:1000]}})
    return {"url": COVERAGE_INFORMATION, "extension": parts}


def answer(service_id: str, body: Any, serving: Serving, *, release: str | None = None, site_url: str | None,
           api_base: str) -> tuple[dict[str, Any], list[Answer]]:
    """The CDS Hooks response to a request, and the answers (decisions) it holds, for the log and metrics.

    ``release``: decide as the table was published then (the service's ``?release=``); default the latest.
    """
    svc = SERVICES[service_id]
    found = _resources(body, svc)
    coverage = _coverage_reference(body)
    cards: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    answers: list[Answer] = []
    for where, raw in found:
        resource = _validate(raw, where)
        extensions = []
        for ask in _asks(resource, svc.resource_type):
            day = dt.date.fromisoformat(ask.record["date"])
            link = code_page(ask.record["code"], site_url, api_base, day)
            if ask.unstated:
                cards.append(_unstated_card(ask.record["code"], day, link))
                continue
            one = serving.decider.answer(ask.record, len(answers) + 1, release)
            if one.result.error is not None:  # a code that is not a procedure code: say so in the answer
                err = one.result.error
                raise ProblemError(400, "invalid-request", f"{where}: {err.message}", field=f"{where}.code")
            answers.append(one)
            outcome = one.result.decision.outcome.value if one.result.decision else ""
            if outcome in SILENT:
                continue
            cards.append(_card(one, serving, ask.date_from, link))
            covered = COVERAGE.get(outcome)
            if coverage is not None and covered is not None:
                extensions.append(_coverage_extension(one, coverage, covered))
        if extensions:
            updated = dict(raw)
            updated["extension"] = [*(raw.get("extension") or []), *extensions]
            actions.append({"type": "update", "description": "CMAP telehealth coverage information",
                            "resource": updated})
    response: dict[str, Any] = {"cards": cards}
    if actions:
        response["systemActions"] = actions
    return response, answers
