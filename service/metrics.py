"""Prometheus metrics of the running service, in a registry of their own.

The runner calls one method per thing that happened (an evaluation finished, an adapter
call returned, a reload succeeded or failed, a breaker reset was asked for); the HTTP
server calls `render()`. The gauges that mirror the engine's state (escalation levels,
breaker states, trading states) are rewritten from the whole `State` after every
evaluation, and the label sets that are no longer in the state are removed, so label
cardinality follows the live portfolio instead of growing with every position ever held.

Every method may be called from any thread (scheduler jobs, the reloader, HTTP handlers).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from bastion.engine.decision import Decision
from bastion.engine.state import ARMED, COOLDOWN, TRADING_STATE_RANK, TRIPPED, State

# Prometheus 2.x and 3.x both parse text format 0.0.4 without a fallback protocol; the
# bytes are the same as 1.0.0's for names like ours (no UTF-8 metric or label names).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# One evaluation takes well under a millisecond on a calm book and seconds only when
# something is wrong: 0.1 ms to 5 s.
EVALUATION_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# An order check is parse + validate + can_execute: tens of microseconds when all is well.
CHECK_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
# How late the HTTP event loop runs a timer (service.http `watch_loop_lag`): every request
# waits at least this long before its first byte is read. Under a millisecond when idle.
LOOP_LAG_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# approved / downsized / denied are answers; error is a check that gave none (an invalid
# or oversized request, a service not ready) or failed inside (a denial blocked by "error").
CHECK_OUTCOMES = ("approved", "downsized", "denied", "error")
# queued: taken, applied at the next cycle; rejected: an unreadable body, or no such breaker
# tripped or cooling down for the subject (POST /api/v1/breakers/reset).
RESET_RESULTS = ("queued", "rejected")
# What the service writes to disk (POST answers wait for it): the --state file, the audit trail.
PERSIST_TARGETS = ("state", "audit")
# Why a policy reload was rejected (service/reloader.py REJECT_REASONS).
RELOAD_REFUSALS = ("lint", "no_policies", "removes_protection", "error")
# What the shadow candidate decides differently (service.candidate.KINDS).
CANDIDATE_KINDS = ("trading_state", "breaker", "escalation", "check")
# What of the shadow candidate's work can fail (service.candidate.FAILURES).
CANDIDATE_FAILURES = ("cycle", "check")
# (status, reason) of every request the HTTP front refuses for who is asking.
AUTH_REFUSALS = (
    ("401", "missing_token"),
    ("401", "malformed_header"),
    ("401", "unknown_token"),
    ("403", "role_too_low"),
    ("503", "auth_file_invalid"),
)
# Orders reported sent (POST /api/v1/orders), by the decision they were sent under; duplicate:
# an order id already reported (answered with the first answer); error: nothing recorded.
REPORT_OUTCOMES = ("approved", "downsized", "denied", "duplicate", "error")
# Venue calls cross the internet: 5 ms to 30 s (the adapters' timeouts end there).
ADAPTER_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

BREAKER_STATE_VALUE = {ARMED: 0, COOLDOWN: 1, TRIPPED: 2}
# Alert delivery (--alerts, service.alerting): a message sent, failed after its retries,
# over the receiver's per-minute budget, or pushed out of a full outbox.
ALERT_OUTCOMES = ("ok", "failed", "throttled", "dropped")
ALERT_SEVERITIES = ("info", "warning", "critical", "emergency")
# From the alert raised to the message accepted by the receiver: critical ones within 5 s.
ALERT_DELIVERY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class ServiceMetrics:
    """Every metric `bastion serve` exports; see the README's "Metrics" table."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # No `*_created` series next to every counter and histogram: they double the
        # series count and nothing here reads them. (A process-wide switch of the client.)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped upstream)
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)  # memory, CPU, open fds: what operators chart
            # Collections and the objects they freed, by generation: a rate of collected
            # objects that climbs with the checks means a reference cycle per request
            # is back (PLAYBOOKS "Order checks are slow").
            GCCollector(registry=registry)
        self.registry = registry
        self._lock = threading.Lock()  # one evaluation's gauges change together
        self._escalation_labels: set[tuple[str, str, str]] = set()
        self._level_labels: set[tuple[str, str]] = set()
        self._breaker_labels: set[tuple[str, str, str]] = set()
        self._account_labels: set[str] = set()
        self._policy_labels: set[tuple[str, str]] = set()
        self._policy_set_labels: set[str] = set()
        self._define(registry)
        self._define_alert_metrics(registry)

    def _define(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "bastion_decisions",
            "Decisions made, by kind, outcome and mode (enforce or shadow).",
            ["kind", "outcome", "mode"],
            registry=registry,
        )
        self.evaluation_seconds = Histogram(
            "bastion_evaluation_seconds",
            "Wall time of one evaluation of the policy set on a snapshot.",
            buckets=EVALUATION_BUCKETS_S,
            registry=registry,
        )
        self.evaluations = Counter("bastion_evaluations", "Evaluations run.", registry=registry)
        self.evaluation_errors = Counter(
            "bastion_evaluation_errors",
            "Evaluations that failed and failed safe (every account REDUCING).",
            registry=registry,
        )
        self.escalation_level = Gauge(
            "bastion_escalation_level",
            "Current escalation level of each escalated position (absent at level 0).",
            ["position", "policy", "mode"],
            registry=registry,
        )
        self.positions_by_level = Gauge(
            "bastion_positions_by_level",
            "Escalated positions at each level (level 0 is not counted).",
            ["level", "mode"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "bastion_breaker_state",
            "Circuit-breaker state: 0 armed, 1 cooldown, 2 tripped.",
            ["breaker", "subject", "policy"],
            registry=registry,
        )
        self.trading_state = Gauge(
            "bastion_trading_state",
            "Trading state of each account: 0 ACTIVE, 1 REDUCING, 2 HALTED.",
            ["account"],
            registry=registry,
        )
        self.polling_interval = Gauge(
            "bastion_polling_interval_seconds",
            "Current evaluation interval, set by the highest escalation level.",
            registry=registry,
        )
        self.adapter_seconds = Histogram(
            "bastion_adapter_request_seconds",
            "Latency of adapter calls to a venue, successful or not.",
            ["adapter", "operation"],
            buckets=ADAPTER_BUCKETS_S,
            registry=registry,
        )
        self.adapter_errors = Counter(
            "bastion_adapter_errors",
            "Adapter calls that failed.",
            ["adapter", "operation"],
            registry=registry,
        )
        self.data_age_seconds = Gauge(
            "bastion_data_age_seconds",
            "Age of the newest data each adapter delivered, when last measured.",
            ["adapter"],
            registry=registry,
        )
        self._define_reload_metrics(registry)
        self._define_check_metrics(registry)
        self.candidate_disagreements = _labelled_counter(
            "bastion_candidate_disagreements",
            "Decisions the shadow candidate (--candidate) makes differently from the serving "
            "set, by kind: trading_state, breaker, escalation (counted when one starts or "
            "changes) and check (every order check or report whose outcome or size differs).",
            "kind",
            CANDIDATE_KINDS,
            registry,
        )
        self.candidate_failures = _labelled_counter(
            "bastion_candidate_failures",
            "Shadow-candidate evaluations that raised instead of deciding, by what: cycle (its "
            "evaluation of a snapshot) or check (its decision of an order). The serving set is "
            "untouched; a candidate whose last cycle failed is not promoted.",
            "what",
            CANDIDATE_FAILURES,
            registry,
        )
        self.breaker_resets = _labelled_counter(
            "bastion_breaker_resets",
            "Manual breaker resets asked for by POST /api/v1/breakers/reset, by result: "
            "queued (applied at the next cycle) or rejected.",
            "result",
            RESET_RESULTS,
            registry,
        )
        self._define_persist_metrics(registry)
        self._define_auth_metrics(registry)

    def _define_auth_metrics(self, registry: CollectorRegistry) -> None:
        self.auth_refusals = Counter(
            "bastion_auth_refusals",
            "Requests refused by authentication (401: no, malformed or unknown token; "
            "503: the --auth file is invalid) or authorisation (403: role too low).",
            ["status", "reason"],
            registry=registry,
        )
        for status, reason in AUTH_REFUSALS:
            self.auth_refusals.labels(status=status, reason=reason)  # all exist from the start

    def _define_persist_metrics(self, registry: CollectorRegistry) -> None:
        self.persist_failures = _labelled_counter(
            "bastion_persist_failures",
            "Failed writes, by what: state (the --state file) or audit (the audit trail). "
            "While the last write failed, /readyz answers 503 with the reason.",
            "what",
            PERSIST_TARGETS,
            registry,
        )
        self.orders_reported = _labelled_counter(
            "bastion_orders_reported",
            "Orders reported sent by POST /api/v1/orders, by the outcome they were sent "
            "under (approved, downsized, denied), duplicate (id already reported) or error.",
            "outcome",
            REPORT_OUTCOMES,
            registry,
        )

    def _define_check_metrics(self, registry: CollectorRegistry) -> None:
        self.order_checks = _labelled_counter(
            "bastion_order_checks",
            "Orders checked by POST /api/v1/check, by outcome: approved, downsized, denied, "
            "or error (no answer given, or the check failed and denied).",
            "outcome",
            CHECK_OUTCOMES,
            registry,
        )
        self.order_check_seconds = Histogram(
            "bastion_order_check_seconds",
            "Wall time of one POST /api/v1/check, from the body read to the answer.",
            buckets=CHECK_BUCKETS_S,
            registry=registry,
        )
        self.http_loop_lag_seconds = Histogram(
            "bastion_http_loop_lag_seconds",
            "How late the HTTP event loop ran a timer due every 50 ms: the wait before a "
            "request is read (collector pauses, a cycle holding the GIL, CPU saturation).",
            buckets=LOOP_LAG_BUCKETS_S,
            registry=registry,
        )

    def _define_reload_metrics(self, registry: CollectorRegistry) -> None:
        self.reloads = _labelled_counter(
            "bastion_policy_reloads",
            "Policy reloads attempted, by result (success or failure).",
            "result",
            ("success", "failure"),
            registry,
        )
        self.reload_refusals = _labelled_counter(
            "bastion_reload_refusals",
            "Rejected policy reloads by reason: lint (the files do not lint clean), "
            "no_policies, removes_protection (the policy-set guard: an officer must accept), "
            "error.",
            "reason",
            RELOAD_REFUSALS,
            registry,
        )
        self.reload_last_success = Gauge(
            "bastion_policy_reload_last_success_timestamp_seconds",
            "Unix time of the last successful policy load or reload.",
            registry=registry,
        )
        self.reload_last_failure = Gauge(
            "bastion_policy_reload_last_failure_timestamp_seconds",
            "Unix time of the last rejected policy reload.",
            registry=registry,
        )
        self.policy_info = Gauge(
            "bastion_policy_info",
            "1 for each active policy, labelled with its version (sha256 of its content).",
            ["policy", "version"],
            registry=registry,
        )
        self.policy_set_info = Gauge(
            "bastion_policy_set_info",
            "1 for the active policy set, labelled with its version.",
            ["version"],
            registry=registry,
        )

    # -- evaluation ---------------------------------------------------------------------

    def evaluation_done(
        self, latency_s: float, decisions: Sequence[Decision], state: State, interval_s: float
    ) -> None:
        """Record one evaluation: its decisions, its latency, and the state it left."""
        with self._lock:
            self.evaluations.inc()
            self.evaluation_seconds.observe(latency_s)
            for decision in decisions:
                self.decisions.labels(decision.kind, decision.outcome, decision.mode).inc()
            if any(decision.kind == "evaluation" for decision in decisions):
                self.evaluation_errors.inc()
            self.polling_interval.set(interval_s)
            self._set_escalations(state)
            self._set_breakers(state)
            self._set_trading_states(state)

    def _set_escalations(self, state: State) -> None:
        levels: dict[tuple[str, str], int] = {}
        current: set[tuple[str, str, str]] = set()
        for key, escalated in state.escalations.items():
            position, mode = _position_of(key, escalated.policy)
            labels = (position, escalated.policy, mode)
            self.escalation_level.labels(*labels).set(escalated.level)
            current.add(labels)
            level = (str(escalated.level), mode)
            levels[level] = levels.get(level, 0) + 1
        for labels in self._escalation_labels - current:
            self.escalation_level.remove(*labels)
        self._escalation_labels = current
        # Levels are few and a count of 0 is meaningful: keep every level seen, at 0.
        self._level_labels |= set(levels)
        for level in self._level_labels:
            self.positions_by_level.labels(*level).set(levels.get(level, 0))

    def _set_breakers(self, state: State) -> None:
        current: set[tuple[str, str, str]] = set()
        for key, breaker in state.breakers.items():
            labels = _breaker_labels(key)
            self.breaker_state.labels(*labels).set(BREAKER_STATE_VALUE.get(breaker.status, 2))
            current.add(labels)
        for labels in self._breaker_labels - current:
            self.breaker_state.remove(*labels)
        self._breaker_labels = current

    def _set_trading_states(self, state: State) -> None:
        current = set(state.trading_states)
        for account, trading_state in state.trading_states.items():
            self.trading_state.labels(account).set(TRADING_STATE_RANK.get(trading_state, 2))
        for account in self._account_labels - current:
            self.trading_state.remove(account)
        self._account_labels = current

    # -- adapters -------------------------------------------------------------------------

    def adapter_call(self, adapter: str, operation: str, ok: bool, latency_s: float) -> None:
        """Record one call to a venue (`operation`: bars, quotes, positions, ...)."""
        self.adapter_seconds.labels(adapter, operation).observe(latency_s)
        errors = self.adapter_errors.labels(adapter, operation)  # exists at 0 once called
        if not ok:
            errors.inc()

    def data_age(self, adapter: str, age_s: float) -> None:
        """Record how old the adapter's newest data is (staleness alerts read this)."""
        self.data_age_seconds.labels(adapter).set(age_s)

    # -- order checks ---------------------------------------------------------------------

    def order_checked(self, outcome: str, latency_s: float) -> None:
        """Record one order check (`outcome`: one of CHECK_OUTCOMES)."""
        self.order_checks.labels(outcome=outcome).inc()
        self.order_check_seconds.observe(latency_s)

    def candidate_failed(self, what: str) -> None:
        """Record one failed candidate evaluation (`what`: CANDIDATE_FAILURES)."""
        self.candidate_failures.labels(what=what).inc()

    def candidate_disagreed(self, kind: str) -> None:
        """Record one disagreement of the shadow candidate (`kind`: CANDIDATE_KINDS)."""
        self.candidate_disagreements.labels(kind=kind).inc()

    # -- manual breaker resets ------------------------------------------------------------

    def breaker_reset(self, result: str) -> None:
        """Record one reset request (`result`: one of RESET_RESULTS)."""
        self.breaker_resets.labels(result=result).inc()

    # -- persistence and reported orders -------------------------------------------------

    def auth_refused(self, status: int, reason: str) -> None:
        """Record one refused request (`status`, `reason`: one of AUTH_REFUSALS)."""
        self.auth_refusals.labels(status=str(status), reason=reason).inc()

    def persist_failed(self, what: str) -> None:
        """Record one failed write (`what`: one of PERSIST_TARGETS)."""
        self.persist_failures.labels(what=what).inc()

    def order_reported(self, outcome: str) -> None:
        """Record one order report (`outcome`: one of REPORT_OUTCOMES)."""
        self.orders_reported.labels(outcome=outcome).inc()

    # -- policy reloads -------------------------------------------------------------------

    def reload_succeeded(self, at: datetime, version: str, versions: Mapping[str, str]) -> None:
        """A policy set became active: the set's version and each policy's version."""
        with self._lock:
            self.reloads.labels(result="success").inc()
            self.reload_last_success.set(at.timestamp())
            current = set(versions.items())
            for labels in self._policy_labels - current:
                self.policy_info.remove(*labels)
            for labels in current:
                self.policy_info.labels(*labels).set(1)
            self._policy_labels = current
            for old in self._policy_set_labels - {version}:
                self.policy_set_info.remove(old)
            self.policy_set_info.labels(version).set(1)
            self._policy_set_labels = {version}

    def reload_failed(self, at: datetime, reason: str = "error") -> None:
        """A reload was rejected (`reason`: one of RELOAD_REFUSALS); the last good policy
        set stays active."""
        self.reloads.labels(result="failure").inc()
        self.reload_refusals.labels(reason=reason).inc()
        self.reload_last_failure.set(at.timestamp())

    # -- alert delivery (--alerts) ---------------------------------------------------------

    def _define_alert_metrics(self, registry: CollectorRegistry) -> None:
        self.alerts_sent = Counter(
            "bastion_alerts_sent",
            "Alert messages by receiver and outcome: ok, failed (after its retries), "
            "throttled (over the receiver's max_per_minute), dropped (its outbox was full).",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.alert_delivery_seconds = Histogram(
            "bastion_alert_delivery_seconds",
            "From the oldest alert in a message being raised to the receiver accepting it.",
            ["receiver"],
            buckets=ALERT_DELIVERY_BUCKETS_S,
            registry=registry,
        )
        self.alerts_dropped = _labelled_counter(
            "bastion_alerts_dropped",
            "Alerts dropped from the full delivery queue (the oldest of the lowest "
            "severity first), by severity: never sent.",
            "severity",
            ALERT_SEVERITIES,
            registry,
        )

    def alert_sent(self, receiver: str, outcome: str, seconds: float | None = None) -> None:
        """Record one alert message (`outcome`: one of ALERT_OUTCOMES)."""
        self.alerts_sent.labels(receiver=receiver, outcome=outcome).inc()
        if seconds is not None:
            self.alert_delivery_seconds.labels(receiver=receiver).observe(seconds)

    def alert_dropped(self, severity: str) -> None:
        """Record one alert dropped from the full delivery queue."""
        self.alerts_dropped.labels(severity=severity).inc()

    # -- exposition -------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        with self._lock:  # never half of one evaluation's gauge updates
            return generate_latest(self.registry), CONTENT_TYPE


def _position_of(key: str, policy: str) -> tuple[str, str]:
    """(position id, mode) from an escalation key: shadow policies key `position@policy`."""
    suffix = f"@{policy}"
    if policy and key.endswith(suffix):
        return key.removesuffix(suffix), "shadow"
    return key, "enforce"


def _breaker_labels(key: str) -> tuple[str, str, str]:
    """(breaker, subject, policy) from a state key `policy:breaker@scope:id`."""
    head, _, subject = key.partition("@")
    policy, _, breaker = head.partition(":")
    if not breaker:  # not the engine's shape: keep the whole key rather than lose it
        return head, subject, ""
    return breaker, subject, policy


def _labelled_counter(
    name: str, documentation: str, label: str, values: Sequence[str], registry: CollectorRegistry
) -> Counter:
    """A counter with one label whose every series exists from the start, at 0: a rate
    or an alert on a series that has never moved needs it to be there."""
    counter = Counter(name, documentation, [label], registry=registry)
    for value in values:
        counter.labels(value)
    return counter
