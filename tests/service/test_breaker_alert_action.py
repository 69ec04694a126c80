"""`action: alert` breakers raise an alert at their own severity (service/alerts.py).

volume_anomaly (shipped: action alert, severity warning) once tripped without a word to
anyone: a warning is below the alerting severities, and nothing read the action.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from bastion.engine.decision import Decision
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import validate_snapshot
from bastion.engine.state import State
from bastion.service.alerts import AlertRaised, Alerts
from tests.conftest import POLICIES, ROOT

T0 = datetime(2026, 11, 20, 18, 45, tzinfo=UTC)


class Collect:
    def __init__(self) -> None:
        self.alerts: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.alerts.append(alert)


def _decisions(volume_multiple: int, volatility_multiple: int = 1) -> tuple[Decision, ...]:
    """The shipped policies on the calm snapshot with SPY's volume and volatility raised."""
    data = json.loads((ROOT / "examples" / "snapshots" / "calm.json").read_text())
    spy = data["market"]["SPY"]
    spy["volume"] = spy["avg_volume"] * volume_multiple
    spy["volatility"] = spy["normal_volatility"] * volatility_multiple
    snapshot = validate_snapshot(data)
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    try:
        decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    finally:
        compiled.close()
    return decisions


def test_alerts_when_alert_action_breaker_trips_then_alert_at_its_severity() -> None:
    """volume_anomaly trips on SPY: one breaker_tripped alert, severity warning."""
    sink = Collect()
    Alerts([sink], CollectorRegistry()).from_decisions(T0, _decisions(volume_multiple=6))
    assert [(a.kind, a.severity, a.details["breaker"]) for a in sink.alerts] == [
        ("breaker_tripped", "warning", "volume_anomaly")
    ]
    assert sink.alerts[0].details["subject"] == "symbol:SPY"


def test_alerts_when_warning_breaker_with_other_action_trips_then_no_alert() -> None:
    """volatility_spike (reduce_size, warning) trips: it restricts orders, it does not page."""
    sink = Collect()
    decisions = _decisions(volume_multiple=1, volatility_multiple=3)
    assert any(d.rule == "volatility_spike" and d.outcome == "trip" for d in decisions)
    Alerts([sink], CollectorRegistry()).from_decisions(T0, decisions)
    assert sink.alerts == []
