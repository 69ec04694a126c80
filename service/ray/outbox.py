"""Alerts a partition raised, kept until the head collects them (`bastion serve --ray`).

A partition evaluates its own accounts, so the conditions it alerts (a breaker tripped
on one of its accounts, its state file failing to save, an evaluation that failed safe)
are its own: each is raised once, by the one partition that sees it. Delivery is the
head's (`head_alerts.HeadAlerts`): one set of silences, one --alerts policy routing,
grouping and deduplicating, one `bastion_alerts_total`. The partition's `Alerts` has
this outbox as its only sink; the head asks for what is new (`after`), and what it
asked past is dropped. The outbox is bounded: a head gone for long loses the oldest
(counted in `dropped`); a new actor has a new `incarnation`, so the head starts over.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from typing import Any

from bastion.service.alerts import AlertRaised, AlertResolved

OUTBOX_LIMIT = 10_000  # alerts kept for the head; beyond, the oldest go


class AlertOutbox:
    """An alert sink (`send`, `resolve`) that numbers and keeps what it is told."""

    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self.incarnation = uuid.uuid4().hex[:12]
        self.dropped = 0
        self._kept: deque[tuple[int, AlertRaised | AlertResolved]] = deque()
        self._limit = limit
        self._seq = 0
        self._lock = threading.Lock()

    def send(self, alert: AlertRaised) -> None:
        self._put(alert)

    def resolve(self, resolved: AlertResolved) -> None:
        self._put(resolved)

    def _put(self, event: AlertRaised | AlertResolved) -> None:
        with self._lock:
            self._seq += 1
            self._kept.append((self._seq, event))
            while len(self._kept) > self._limit:
                self._kept.popleft()
                self.dropped += 1

    def after(self, seq: int, incarnation: str | None = None) -> dict[str, Any]:
        """What came after `seq` (the last one the head took from `incarnation`); what
        is at or before it is dropped. Another incarnation: everything kept."""
        with self._lock:
            if incarnation == self.incarnation:
                while self._kept and self._kept[0][0] <= seq:
                    self._kept.popleft()
            events = list(self._kept)
            return {"incarnation": self.incarnation, "events": events, "dropped": self.dropped}
