"""Alerts: critical breaker trips, failed evaluations and rejected reloads reach the sinks."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.alerts import AlertRaised, Alerts, LogAlerts
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES, ROOT

T0 = datetime(2026, 11, 20, 18, 45, tzinfo=UTC)


class Collect:
    def __init__(self) -> None:
        self.alerts: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.alerts.append(alert)


class Broken:
    def send(self, alert: AlertRaised) -> None:
        raise OSError("webhook down")


def _crash_day_decisions():  # type: ignore[no-untyped-def]
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    return decisions


def test_alerts_when_critical_breakers_trip_then_only_those_alert() -> None:
    """Critical and emergency trips alert; warning-severity trips do not."""
    sink, registry = Collect(), CollectorRegistry()
    Alerts([sink], registry).from_decisions(T0, _crash_day_decisions())
    kinds = {(a.kind, a.severity) for a in sink.alerts}
    assert kinds == {("breaker_tripped", "critical")}
    assert {a.details["breaker"] for a in sink.alerts} >= {"portfolio_loss", "daily_loss_usd"}
    assert "position_loss" not in {a.details["breaker"] for a in sink.alerts}  # a warning
    count = registry.get_sample_value(
        "bastion_alerts_total", {"kind": "breaker_tripped", "severity": "critical"}
    )
    assert count == len(sink.alerts)


def test_alerts_when_a_sink_fails_then_the_others_still_receive() -> None:
    """One broken sink never hides an alert from the rest."""
    sink = Collect()
    with capture_logs() as logs:
        Alerts([Broken(), sink], CollectorRegistry()).raise_alert(
            AlertRaised(T0, "evaluation_failed", "critical", "boom")
        )
    assert [a.summary for a in sink.alerts] == ["boom"]
    assert any(entry["event"] == "alert_sink_failed" for entry in logs)


def test_log_alerts_when_sent_then_alert_raised_event_at_error_level() -> None:
    """The shipped sink writes one structured alert_raised event."""
    with capture_logs() as logs:
        LogAlerts().send(AlertRaised(T0, "reload_rejected", "warning", "bad file"))
    assert logs == [
        {
            "event": "alert_raised",
            "log_level": "error",
            "kind": "reload_rejected",
            "severity": "warning",
            "summary": "bad file",
            "at": T0.isoformat(),
        }
    ]


def test_record_reload_when_rejected_then_alert_names_first_error(tmp_path: Path) -> None:
    """A rejected reload raises an alert that says which set still serves."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    feed = make_feed("sim", {}, wall=ManualClock(), speed=60.0, seed=7, environ={})
    sink = Collect()
    metrics = ServiceMetrics()
    holder: list[Service] = []
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder[0], event)
    )
    reloader.load_initial()
    holder.append(Service(feed, reloader, metrics, alerts=Alerts([sink], metrics.registry)))
    (policies / "roll.yaml").write_text("spec: [broken\n")
    reloader.reload("test")
    assert [a.kind for a in sink.alerts] == ["reload_rejected"]
    assert "still serving sha256:" in sink.alerts[0].summary
