"""Durable state, loud failures: what the service saves before it answers, and what a
failed save does (in process; `test_persist_serve` runs the real `bastion serve`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.engine.state import TRIPPED, BreakerState, StateError
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from bastion.service.scheduler import CycleScheduler
from bastion.service.state_store import StateSaveFailed, StateStore
from tests.conftest import POLICIES
from tests.service.http_support import default_logging  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
OPEN = {"account_id": "gen-01", "symbol": "ETH-USD", "action": "open", "target_size": "0.1"}
BREAKER_KEY = "default-breakers:portfolio_loss@account:gen-01"
RESET = {
    "breaker": "portfolio_loss",
    "subject": "account:gen-01",
    "by": "alice",
    "reason": "loss booked, limits reviewed",
}
ALICE = Principal("alice", Role.OPERATOR)


@dataclass
class FlakyStore(StateStore):
    """A real store that fails every save while `failing` (a full disk, in process)."""

    failing: bool = False

    def save(self, body: Mapping[str, Any]) -> None:
        if self.failing:
            raise StateSaveFailed(f"{self.path}: No space left on device (errno 28)")
        StateStore.save(self, body)


def _service(store: StateStore | None) -> Service:
    """The sim service, one cycle run (ready), a breaker tripped for gen-01 to reset."""
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), store=store)
    service.cycle()
    tripped = {**service.state.breakers, BREAKER_KEY: BreakerState(TRIPPED, tripped_at=START)}
    service.state = replace(service.state, breakers=tripped)
    return service


@pytest.fixture
def store(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "state.json")


def _failures(service: Service, what: str) -> float:
    text = service.metrics.render()[0].decode()
    line = next(
        x
        for x in text.splitlines()
        if x.startswith(f'bastion_persist_failures_total{{what="{what}"}}')
    )
    return float(line.split()[-1])


def _reset(service: Service, body: dict[str, Any], principal: Principal | None = None) -> Any:
    raw = json.dumps(body).encode()
    return (
        service.reset_breaker(raw) if principal is None else service.reset_breaker(raw, principal)
    )


def test_report_when_answered_then_already_in_the_state_file(store: FlakyStore) -> None:
    """The report is on disk before the answer: a kill -9 right after loses nothing."""
    service = _service(store)
    status, answer = service.report_order(json.dumps({**OPEN, "order_id": "A-1"}).encode())
    assert status == 200
    loaded = StateStore(store.path).load()
    assert loaded is not None
    assert [o["order_id"] for o in loaded.body["orders"]] == ["A-1"]
    assert loaded.body["orders"][0]["answer"] == answer
    assert len(loaded.body["engine"]["authority"]["submits"]["gen-01"]) == 1


def test_restore_when_restarted_then_reports_and_duplicates_remembered(store: FlakyStore) -> None:
    """A service started from the file remembers the submit and answers a retried
    report with the first answer."""
    first = _service(store)
    _, answer = first.report_order(json.dumps({**OPEN, "order_id": "A-1"}).encode())
    loaded = StateStore(store.path).load()
    assert loaded is not None
    restarted = _service(None)
    restarted.restore(loaded.body)
    assert len(restarted.authority.state.authority.submits["gen-01"]) == 1
    status, again = restarted.report_order(json.dumps({**OPEN, "order_id": "A-1"}).encode())
    assert (status, again) == (200, {**answer, "duplicate": True})


SILENCE = {"matchers": {"breaker": "stale_data"}, "reason": "venue maintenance", "duration_s": 7200}


def test_silence_when_created_then_saved_and_kept_by_a_restart(store: FlakyStore) -> None:
    """A silence is in the --state file before its answer (`saved: true`); a service
    started from the file keeps holding the same alerts back, and an early end is saved
    the same way."""
    first = _service(store)
    status, created = first.silence(json.dumps(SILENCE).encode(), ALICE)
    assert (status, created["saved"]) == (200, True)
    loaded = StateStore(store.path).load()
    assert loaded is not None
    restarted = _service(None)
    restarted.restore(loaded.body)
    silences = restarted.alerts_silences()
    assert silences is not None
    assert silences.silencing({"breaker": "stale_data"}) == created["silence"]["id"]
    assert restarted.silences()["silences"] == first.silences()["silences"]
    end = {"id": created["silence"]["id"], "reason": "done early"}
    status, expired = first.expire_silence(json.dumps(end).encode(), ALICE)
    assert (status, expired["saved"]) == (200, True)
    reloaded = StateStore(store.path).load()
    assert reloaded is not None
    assert [s["status"] for s in reloaded.body["silences"]] == ["expired"]


def test_silence_when_state_cannot_be_saved_then_it_holds_and_says_not_saved(
    store: FlakyStore,
) -> None:
    """A full disk: the silence holds in memory, the answer says `saved: false`, and the
    failure is loud (/readyz 503, counted) as for any state save."""
    service = _service(store)
    store.failing = True
    status, created = service.silence(json.dumps(SILENCE).encode(), ALICE)
    assert (status, created["created"], created["saved"]) == (200, True, False)
    assert not service.ready()[0] and _failures(service, "state") == 1


def test_restore_when_a_saved_silence_is_not_one_then_refused_naming_the_file_content(
    store: FlakyStore,
) -> None:
    """A state file whose silences cannot be read is refused at start (StateError), never
    half-restored."""
    service = _service(None)
    body = {**service.state_payload(), "silences": [{"id": "sil_1", "matchers": "all"}]}
    with pytest.raises(StateError, match="not a `bastion serve` state file"):
        _service(None).restore(body)


def test_save_when_failing_then_ready_503_counted_alerted_once(store: FlakyStore) -> None:
    """A failed save turns ready off with the reason, counts every failure and raises
    one critical alert when it starts failing; the service keeps its memory."""
    service = _service(store)
    store.failing = True
    with capture_logs() as entries:
        assert service.save_state() is False
        assert service.save_state() is False
    ready, reasons = service.ready()
    assert not ready
    assert any(r.startswith("state save failed: ") and "errno 28" in r for r in reasons)
    assert _failures(service, "state") == 2
    alerts = [e for e in entries if e["event"] == "alert_raised"]
    assert [(a["kind"], a["severity"]) for a in alerts] == [("persist_failed", "critical")]


def test_save_when_works_again_then_ready_recovers_and_logged(store: FlakyStore) -> None:
    """The next save that works clears the reason, and says so once."""
    service = _service(store)
    store.failing = True
    service.save_state()
    store.failing = False
    with capture_logs() as entries:
        assert service.save_state() is True
        assert service.save_state() is True
    assert service.ready() == (True, [])
    assert [e["what"] for e in entries if e["event"] == "persist_recovered"] == ["state"]


def test_persist_failed_when_audit_then_ready_names_the_audit_trail(store: FlakyStore) -> None:
    """The audit writer reports through the same door: counted under what="audit"."""
    service = _service(store)
    service.persist_failed("audit", "audit.jsonl: Read-only file system")
    assert "audit write failed: audit.jsonl: Read-only file system" in service.ready()[1]
    assert _failures(service, "audit") == 1
    service.persist_recovered("audit")
    assert service.ready() == (True, [])


def test_check_when_state_cannot_be_saved_then_503_never_approved(store: FlakyStore) -> None:
    """Fail closed: while the state cannot be saved no order is approved."""
    service = _service(store)
    store.failing = True
    service.save_state()
    status, answer = service.check(json.dumps(OPEN).encode())
    assert (status, answer["approved"]) == (503, False)
    assert "cannot be saved" in answer["error"]


def test_report_when_save_fails_then_503_kept_in_memory_and_retry_confirms(
    store: FlakyStore,
) -> None:
    """A sent order is a fact: remembered even when it cannot be saved (503, saved:
    false); the retry of the same id answers 200 once the save works."""
    service = _service(store)
    store.failing = True
    body = json.dumps({**OPEN, "order_id": "B-1"}).encode()
    status, answer = service.report_order(body)
    assert (status, answer["recorded"], answer["saved"]) == (503, True, False)
    assert len(service.authority.state.authority.submits["gen-01"]) == 1
    store.failing = False
    status, again = service.report_order(body)
    assert (status, again["duplicate"]) == (200, True)
    assert "saved" not in again
    assert len(service.authority.state.authority.submits["gen-01"]) == 1


def test_reset_when_queued_then_saved_and_restored_at_start(store: FlakyStore) -> None:
    """A queued reset is in the file before the 202, and a restart queues it again."""
    service = _service(store)
    status, _ = _reset(service, RESET)
    assert status == 202
    loaded = StateStore(store.path).load()
    assert loaded is not None
    restarted = _service(None)
    restarted.restore(loaded.body)
    assert [p.to_dict() for p in restarted.pending_resets()] == [
        p.to_dict() for p in service.pending_resets()
    ]


def test_reset_when_save_fails_then_503_and_nothing_queued(store: FlakyStore) -> None:
    """Fail closed: a reset that cannot be saved is not taken."""
    service = _service(store)
    store.failing = True
    status, answer = _reset(service, RESET)
    assert (status, answer["queued"]) == (503, False)
    assert service.pending_resets() == []


@pytest.mark.parametrize("field", ["by", "reason"])
def test_reset_when_lone_surrogate_then_422_nothing_applied_and_saves_work(
    store: FlakyStore, field: str
) -> None:
    """ "eve\\ud800" is refused with 422 naming the field; nothing is queued and the next
    save still works (it used to fail forever with UnicodeEncodeError)."""
    service = _service(store)
    status, answer = _reset(service, {**RESET, field: "eve\ud800"})
    assert (status, answer["queued"]) == (422, False)
    assert [error["path"] for error in answer["errors"]] == [field]
    assert service.pending_resets() == []
    assert service.save_state() is True


def test_reset_when_control_character_then_422(store: FlakyStore) -> None:
    """A control character in the text is refused too."""
    status, _ = _reset(_service(store), {**RESET, "reason": "ok\u001b[2J"})
    assert status == 422


def test_reset_when_principal_then_recorded_by_principal(store: FlakyStore) -> None:
    """An authenticated caller is who resets: the body may leave "by" out."""
    service = _service(store)
    body = {k: v for k, v in RESET.items() if k != "by"}
    status, answer = _reset(service, body, ALICE)
    assert (status, answer["by"]) == (202, "alice")


def test_reset_when_body_by_differs_from_principal_then_422(store: FlakyStore) -> None:
    """A body naming someone else than the caller is refused: identity is not a field."""
    service = _service(store)
    status, answer = _reset(service, {**RESET, "by": "bob"}, ALICE)
    assert status == 422
    assert [error["path"] for error in answer["errors"]] == ["by"]
    assert service.pending_resets() == []


def test_reset_when_local_caller_without_by_then_422(store: FlakyStore) -> None:
    """Without --auth there is no identity: the body's "by" stays required."""
    body = {k: v for k, v in RESET.items() if k != "by"}
    status, _ = _reset(_service(store), body)
    assert status == 422


def test_scheduler_when_after_cycle_hook_fails_then_interval_still_returned(
    store: FlakyStore,
) -> None:
    """A failing hook after a cycle never stops the cadence from adapting."""
    service = _service(store)

    def failing_hook(_: Any) -> None:
        raise OSError(28, "No space left on device")

    interval = CycleScheduler(service, on_cycle=failing_hook)._run()
    assert interval == service.wall_interval_s(service.last_cycle)  # type: ignore[arg-type]
