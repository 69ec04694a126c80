"""The alert sink of `bastion serve --alerts FILE`: takes alerts off the evaluation path
and delivers them.

    Alerts.raise_alert / resolve  (the cycle's thread: never blocks)
      -> Intake (bounded; a full one drops the oldest lowest-severity alert, counted)
      -> the dispatcher thread: silences, routes, groups (service.alerting.grouping)
      -> one ReceiverWorker per receiver (its own thread, outbox, budget, retries)

`pump(now_s)` is one step of the dispatcher thread: tests call it with a fake clock
(`start()` is not called then) and `ReceiverWorker.deliver_next()` to send.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from bastion.service.alerting.config import AlertPolicy
from bastion.service.alerting.delivery import DeliveryMetrics, ReceiverWorker
from bastion.service.alerting.grouping import Grouper
from bastion.service.alerting.intake import Intake
from bastion.service.alerting.model import LabelledAlert, fingerprint, labelled, labels_of
from bastion.service.alerting.receivers import Receiver, build_receiver
from bastion.service.alerts import AlertRaised, AlertResolved, SilenceCheck

log = structlog.get_logger("bastion.alerts")

_IDLE_WAIT_S = 1.0  # the dispatcher thread wakes at least this often


class AlertDispatcher:
    def __init__(
        self,
        policy: AlertPolicy,
        metrics: DeliveryMetrics,
        silences: SilenceCheck | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        receivers: Mapping[str, Receiver] | None = None,
    ) -> None:
        self.policy, self.metrics, self.silences, self.clock = policy, metrics, silences, clock
        built = dict(receivers or {})
        for config in policy.receivers:
            built.setdefault(config.name, build_receiver(config))
        self.workers = {
            config.name: ReceiverWorker(config, built[config.name], metrics, clock)
            for config in policy.receivers
        }
        self.grouper = Grouper(policy, {n: r.repeat_cap_s for n, r in built.items()})
        self.intake = Intake(policy.queue_size)
        self._lock = threading.Lock()  # one pump at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the AlertSink side: the cycle's thread --------------------------------------------

    def send(self, alert: AlertRaised) -> None:
        self._put("raised", labelled(alert))

    def resolve(self, resolved: AlertResolved) -> None:
        labels = labels_of(resolved)
        alert = LabelledAlert(
            fingerprint(labels, resolved.summary),
            labels,
            resolved.summary,
            resolved.at,
            resolved.at,
        )
        self._put("resolved", alert)

    def _put(self, event: Any, alert: LabelledAlert) -> None:
        dropped = self.intake.put(event, alert, self.clock())
        if dropped is not None:
            self.metrics.alert_dropped(dropped.severity)
            log.warning(
                "alert_dropped",
                reason="queue_full",
                kind=dropped.labels.get("kind"),
                severity=dropped.severity,
                queue_size=self.intake.max_alerts,
            )

    # -- the dispatcher thread --------------------------------------------------------------

    def pump(
        self, now_s: float | None = None, wait_s: float | None = 0.0, *, final: bool = False
    ) -> int:
        """Route what came in, hand the messages due to the receivers' outboxes; the
        number of messages handed over. `final`: at stop, changes only (no repeats)."""
        items = self.intake.take_all(wait_s)
        with self._lock:
            now = self.clock() if now_s is None else now_s
            for item in items:
                if item.event == "raised":
                    self.grouper.add(item.alert, item.enqueued_s)
                else:
                    assert item.alert.ends_at is not None
                    self.grouper.resolve(item.alert.fingerprint, item.alert.ends_at, now)
            silenced = self.silences.silencing if self.silences is not None else None
            due = self.grouper.due(now, silenced, repeats=not final)
        for notification in due:
            self.workers[notification.receiver].offer(notification)
        return len(due)

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()
        self._thread = threading.Thread(target=self._run, name="bastion-alerts", daemon=True)
        self._thread.start()
        log.info(
            "alert_delivery_started",
            policy=self.policy.name,
            source=self.policy.source,
            receivers=sorted(self.workers),
        )

    def stop(self, timeout_s: float = 3.0) -> None:
        """Send what the groups hold now (their waits cut short), give the receivers up
        to `timeout_s` to send it, then stop (a receiver still hanging is left behind:
        its thread is a daemon)."""
        self._stop.set()
        self.intake.wake()
        if self._thread is None:
            return
        self._thread.join(1.0)
        self.pump(now_s=math.inf, final=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
            w.outbox or w.busy for w in self.workers.values()
        ):
            time.sleep(0.02)
        for worker in self.workers.values():
            worker.stop(0.1)
        log.info("alert_delivery_stopped", policy=self.policy.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            next_due = self.grouper.next_due_s()
            wait = _IDLE_WAIT_S if next_due is None else next_due - self.clock()
            try:
                self.pump(wait_s=min(_IDLE_WAIT_S, max(0.001, wait)))
            except Exception:  # never let delivery die silently
                log.exception("alert_dispatch_failed")

    def status(self) -> dict[str, Any]:
        """For GET /api/v1/status: the file, queue, groups and each receiver's outbox."""
        return {
            "policy": self.policy.name,
            "source": self.policy.source,
            "queued": len(self.intake),
            "groups": len(self.grouper.groups),
            "receivers": {
                name: {"type": w.config.type, "outbox": len(w.outbox), "sending": w.busy}
                for name, w in sorted(self.workers.items())
            },
        }
