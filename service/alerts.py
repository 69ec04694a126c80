"""Alerts: the things a person must look at now, as past-tense immutable events.

A sink receives every `AlertRaised`, and an `AlertResolved` when its condition clears
(a sink without `resolve` is not told). The service ships `LogAlerts` (an
`alert_raised` event at error level, which log shippers route to on-call) and counts
every alert in `bastion_alerts_total{kind,severity}`; `bastion serve --alerts FILE`
adds the delivery of service.alerting (webhook, Slack, e-mail, Alertmanager: routed,
grouped, deduplicated, throttled, off the evaluation path). Raised for: a rejected
policy reload, a breaker trip of severity critical or emergency or of a breaker whose
action is `alert` (at its own severity), an evaluation that failed safe, a failed
write. Resolved: a breaker that re-arms or is reset, a write that works again, a
reload that succeeds (the rejections before it).

Silences (POST /api/v1/silences) hold back the alerts they match: counted in
`bastion_alerts_silenced_total{kind}`, logged as `alert_silenced`, sent nowhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter

from bastion.engine.decision import Decision
from bastion.service.alerting.model import CONDITION_KINDS, fingerprint, labels_of

log = structlog.get_logger("bastion.alerts")

ALERTING_SEVERITIES = frozenset({"critical", "emergency"})
ALERT_ACTION = "alert"  # a breaker whose trip is an alert at any severity
_MAX_FIRING = 10_000  # alerts remembered as firing (to resolve them); the oldest go first


@dataclass(frozen=True, slots=True)
class AlertRaised:
    at: datetime
    kind: str  # reload_rejected | breaker_tripped | evaluation_failed | history_locked | ...
    severity: str  # warning | critical | emergency
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As the --state file keeps a condition still firing (runner.state_payload)."""
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRaised:
        """Raises KeyError, TypeError or ValueError when ``data`` is not :meth:`to_dict`'s."""
        at = datetime.fromisoformat(str(data["at"]))
        if at.utcoffset() is None:
            raise ValueError(f"alert time {data['at']!r} has no UTC offset")
        details = data.get("details", {})
        if not isinstance(details, Mapping):
            raise TypeError(f"alert details must be an object, not {type(details).__name__}")
        return cls(at, str(data["kind"]), str(data["severity"]), str(data["summary"]), details)


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """The condition of an alert raised before has cleared: same kind and identity
    details (breaker, subject, policy, what) as the `AlertRaised` it ends."""

    at: datetime
    kind: str
    severity: str
    summary: str  # why it cleared
    details: Mapping[str, Any] = field(default_factory=dict)


class AlertSink(Protocol):
    def send(self, alert: AlertRaised) -> None: ...


class SilenceCheck(Protocol):
    def silencing(self, labels: Mapping[str, str]) -> str | None: ...


class LogAlerts:
    """Every alert as one structured `alert_raised` log event at error level, and every
    resolution as `alert_resolved` at warning level."""

    def send(self, alert: AlertRaised) -> None:
        log.error(
            "alert_raised",
            kind=alert.kind,
            severity=alert.severity,
            summary=alert.summary,
            at=alert.at.isoformat(),
            **dict(alert.details),
        )

    def resolve(self, resolved: AlertResolved) -> None:
        log.warning(
            "alert_resolved",
            kind=resolved.kind,
            severity=resolved.severity,
            summary=resolved.summary,
            at=resolved.at.isoformat(),
            **dict(resolved.details),
        )


