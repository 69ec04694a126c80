"""Alerts: the things a person must look at now, as past-tense immutable events.

A sink receives every `AlertRaised`. The service ships `LogAlerts` (an `alert_raised`
event at error level, which log shippers route to on-call) and counts every alert in
`bastion_alerts_total{kind,severity}`; webhook and e-mail sinks implement the same
`AlertSink` protocol. Raised for: a rejected policy reload, a breaker trip of severity
critical or emergency or of a breaker whose action is `alert` (at its own severity), an
evaluation that failed safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter

from bastion.engine.decision import Decision

log = structlog.get_logger("bastion.alerts")

ALERTING_SEVERITIES = frozenset({"critical", "emergency"})
ALERT_ACTION = "alert"  # a breaker whose trip is an alert at any severity


@dataclass(frozen=True, slots=True)
class AlertRaised:
    at: datetime
    kind: str  # reload_rejected | breaker_tripped | evaluation_failed | history_locked | ...
    severity: str  # warning | critical | emergency
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


class AlertSink(Protocol):
    def send(self, alert: AlertRaised) -> None: ...


class LogAlerts:
    """Every alert as one structured `alert_raised` log event at error level."""

    def send(self, alert: AlertRaised) -> None:
        log.error(
            "alert_raised",
            kind=alert.kind,
            severity=alert.severity,
            summary=alert.summary,
            at=alert.at.isoformat(),
            **dict(alert.details),
        )


class Alerts:
    """Fans alerts out to the sinks; a failing sink never stops the others."""

    def __init__(self, sinks: Sequence[AlertSink], registry: CollectorRegistry) -> None:
        self.sinks = tuple(sinks)
        self._count = Counter(
            "bastion_alerts",
            "Alerts raised, by kind and severity.",
            ["kind", "severity"],
            registry=registry,
        )

    def raise_alert(self, alert: AlertRaised) -> None:
        self._count.labels(alert.kind, alert.severity).inc()
        for sink in self.sinks:
            try:
                sink.send(alert)
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
                        {"breaker": decision.rule, "subject": decision.subject.label()},
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
