"""Delivery to one receiver, on its own thread: a hanging or failing receiver delays
no one else. Each receiver has a bounded outbox (a full one drops the oldest message,
counted as outcome="dropped"), a per-minute budget (a message over it is dropped,
outcome="throttled"), and retries with exponential backoff (outcome="failed" when they
run out). Measured: bastion_alerts_sent_total{receiver,outcome} and
bastion_alert_delivery_seconds{receiver} (from the alert raised to the message sent).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import structlog

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import Notification
from bastion.service.alerting.receivers.base import DeliveryFailed, Receiver

log = structlog.get_logger("bastion.alerts")

OUTBOX_SIZE = 100
MAX_BACKOFF_S = 30.0
ATTEMPT_GRACE_S = 1.0  # past timeout_s, before an attempt is abandoned


class DeliveryMetrics(Protocol):
    def alert_sent(self, receiver: str, outcome: str, seconds: float | None = None) -> None: ...

    def alert_dropped(self, severity: str) -> None: ...


class Budget:
    """At most `per_minute` messages in any 60 s (a sliding window)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()

    def take(self, now_s: float) -> bool:
        while self._sent and self._sent[0] <= now_s - 60.0:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            return False
        self._sent.append(now_s)
        return True


class ReceiverWorker:
    def __init__(
        self,
        config: ReceiverConfig,
        receiver: Receiver,
        metrics: DeliveryMetrics,
        clock: Callable[[], float] = time.monotonic,
        outbox_size: int = OUTBOX_SIZE,
    ) -> None:
        self.config, self.receiver, self.metrics, self.clock = config, receiver, metrics, clock
        self.outbox: deque[Notification] = deque()
        self.outbox_size = outbox_size
        self.budget = Budget(config.max_per_minute)
        self.busy = False  # a message is being sent now (tests and status read it)
        self._ready = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def offer(self, notification: Notification) -> None:
        """Queue a message; never blocks (a full outbox drops its oldest)."""
        with self._ready:
            if len(self.outbox) >= self.outbox_size:
                self.outbox.popleft()
                self.metrics.alert_sent(self.name, "dropped")
                log.warning("alert_outbox_full", receiver=self.name, size=self.outbox_size)
            self.outbox.append(notification)
            self._ready.notify()

    def deliver_next(self, wait_s: float | None = 0.0) -> bool:
        """Send the oldest queued message (retrying); False when there was none."""
        with self._ready:
            if not self.outbox and wait_s != 0.0 and not self._stop.is_set():
                self._ready.wait(wait_s)
            if not self.outbox:
                return False
            notification = self.outbox.popleft()
            self.busy = True
        try:
            self._deliver(notification)
        finally:
            self.busy = False
        return True

    def _deliver(self, notification: Notification) -> None:
        if not self.budget.take(self.clock()):
            self.metrics.alert_sent(self.name, "throttled")
            log.warning(
                "alert_throttled",
                receiver=self.name,
                title=notification.subject_line(),
                per_minute=self.config.max_per_minute,
            )
            return
        for attempt in range(self.config.retries + 1):
            try:
                self._attempt(notification)
            except DeliveryFailed as error:
                last = attempt == self.config.retries or not error.retry
                log.warning(
                    "alert_delivery_failed",
                    receiver=self.name,
                    attempt=attempt + 1,
                    error=str(error)[:500],
                    giving_up=last,
                )
                if last:
                    break
                delay = min(MAX_BACKOFF_S, self.config.backoff_s * 2**attempt)
                if self._stop.wait(delay):
                    break
            except Exception as error:  # a receiver's bug: counted, never kills the thread
                log.exception("alert_receiver_crashed", receiver=self.name, error=str(error))
                break
            else:
                seconds = max(0.0, self.clock() - notification.enqueued_at_s)
                self.metrics.alert_sent(self.name, "ok", seconds)
                log.info(
                    "alert_delivered",
                    receiver=self.name,
                    status=notification.status,
                    title=notification.subject_line(),
                    seconds=round(seconds, 3),
                )
                return
        self.metrics.alert_sent(self.name, "failed")
        log.error("alert_not_delivered", receiver=self.name, title=notification.subject_line())

    def _attempt(self, notification: Notification) -> None:
        """One send within timeout_s (and a second's grace): the receivers' own timeouts
        bound each socket operation, this bounds the whole attempt (a server that drips
        one byte a second, a receiver's bug). A send still stuck is abandoned on its
        daemon thread and counts as a failed attempt."""
        failure: list[BaseException] = []
        finished = threading.Event()

        def send() -> None:
            try:
                self.receiver.send(notification)
            except BaseException as error:  # handed to the worker's thread below
                failure.append(error)
            finally:
                finished.set()

        threading.Thread(target=send, name=f"bastion-alert-send-{self.name}", daemon=True).start()
        if not finished.wait(self.config.timeout_s + ATTEMPT_GRACE_S):
            raise DeliveryFailed(f"no answer within {self.config.timeout_s:g} s")
        if failure:
            raise failure[0]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"bastion-alerts-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)  # a hanging receiver: left behind (daemon)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.deliver_next(wait_s=1.0)
