"""Prometheus metrics: decisions by outcome and reason, latency, the policy in service, reloads.

Each app has its own registry (several apps in one process, as in the tests, do not collide). The label
values of every outcome in ``model.Outcome`` are created at start, so a dashboard sees zeros rather than
missing series, and an outcome added to the model appears by itself; a reason's series appears with its
first use (most pairs of outcome and reason never occur). The ``_created`` series are left out.
The children of labelled metrics are looked up once and kept: ``labels()`` takes a lock and builds a key,
which a busy service should not do per decision.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ..lines import FIELDS
from ..model import Decision, Outcome

CONTENT_TYPE = CONTENT_TYPE_LATEST
# decision latency in seconds: the interpreter answers in microseconds, HTTP in about a millisecond
_DECISION_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)
_REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_PROBLEM_LABELS = 20  # a broken tree can have hundreds of problems: /health lists them all

disable_created_metrics()  # type: ignore[no-untyped-call]  # a timestamp series beside every counter doubles what a scrape reads


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("cmap_policy_decisions", "Claim lines decided, by outcome.", ["outcome"],
                                 registry=r)
        self.reasons = Counter("cmap_policy_decision_reasons", "Reasons given, by outcome and reason code.",
                               ["outcome", "reason"], registry=r)
        self.line_errors = Counter("cmap_policy_line_errors", "Claim lines that could not be decided "
                                   "(malformed), by field.", ["field"], registry=r)
        self.decision_seconds = Histogram("cmap_policy_decision_seconds", "Time to read and decide one claim "
                                          "line, inside the service.", buckets=_DECISION_BUCKETS, registry=r)
        self.request_seconds = Histogram("cmap_policy_http_request_seconds", "Time to answer an HTTP request.",
                                         ["route"], buckets=_REQUEST_BUCKETS, registry=r)
        self.responses = Counter("cmap_policy_http_responses", "HTTP responses, by route and status.",
                                 ["route", "status"], registry=r)
        self.policy = Gauge("cmap_policy_policy_info", "The policy in service (1 for the loaded one).",
                            ["release", "policy_hash", "root"], registry=r)
        self.signer = Gauge("cmap_policy_policy_signer_info", "The key that signed the bundle in service (1 for "
                            "it; no series when a folder is served).", ["key_id"], registry=r)
        self.policy_loaded = Gauge("cmap_policy_policy_loaded_timestamp_seconds", "When the policy in service "
                                   "was loaded.", registry=r)
        self.reloads = Counter("cmap_policy_reloads", "Policy trees loaded and swapped in after a change.",
                               registry=r)
        self.reload_failures = Counter("cmap_policy_reload_failures", "Changed policy trees that failed to load "
                                       "(the old policy kept serving).", registry=r)
        self.reload_failed = Gauge("cmap_policy_reload_failed", "1 while the last change of the policy tree "
                                   "failed to load.", registry=r)
        self.reload_problems = Gauge("cmap_policy_reload_problem", "The problems of the tree that failed to "
                                     "load (first 20), as FILE:LINE: message.", ["problem"], registry=r)
        self.log_backlog = Gauge("cmap_policy_decision_log_backlog", "Decision records queued, not yet written.",
                                 registry=r)
        self.log_written = Gauge("cmap_policy_decision_log_records", "Decision records written since start.",
                                 registry=r)
        self._outcome = {o.value: self.decisions.labels(o.value) for o in Outcome}
        self._reason: dict[tuple[str, str], Counter] = {}
        self._http: dict[tuple[str, int], tuple[Histogram, Counter]] = {}
        self._seconds = self.decision_seconds

    def decided(self, decision: Decision, seconds: float) -> None:
        """Count one decision (a single-line request) and its latency."""
        outcome = decision.outcome.value
        child = self._outcome.get(outcome)
        if child is None:  # an outcome the model gained after start
            child = self._outcome[outcome] = self.decisions.labels(outcome)
        child.inc()
        for reason in decision.reasons:
            self._reason_child(outcome, reason.code).inc()
        self._seconds.observe(seconds)

    def decided_many(self, decisions: Iterable[Decision], seconds: Sequence[float]) -> None:
        """Count many decisions (a CDS Hooks request's): tallied first, then one increment per series."""
        self.decided_counts(((d, 1) for d in decisions), seconds)

    def decided_counts(self, counts: Iterable[tuple[Decision, int]], seconds: Sequence[float]) -> None:
        """Count decisions given as (decision, how many lines had it): a batch's, one increment per series.
        ``seconds`` are the latencies to observe (a batch observes its time per line once, not once a line)."""
        outcomes: Tally[str] = Tally()
        reasons: Tally[tuple[str, str]] = Tally()
        for d, n in counts:
            outcomes[d.outcome.value] += n
            for r in d.reasons:
                reasons[(d.outcome.value, r.code)] += n
        for outcome, n in outcomes.items():
            self.decisions.labels(outcome).inc(n)
        for (outcome, code), n in reasons.items():
            self._reason_child(outcome, code).inc(n)
        for s in seconds:
            self._seconds.observe(s)

    def line_error(self, field: str | None) -> None:
        """Count a line that could not be decided, by the field at fault: a known field's name, ``unknown``
        for a field the line should not have (its name comes from the client: never a label), or ``line``."""
        label = "line" if field is None else (field if field in FIELDS else "unknown")
        self.line_errors.labels(label).inc()

    def responded(self, route: str, status: int, seconds: float) -> None:
        """Count one HTTP response and its time, by route (the path template) and status."""
        children = self._http.get((route, status))
        if children is None:
            children = self._http[(route, status)] = (self.request_seconds.labels(route),
                                                      self.responses.labels(route, str(status)))
        children[0].observe(seconds)
        children[1].inc()

    def _reason_child(self, outcome: str, code: str) -> Counter:
        child = self._reason.get((outcome, code))
        if child is None:
            child = self._reason[(outcome, code)] = self.reasons.labels(outcome, code)
        return child

    def serving(self, release: str, policy_hash: str, root: str, loaded_at: float, key_id: str | None = None) -> None:
        self.policy.clear()
        self.policy.labels(release, policy_hash, root).set(1)
        self.policy_loaded.set(loaded_at)
        self.signer.clear()
        if key_id is not None:
            self.signer.labels(key_id).set(1)

    def reload_result(self, problems: Sequence[str] | None, *, counted: bool) -> None:
        """After a load: None when it succeeded, else the problems of the tree that failed; ``counted`` when it
        was a reload (not the first load)."""
        self.reload_problems.clear()
        if problems is None:
            self.reloads.inc(counted)
            self.reload_failed.set(0)
            return
        self.reload_failures.inc(counted)
        self.reload_failed.set(1)
        for problem in problems[:_MAX_PROBLEM_LABELS]:
            self.reload_problems.labels(problem).set(1)

    def render(self, backlog: int, written: int) -> bytes:
        self.log_backlog.set(backlog)
        self.log_written.set(written)
        return generate_latest(self.registry)
