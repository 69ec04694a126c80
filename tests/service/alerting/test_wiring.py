"""The service's side: trips raise and re-arms resolve (only what was raised), a write
that works again resolves its alert, and `--alerts` wires delivery that runs on its own
threads — a critical trip reaches a loopback webhook, measured in the metrics."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bastion.adapters.sources import ManualClock
from bastion.cli.main import main
from bastion.engine.decision import Subject
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.alerting.dispatcher import AlertDispatcher
from bastion.service.alerting.wiring import open_alerts
from bastion.service.alerts import AlertRaised, AlertResolved, Alerts
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES, ROOT
from tests.service.alerting.support import T0, Clock, Hanging, Metrics, Recording, log_policy, trip


class Sink:
    def __init__(self) -> None:
        self.events: list[AlertRaised | AlertResolved] = []

    def send(self, alert: AlertRaised) -> None:
        self.events.append(alert)

    def resolve(self, resolved: AlertResolved) -> None:
        self.events.append(resolved)


def _crash_day_trips():  # type: ignore[no-untyped-def]
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    return [d for d in decisions if d.kind == "breaker" and d.outcome == "trip"]


def test_alerts_when_a_tripped_breaker_rearms_then_resolved_once() -> None:
    """A critical trip raises; its rearm resolves it (same breaker and subject); a rearm
    of a breaker that never alerted (a warning) resolves nothing."""
    trips = _crash_day_trips()
    critical = next(d for d in trips if dict(d.details)["severity"] == "critical")
    warning = next(d for d in trips if dict(d.details)["severity"] == "warning")
    sink = Sink()
    alerts = Alerts([sink], CollectorRegistry())
    alerts.from_decisions(T0, [critical, warning])
    rearms = [replace(d, outcome="rearm", actions=(), reasons=("cooldown elapsed",))
              for d in (critical, warning)]  # fmt: skip
    alerts.from_decisions(T0, rearms)
    alerts.from_decisions(T0, rearms)  # said twice: resolved once
    assert [type(e).__name__ for e in sink.events] == ["AlertRaised", "AlertResolved"]
    raised, resolved = sink.events
    assert resolved.details == raised.details and raised.details["breaker"] == critical.rule
    assert alerts.firing() == []


def test_open_alerts_when_webhook_configured_then_critical_trip_delivered_off_thread(
    tmp_path: Path,
) -> None:
    """--alerts with a webhook on loopback: raise_alert returns at once, the dispatcher's
    threads deliver (critical: group wait 1 s), sent_total{outcome="ok"} and the
    delivery histogram count it."""
    arrived = threading.Event()
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "apiVersion: bastion/v1\nkind: AlertPolicy\nmetadata: {name: t}\nspec:\n"
        "  receivers:\n    - {name: hook, type: webhook, url_env: TEST_HOOK_URL}\n"
        "  routes:\n    - {receivers: [hook], group_wait_s: 30}\n"
    )
    metrics = ServiceMetrics(CollectorRegistry())
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    alerts, dispatcher = open_alerts(path, metrics, lambda: T0, {"TEST_HOOK_URL": url})
    assert dispatcher is not None
    dispatcher.start()
    try:
        alerts.raise_alert(trip(severity="critical"))
        assert arrived.wait(10)  # bounded wait for the threads; the 1 s is the config's
    finally:
        dispatcher.stop()
        server.shutdown()
        server.server_close()
    assert bodies[0]["status"] == "firing" and bodies[0]["alerts"][0]["labels"]["breaker"]
    sample = metrics.registry.get_sample_value
    assert sample("bastion_alerts_sent_total", {"receiver": "hook", "outcome": "ok"}) == 1
    assert sample("bastion_alert_delivery_seconds_count", {"receiver": "hook"}) == 1


def test_serve_when_alerts_file_names_an_unset_variable_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bastion serve --alerts FILE` refuses to start (exit 2) naming the variable."""
    monkeypatch.delenv("TEST_UNSET_SLACK_URL", raising=False)
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "apiVersion: bastion/v1\nkind: AlertPolicy\nmetadata: {name: t}\nspec:\n"
        "  receivers:\n    - {name: chat, type: slack, url_env: TEST_UNSET_SLACK_URL}\n"
        "  routes:\n    - {receivers: [chat]}\n"
    )
    code = main(["serve", "--once", "--no-audit", "--alerts", str(path)])
    assert code == 2
    assert "TEST_UNSET_SLACK_URL is not set" in capsys.readouterr().err


def test_record_reload_when_a_reload_works_after_a_rejection_then_rejection_resolved(
    tmp_path: Path,
) -> None:
    """A rejected reload raises reload_rejected; the next reload that works resolves it."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    feed = make_feed("sim", {}, wall=ManualClock(), speed=60.0, seed=7, environ={})
    sink, metrics, holder = Sink(), ServiceMetrics(), []
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder[0], event)
    )
    reloader.load_initial()
    holder.append(Service(feed, reloader, metrics, alerts=Alerts([sink], metrics.registry)))
    good = (policies / "roll.yaml").read_text()
    (policies / "roll.yaml").write_text("spec: [broken\n")
    reloader.reload("test")
    (policies / "roll.yaml").write_text(good + "\n# reviewed\n")
    reloader.reload("test")
    assert [(type(e).__name__, e.kind) for e in sink.events] == [
        ("AlertRaised", "reload_rejected"),
        ("AlertResolved", "reload_rejected"),
    ]
    assert holder[0].alerts.firing() == []  # type: ignore[union-attr]


def test_storm_when_1000_trip_decisions_then_one_message_per_group_while_a_receiver_hangs() -> None:
    """The cycle's path (Alerts.from_decisions) with 1,000 critical trips in one cycle,
    one receiver hanging on its own thread: from_decisions returns with everything
    queued, the healthy receiver gets one message per (kind, breaker) group, and the
    hanging one holds one message in hand and the rest in its bounded outbox."""
    critical = next(d for d in _crash_day_trips() if dict(d.details)["severity"] == "critical")
    decisions = [
        replace(critical, rule=f"breaker_{i % 5}",
                subject=Subject("account", f"acct-{i}", account_id=f"acct-{i}"))
        for i in range(1000)
    ]  # fmt: skip
    clock, metrics = Clock(), Metrics()
    hanging, healthy = Hanging("a"), Recording("b")
    dispatcher = AlertDispatcher(
        log_policy(group_by=["kind", "breaker"]), metrics, clock=clock,
        receivers={"a": hanging, "b": healthy},
    )  # fmt: skip
    dispatcher.workers["a"].start()
    try:
        Alerts([dispatcher], CollectorRegistry()).from_decisions(T0, decisions)
        assert len(dispatcher.intake) == 1000
        clock.advance(1.0)
        assert dispatcher.pump() == 10  # 5 groups x 2 receivers
        assert hanging.entered.wait(5)
        while dispatcher.workers["b"].deliver_next():
            pass
        assert sorted(len(n.firing) for n in healthy.sent) == [200] * 5
        assert len(dispatcher.workers["a"].outbox) == 4 and dispatcher.workers["a"].busy
    finally:
        hanging.release.set()
        dispatcher.workers["a"].stop()
