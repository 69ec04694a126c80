"""The recent past the status page shows, kept in memory and bounded.

`Activity` is told of every cycle (`cycle_done`: its decisions, and the value each
breaker tripped at), every alert raised and resolved (it is one of the alert sinks:
`send`, `resolve`; a silenced alert never reaches the sinks) and every reload, accepted
or refused (`reloaded`). Nothing here is persisted: after a restart the page starts
empty, and the audit trail keeps the full history. Thread-safe: cycles, reloads and
HTTP requests arrive on different threads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from bastion.engine.decision import Decision
from bastion.service.alerts import AlertRaised, AlertResolved
from bastion.service.reloader import PolicyReloaded, ReloadRejected

if TYPE_CHECKING:
    from bastion.service.runner import Cycle

log = structlog.get_logger("bastion.service")

KEEP_DECISIONS = 50
KEEP_ALERTS = 50
KEEP_RELOADS = 20
KEEP_TRIPS = 1000  # breaker keys whose trip value is remembered


@dataclass(frozen=True, slots=True)
class TripSeen:
    """The values a breaker tripped at (its decision's inputs), and when."""

    at: datetime
    values: tuple[tuple[str, str], ...]
    decision_id: str
    reason: str


class Activity:
    """Recent decisions, trips, alerts and reloads; the newest last in each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions: deque[tuple[int, Decision]] = deque(maxlen=KEEP_DECISIONS)
        self._alerts: deque[AlertRaised | AlertResolved] = deque(maxlen=KEEP_ALERTS)
        self._reloads: deque[dict[str, Any]] = deque(maxlen=KEEP_RELOADS)
        self._trips: dict[str, TripSeen] = {}  # by state key "policy:breaker@scope:id"

    def watch(self, alerts: object) -> None:
        """Become one of the sinks of the service's alert fan-out (`Alerts.sinks`)."""
        sinks = getattr(alerts, "sinks", None)
        if isinstance(sinks, tuple) and self not in sinks:
            alerts.sinks = (*sinks, self)  # type: ignore[attr-defined]
        elif sinks is None:
            log.warning("status_page_alerts_unseen", alerts=type(alerts).__name__)

    # -- told by the service ---------------------------------------------------------

    def cycle_done(self, cycle: Cycle) -> None:
        with self._lock:
            for decision in cycle.decisions:
                self._decisions.append((cycle.number, decision))
                if decision.kind == "breaker" and decision.outcome == "trip":
                    key = f"{decision.policy}:{decision.rule}@{decision.subject.label()}"
                    self._trips.pop(key, None)  # re-inserted: the newest last
                    self._trips[key] = TripSeen(
                        decision.time,
                        decision.inputs,
                        decision.id,
                        decision.reasons[0] if decision.reasons else "",
                    )
            while len(self._trips) > KEEP_TRIPS:
                del self._trips[next(iter(self._trips))]

    def send(self, alert: AlertRaised) -> None:
        """An alert was raised and not silenced (the AlertSink protocol)."""
        with self._lock:
            self._alerts.append(alert)

    def resolve(self, resolved: AlertResolved) -> None:
        """The condition of an alert raised before has cleared."""
        with self._lock:
            self._alerts.append(resolved)

    def reloaded(self, event: PolicyReloaded | ReloadRejected) -> None:
        """A reload was accepted or refused (`reload_events.record_reload`)."""
        if isinstance(event, ReloadRejected):
            entry: dict[str, Any] = {
                "at": event.at.isoformat(),
                "outcome": "refused" if event.refused_by_guard else "rejected",
                "version": event.kept_version,
                "errors": list(event.errors)[:5],
            }
        else:
            entry = {
                "at": event.at.isoformat(),
                "outcome": "reloaded",
                "version": event.version,
                "previous_version": event.previous_version,
                "changed": list(event.changed),
            }
        entry["trigger"] = event.trigger
        entry["principal"] = event.principal
        with self._lock:
            self._reloads.append(entry)

    # -- read by the page ------------------------------------------------------------

    def decisions(self) -> list[tuple[int, Decision]]:
        with self._lock:
            return list(self._decisions)

    def alerts(self) -> list[AlertRaised | AlertResolved]:
        with self._lock:
            return list(self._alerts)

    def reloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._reloads)

    def trip(self, key: str) -> TripSeen | None:
        with self._lock:
            return self._trips.get(key)