class Alerts:
    """Fans alerts out to the sinks; a failing sink never stops the others."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        registry: CollectorRegistry,
        silences: SilenceCheck | None = None,
    ) -> None:
        self.sinks = tuple(sinks)
        self.silences = silences
        self._count = Counter(
            "bastion_alerts",
            "Alerts raised, by kind and severity.",
            ["kind", "severity"],
            registry=registry,
        )
        self._silenced = Counter(
            "bastion_alerts_silenced",
            "Alerts raised that a silence (POST /api/v1/silences) held back, by kind.",
            ["kind"],
            registry=registry,
        )
        self._firing: dict[str, AlertRaised] = {}
        self._firing_lock = threading.Lock()

    def raise_alert(self, alert: AlertRaised) -> None:
        self._count.labels(alert.kind, alert.severity).inc()
        if alert.kind in CONDITION_KINDS:  # resolved later: remembered until then
            self._remember(alert)
        self._send_unless_silenced(alert)

    def restore_firing(self, raised: Sequence[AlertRaised]) -> None:
        """Conditions a previous run alerted and never resolved, that still hold (a
        breaker still tripped in the restored state): remembered as firing, so that
        their clearing is told, and told to the sinks again — a receiver such as
        Alertmanager forgets a firing alert that nobody posts again, so a restart must
        not turn a tripped breaker's alert into a silent "resolved". Silences apply as
        to any alert; not counted again in `bastion_alerts_total` (the same alert)."""
        for alert in raised:
            self._remember(alert)
            log.warning(
                "alert_restored", kind=alert.kind, severity=alert.severity, summary=alert.summary
            )
            self._send_unless_silenced(alert)

    def _remember(self, alert: AlertRaised) -> None:
        with self._firing_lock:
            self._firing.pop(key := fingerprint(labels_of(alert), alert.summary), None)
            self._firing[key] = alert
            while len(self._firing) > _MAX_FIRING:
                del self._firing[next(iter(self._firing))]

    def _send_unless_silenced(self, alert: AlertRaised) -> None:
        labels = labels_of(alert)
        silence = self.silences.silencing(labels) if self.silences is not None else None
        if silence is not None:
            self._silenced.labels(alert.kind).inc()
            log.info("alert_silenced", kind=alert.kind, silence=silence, summary=alert.summary)
            return
        self._each_sink("send", alert)

    def resolve(self, resolved: AlertResolved) -> None:
        """Tell the sinks that can hear it, if that alert was raised (else nothing)."""
        key = fingerprint(labels_of(resolved), resolved.summary)
        with self._firing_lock:
            raised = self._firing.pop(key, None)
        if raised is None:
            return
        self._each_sink("resolve", resolved)

    def resolve_kind(self, kind: str, at: datetime) -> None:
        """Resolve every alert of `kind` raised and not resolved (a reload that works
        ends the rejections before it). Each keeps its summary: that names it."""
        with self._firing_lock:
            raised = [alert for alert in self._firing.values() if alert.kind == kind]
        for alert in raised:
            self.resolve(AlertResolved(at, kind, alert.severity, alert.summary, alert.details))

    def firing(self) -> list[AlertRaised]:
        """The conditions alerted and not resolved, oldest first."""
        with self._firing_lock:
            return list(self._firing.values())

    def _each_sink(self, method: str, event: AlertRaised | AlertResolved) -> None:
        for sink in self.sinks:
            deliver: Callable[[Any], None] | None = getattr(sink, method, None)
            if deliver is None:
                continue
            try:
                deliver(event)
            except Exception as error:
                log.error("alert_sink_failed", sink=type(sink).__name__, error=str(error))

    def from_decisions(self, at: datetime, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            severity = dict(decision.details).get("severity", "")
            if (
                decision.kind == "breaker"
                and decision.outcome == "trip"
                and decision.mode == "enforce"
                # `action: alert` is a request to alert, whatever its severity says.
                and (severity in ALERTING_SEVERITIES or ALERT_ACTION in decision.actions)
            ):
                self.raise_alert(
                    AlertRaised(
                        at,
                        "breaker_tripped",
                        str(severity),
                        decision.reasons[0],
                        _breaker_details(decision),
                    )
                )
            elif (
                decision.kind == "breaker"
                and decision.outcome in ("rearm", "reset")
                and decision.mode == "enforce"
            ):  # the trip's condition cleared (or an operator took it): resolved
                self.resolve(
                    AlertResolved(
                        at,
                        "breaker_tripped",
                        str(severity),
                        decision.reasons[0] if decision.reasons else decision.outcome,
                        _breaker_details(decision),
                    )
                )
            elif decision.kind == "evaluation":
                self.raise_alert(
                    AlertRaised(at, "evaluation_failed", "critical", decision.reasons[0])
                )
            elif (
                decision.kind == "protection"
                and decision.outcome == "locked"
                and decision.mode == "enforce"
            ):
                self.raise_alert(  # a history protection locked new risk (PLAYBOOKS)
                    AlertRaised(
                        at,
                        "history_locked",
                        "warning",
                        decision.reasons[0],
                        {"protection": decision.rule, "subject": decision.subject.label()},
                    )
                )


def _breaker_details(decision: Decision) -> dict[str, Any]:
    """What names a breaker alert (and routes it): breaker, subject, policy, account."""
    details = {
        "breaker": decision.rule,
        "subject": decision.subject.label(),
        "policy": decision.policy,
    }
    subject = decision.subject
    account = subject.account_id or (subject.id if subject.scope == "account" else None)
    if account:
        details["account"] = account
    return details


def utc_now() -> datetime:
    return datetime.now(UTC)
