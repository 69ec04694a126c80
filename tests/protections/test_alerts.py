"""A new lock of an enforce-mode policy raises a `history_locked` alert (warning)."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.state import State
from bastion.service.alerts import AlertRaised, Alerts
from tests.protections.conftest import LOSS_10, NOW, PolicyFactory, entry, snapshot, trade


class Sink:
    def __init__(self) -> None:
        self.sent: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.sent.append(alert)


def test_alerts_when_lock_made_then_history_locked_warning_unless_shadow(
    policies: PolicyFactory,
) -> None:
    """The cycle's `protection` decision becomes one alert naming the protection and the
    subject; the same decision in shadow mode raises none."""
    compiled = policies(entry("cooldown", lookback_s=3600, lock_s=1200))
    decisions, _ = evaluate(compiled, snapshot([trade("XRP", 10, LOSS_10)]), State(), NOW)
    sink = Sink()
    alerts = Alerts([sink], CollectorRegistry())
    alerts.from_decisions(NOW, decisions)
    (alert,) = sink.sent
    assert (alert.kind, alert.severity) == ("history_locked", "warning")
    assert alert.details == {"protection": "cooldown", "subject": "symbol:XRP"}
    alerts.from_decisions(NOW, [replace(d, mode="shadow") for d in decisions])
    assert len(sink.sent) == 1
