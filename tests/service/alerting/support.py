"""What the alerting tests share: a policy from a dict, a fake clock, recording metrics
and receivers, alerts of each kind."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bastion.service.alerting.config import AlertPolicy, build_policy
from bastion.service.alerting.model import Notification
from bastion.service.alerting.receivers.base import DeliveryFailed
from bastion.service.alerts import AlertRaised, AlertResolved

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def policy(
    receivers: list[dict[str, Any]], routes: list[dict[str, Any]], **spec: Any
) -> AlertPolicy:
    document = {
        "apiVersion": "bastion/v1",
        "kind": "AlertPolicy",
        "metadata": {"name": "test-alerts"},
        "spec": {"receivers": receivers, "routes": routes, **spec},
    }
    return build_policy(document, "test.yaml", {})


def log_policy(**route: Any) -> AlertPolicy:
    """Two log receivers (a, b) on one route taking everything."""
    return policy(
        [{"name": "a", "type": "log"}, {"name": "b", "type": "log"}],
        [{"receivers": ["a", "b"], **route}],
    )


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Metrics:
    sent: list[tuple[str, str, float | None]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def alert_sent(self, receiver: str, outcome: str, seconds: float | None = None) -> None:
        self.sent.append((receiver, outcome, seconds))

    def alert_dropped(self, severity: str) -> None:
        self.dropped.append(severity)

    def outcomes(self, receiver: str) -> list[str]:
        return [outcome for name, outcome, _ in self.sent if name == receiver]


class Recording:
    """A receiver that keeps what it is sent (and fails the first `fail` times)."""

    repeat_cap_s: float | None = None

    def __init__(self, name: str, fail: int = 0) -> None:
        self.name, self.fail = name, fail
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryFailed("connection refused")
        self.sent.append(notification)


class Hanging:
    """A receiver whose send blocks until released (a server that never answers)."""

    repeat_cap_s: float | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, notification: Notification) -> None:
        self.entered.set()
        self.release.wait(10)


def trip(
    breaker: str = "daily_loss_usd", account: str = "gen-01", severity: str = "critical"
) -> AlertRaised:
    return AlertRaised(
        T0,
        "breaker_tripped",
        severity,
        f"{breaker} holds for account:{account}",
        {
            "breaker": breaker,
            "subject": f"account:{account}",
            "policy": "default-breakers",
            "account": account,
        },
    )


def rearm(breaker: str = "daily_loss_usd", account: str = "gen-01") -> AlertResolved:
    return AlertResolved(
        T0,
        "breaker_tripped",
        "critical",
        "cooldown of 900 s elapsed",
        {
            "breaker": breaker,
            "subject": f"account:{account}",
            "policy": "default-breakers",
            "account": account,
        },
    )
