"""A restart keeps a tripped breaker's alert firing: it is saved with the --state file,
told to the sinks again on start (a receiver such as Alertmanager forgets an alert
nobody posts again) and resolved when the breaker is reset after the restart."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import ARMED, BreakerState, State, StateError
from bastion.service.alerts import AlertRaised, AlertResolved, LogAlerts
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from bastion.service.state_store import StateStore
from tests.conftest import POLICIES, ROOT
from tests.service.http_support import default_logging  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ALICE = Principal("alice", Role.OPERATOR)


class Sink:
    """Every alert sent and every resolution told, in order."""

    def __init__(self) -> None:
        self.sent: list[AlertRaised] = []
        self.resolved: list[AlertResolved] = []

    def send(self, alert: AlertRaised) -> None:
        self.sent.append(alert)

    def resolve(self, resolved: AlertResolved) -> None:
        self.resolved.append(resolved)


def _service(store: StateStore | None) -> tuple[Service, Sink]:
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), store=store)
    sink = Sink()
    assert service.alerts is not None
    service.alerts.sinks = (LogAlerts(), sink)
    return service, sink


def _tripped(service: Service) -> list[AlertRaised]:
    """The crash day's real trips: the evaluation's state and its alerts, as a cycle
    leaves them in the service."""
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    decisions, state = evaluate(compiled, snapshot, State(), snapshot.as_of)
    compiled.close()
    service.state = state
    assert service.alerts is not None
    service.alerts.from_decisions(snapshot.as_of, decisions)
    firing = [a for a in service.alerts.firing() if a.kind == "breaker_tripped"]
    assert len(firing) >= 2, "the crash day trips critical breakers"
    return firing


def _breaker_key(alert: AlertRaised) -> str:
    d = alert.details
    return f"{d['policy']}:{d['breaker']}@{d['subject']}"


def test_restart_when_breakers_still_tripped_then_their_alerts_fire_again(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    first, _ = _service(store)
    firing = _tripped(first)
    assert first.save_state()
    saved = store.load()
    assert saved is not None
    assert len(saved.body["alerts_firing"]) == len(firing)

    restarted, sink = _service(None)
    with capture_logs() as logs:
        restarted.restore(saved.body)
    assert restarted.alerts is not None
    assert restarted.alerts.firing() == firing  # remembered: a later re-arm resolves them
    assert sink.sent == firing  # told again: Alertmanager keeps them firing
    assert [e["event"] for e in logs].count("alert_restored") == len(firing)
    registry = restarted.metrics.registry
    raised = registry.get_sample_value(
        "bastion_alerts_total", {"kind": "breaker_tripped", "severity": "critical"}
    )
    assert raised is None  # the same alerts: not counted again


def test_restart_when_a_breaker_is_reset_after_it_then_its_alert_is_resolved(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path / "state.json")
    first, _ = _service(store)
    firing = _tripped(first)
    assert first.save_state()
    saved = store.load()
    assert saved is not None
    restarted, sink = _service(None)
    restarted.restore(saved.body)
    alert = firing[0]
    reset = {
        "breaker": alert.details["breaker"],
        "subject": alert.details["subject"],
        "by": "alice",
        "reason": "loss booked, limits reviewed",
    }
    status, answer = restarted.reset_breaker(json.dumps(reset).encode(), ALICE)
    assert status == 202, answer
    restarted.cycle()  # the reset is applied by the next cycle
    assert [(r.kind, r.details["breaker"], r.details["subject"]) for r in sink.resolved] == [
        ("breaker_tripped", alert.details["breaker"], alert.details["subject"])
    ]
    assert alert not in restarted.alerts.firing()  # type: ignore[union-attr]


def test_restart_when_a_breaker_re_armed_before_the_save_then_nothing_is_restored(
    tmp_path: Path,
) -> None:
    """Only a condition that still holds fires again: a saved alert whose breaker the
    state holds armed (or does not hold) is dropped."""
    store = StateStore(tmp_path / "state.json")
    first, _ = _service(store)
    firing = _tripped(first)
    armed = {_breaker_key(firing[0]): BreakerState(ARMED)}
    gone = _breaker_key(firing[1])
    breakers = {k: v for k, v in first.state.breakers.items() if k != gone} | armed
    first.state = replace(first.state, breakers=breakers)
    assert first.save_state()
    saved = store.load()
    assert saved is not None
    restarted, sink = _service(None)
    restarted.restore(saved.body)
    assert sink.sent == firing[2:]
    assert restarted.alerts.firing() == firing[2:]  # type: ignore[union-attr]


def test_restart_when_the_state_file_has_no_alert_record_then_it_starts_as_before(
    tmp_path: Path,
) -> None:
    """A file written before alerts were saved (no `alerts_firing`) still loads."""
    store = StateStore(tmp_path / "state.json")
    first, _ = _service(store)
    _tripped(first)
    body = first.state_payload()
    del body["alerts_firing"]
    restarted, sink = _service(None)
    restarted.restore(body)
    assert sink.sent == []
    assert restarted.state.breakers == first.state.breakers


def test_restart_when_the_alert_record_is_malformed_then_the_state_file_is_refused(
    tmp_path: Path,
) -> None:
    """A broken record is a broken state file (StateError: `bastion serve` exits 2
    naming the file), never silently an alert less."""
    first, _ = _service(StateStore(tmp_path / "state.json"))
    _tripped(first)
    body = first.state_payload()
    body["alerts_firing"][0] = {**body["alerts_firing"][0], "at": "yesterday"}
    restarted, _ = _service(None)
    with pytest.raises(StateError, match="not a `bastion serve` state file"):
        restarted.restore(body)
