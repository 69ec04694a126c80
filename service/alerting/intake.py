"""The intake: a bounded queue between the evaluation and delivery. `put` never blocks
and never waits for a lock held by delivery for long: a full queue drops the oldest
alert of the lowest severity queued (or the new one, when it is the lowest), and says
what it dropped so that it is counted (`bastion_alerts_dropped_total{severity}`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import Literal

from bastion.service.alerting.model import SEVERITIES, SEVERITY_RANK, LabelledAlert


@dataclass(frozen=True, slots=True)
class Queued:
    seq: int
    event: Literal["raised", "resolved"]
    alert: LabelledAlert
    enqueued_s: float  # monotonic


class Intake:
    def __init__(self, max_alerts: int) -> None:
        self.max_alerts = max_alerts
        self._by_severity: dict[str, deque[Queued]] = {s: deque() for s in SEVERITIES}
        self._size = 0
        self._seq = count()
        self._ready = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        return self._size

    def put(
        self, event: Literal["raised", "resolved"], alert: LabelledAlert, now_s: float
    ) -> LabelledAlert | None:
        """Queue the event; the alert dropped to make room (maybe this one), or None."""
        severity = alert.severity if alert.severity in SEVERITY_RANK else "warning"
        item = Queued(next(self._seq), event, alert, now_s)
        with self._ready:
            dropped = None
            if self._size >= self.max_alerts:
                lowest = next(s for s in SEVERITIES if self._by_severity[s])
                if SEVERITY_RANK[lowest] > SEVERITY_RANK[severity]:
                    return alert  # everything queued matters more than this one
                dropped = self._by_severity[lowest].popleft().alert
                self._size -= 1
            self._by_severity[severity].append(item)
            self._size += 1
            self._ready.notify()
        return dropped

    def take_all(self, wait_s: float | None = 0.0) -> list[Queued]:
        """Everything queued, in the order it came; waits up to wait_s (None: until
        something comes) when the queue is empty."""
        with self._ready:
            if self._size == 0 and wait_s != 0.0:
                self._ready.wait(wait_s)
            items = [item for queue in self._by_severity.values() for item in queue]
            for queue in self._by_severity.values():
                queue.clear()
            self._size = 0
        return sorted(items, key=lambda item: item.seq)

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()
