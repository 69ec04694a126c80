"""POST /api/v1/breakers/reset on the real service, over loopback HTTP: a manual reset
taken, queued, applied by the next cycle and recorded; refusals; the scheduler's run-now."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.engine.evaluation.evaluate import fail_safe
from bastion.engine.evaluation.facts import build_facts
from bastion.engine.state import ARMED
from bastion.service import runner
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Cycle, Service
from bastion.service.scheduler import CycleScheduler
from tests.service.http_support import Reply, call, default_logging  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
THRESHOLD_PCT = Decimal(6)
# One breaker, reset by hand only. The sim's sell-off takes rev-01's daily loss over 6 %
# about 34 market minutes in and back under it about a quarter of an hour later; gen-01
# and com-01 stay under 4 %, so rev-01's is the only breaker that ever trips.
POLICY = f"""\
apiVersion: bastion/v1
kind: BreakerPolicy
metadata:
  name: desk-breakers
  owner: risk-office
  description: One manual breaker on the daily loss.
spec:
  breakers:
    - id: daily_loss_pct
      metric: account.daily_loss_pct
      comparison: ">="
      threshold: {THRESHOLD_PCT}
      action: halt_all
      severity: critical
      cooldown_s: 60
      reset: manual
"""
KEY = "desk-breakers:daily_loss_pct@account:rev-01"
RESET = {
    "breaker": "daily_loss_pct",
    "subject": "account:rev-01",
    "by": "alice",
    "reason": "loss booked, limits reviewed",
}
MAX_BODY = 64 * 1024


@dataclass
class Served:
    service: Service
    http: HttpServer
    wall: ManualClock


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real service on the sim feed (60x, market time moved only by the test) with
    the one-breaker policy, its HTTP server on a free loopback port. No cycle yet."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "breakers.yaml").write_text(POLICY)
    (policies / "bastion.yaml").write_text(  # this set holds breakers only, and says so
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\n"
        "spec: {required_kinds: [BreakerPolicy]}\n"
    )
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    http = HttpServer("127.0.0.1", 0, service, service.metrics)
    http.start()
    yield Served(service, http, wall)
    http.stop()


def _next_cycle(served: Served) -> Cycle:
    """One market minute later, one cycle."""
    served.wall.advance(1)
    return served.service.cycle()


def _trip(served: Served) -> None:
    """Cycle, a market minute at a time, until the sell-off trips rev-01's breaker."""
    for _ in range(60):
        _next_cycle(served)
        if KEY in served.service.breakers_not_armed():
            return
    raise AssertionError(f"{KEY} never tripped")


def _daily_loss_pct(served: Served, account: str) -> Decimal:
    assert served.service.last_snapshot is not None
    facts = build_facts(served.service.last_snapshot)
    (item,) = [f for f in facts.of("account") if f.subject.id == account]
    value = item.value("account.daily_loss_pct")
    assert value is not None
    return value


def _trip_then_clear(served: Served) -> None:
    """Trip the breaker, then cycle until its condition no longer holds: it stays
    tripped, awaiting a manual reset, and rev-01 stays HALTED."""
    _trip(served)
    for _ in range(60):
        _next_cycle(served)
        if _daily_loss_pct(served, "rev-01") < THRESHOLD_PCT:
            return
    raise AssertionError("rev-01's daily loss never fell back under the threshold")


def _post(served: Served, body: bytes | dict[str, Any], method: str = "POST") -> Reply:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return call(served.http.url + "/api/v1/breakers/reset", body=data, method=method)


def _status(served: Served) -> Any:
    return call(served.http.url + "/api/v1/status").json()


def _scraped(served: Served) -> dict[str, float]:
    """bastion_breaker_resets_total by result, and the reset decisions, as scraped."""
    text = call(served.http.url + "/metrics").body.decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bastion_breaker_resets_total":
                found[sample.labels["result"]] = sample.value
            if sample.name == "bastion_decisions_total" and sample.labels["outcome"] == "reset":
                found["reset_decisions"] = sample.value
    return found


def test_reset_when_tripped_breaker_cleared_then_next_cycle_rearms_and_lifts_halt(
    served: Served,
) -> None:
    """The 3 a.m. case: the loss is back under the limit but a manual breaker holds rev-01
    HALTED. One POST queues the reset (202, shown in the status); the next cycle applies
    it: a `reset` decision naming who and why (logged), the breaker armed, rev-01 ACTIVE,
    the queue empty, the reset counted."""
    service = served.service
    _trip_then_clear(served)
    assert service.state.trading_state("rev-01") == "HALTED"
    assert service.state.breakers[KEY].awaiting_manual_reset
    assert _scraped(served) == {"queued": 0, "rejected": 0}

    reply = _post(served, RESET)
    assert reply.status == 202
    answer = reply.json()
    assert (answer["queued"], answer["applies_to"]) == (True, [KEY])
    assert {k: answer[k] for k in RESET} == RESET
    pending = _status(served)["pending_resets"]
    assert [{k: p[k] for k in RESET} for p in pending] == [RESET]
    assert pending[0]["requested_at"] == service.feed.now().isoformat()

    with capture_logs() as entries:
        cycle = _next_cycle(served)
    (reset,) = [d for d in cycle.decisions if d.outcome == "reset"]
    assert (reset.kind, reset.rule, reset.subject.label()) == (
        "breaker",
        "daily_loss_pct",
        "account:rev-01",
    )
    assert reset.reasons == ("manually reset by alice: loss booked, limits reviewed",)
    logged = [e for e in entries if e["event"] == "decision_made" and e["outcome"] == "reset"]
    assert [e["reason"] for e in logged] == [reset.reasons[0]]
    breaker = service.state.breakers[KEY]
    assert (breaker.status, breaker.last_reset_by, breaker.last_reset_reason) == (
        ARMED,
        "alice",
        "loss booked, limits reviewed",
    )
    status = _status(served)
    assert status["trading_states"]["rev-01"] == "ACTIVE"
    assert (status["breakers_not_armed"], status["pending_resets"]) == ({}, [])
    assert _scraped(served) == {"queued": 1, "rejected": 0, "reset_decisions": 1}


def test_reset_when_condition_still_holds_then_recorded_and_trips_again(served: Served) -> None:
    """A reset while the loss is still over the limit is applied and recorded, and the
    breaker re-trips in the same cycle (the engine's semantics): rev-01 stays HALTED."""
    _trip(served)
    assert _post(served, RESET).status == 202
    cycle = _next_cycle(served)
    outcomes = [d.outcome for d in cycle.decisions if d.kind == "breaker"]
    assert outcomes == ["reset", "trip"]
    assert served.service.state.trading_state("rev-01") == "HALTED"
    assert served.service.breakers_not_armed() == {KEY: "tripped"}
    assert _status(served)["pending_resets"] == []


def test_reset_when_by_missing_then_422_naming_by(served: Served) -> None:
    """Who resets goes into the record: without `by`, 422 naming the field; nothing is
    queued, and the refusal is counted."""
    body = {k: v for k, v in RESET.items() if k != "by"}
    reply = _post(served, body)
    assert reply.status == 422
    answer = reply.json()
    assert answer["queued"] is False
    assert "by: is missing" in answer["error"]
    assert [e["path"] for e in answer["errors"]] == ["by"]
    assert _status(served)["pending_resets"] == []
    assert _scraped(served) == {"queued": 0, "rejected": 1}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "body: empty"),
        (b'{"breaker": ', "body:1:13: invalid JSON"),
        (b"\xff{}", "not UTF-8"),
        (b'["daily_loss_pct"]', "a reset is a JSON object"),
        (json.dumps({**RESET, "reason": "  "}).encode(), "reason: must be a non-empty string"),
        (json.dumps({**RESET, "by": 7}).encode(), "by: must be a non-empty string"),
        (json.dumps({**RESET, "subject": "rev-01"}).encode(), "'rev-01' must look like SCOPE:ID"),
        (json.dumps({**RESET, "note": "x"}).encode(), "note: unknown field"),
    ],
)
def test_reset_when_body_not_a_reset_then_422(served: Served, body: bytes, named: str) -> None:
    """Empty, not JSON, not UTF-8, not an object, a blank or non-text field, a subject
    that is not SCOPE:ID (as `bastion eval --reset`), an unknown field: 422 saying which."""
    reply = _post(served, body)
    assert reply.status == 422
    assert named in reply.json()["error"]


def test_reset_when_breaker_not_tripped_for_subject_then_409_listing_the_tripped(
    served: Served,
) -> None:
    """gen-01's breaker never tripped: 409, naming what is tripped (the state keys, as the
    status shows them) so that the operator can correct the request; nothing queued."""
    _trip(served)
    reply = _post(served, {**RESET, "subject": "account:gen-01"})
    assert reply.status == 409
    answer = reply.json()
    assert answer["queued"] is False
    assert answer["breakers_not_armed"] == {KEY: "tripped"}
    assert "not armed now: daily_loss_pct@account:rev-01 (tripped)" in answer["error"]
    assert _status(served)["pending_resets"] == []
    assert _scraped(served) == {"queued": 0, "rejected": 1}


def test_reset_when_nothing_tripped_then_409_saying_none(served: Served) -> None:
    """Before anything trips there is nothing to reset."""
    served.service.cycle()
    reply = _post(served, RESET)
    assert reply.status == 409
    assert reply.json()["breakers_not_armed"] == {}
    assert reply.json()["error"].endswith("not armed now: none")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_reset_when_method_not_post_then_405_allow_post(served: Served, method: str) -> None:
    """Only POST resets; anything else is 405 with Allow: POST."""
    reply = _post(served, b"", method=method)
    assert (reply.status, reply.headers["Allow"]) == (405, "POST")


def test_reset_when_body_over_64_kib_then_413_and_counted(served: Served) -> None:
    """One byte over the cap: 413 in JSON, counted as rejected."""
    reply = _post(served, json.dumps(RESET).encode().ljust(MAX_BODY + 1, b" "))
    assert (reply.status, reply.json()["queued"]) == (413, False)
    assert _scraped(served)["rejected"] == 1


def test_reset_when_queued_then_one_event_with_reason_truncated(served: Served) -> None:
    """One `breaker_reset_requested` event: breaker, subject, by, the reason cut to 200
    characters, the result, the request id bound by the handler."""
    _trip(served)
    body = json.dumps({**RESET, "reason": "r" * 5000}).encode()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        reply = call(
            served.http.url + "/api/v1/breakers/reset",
            body=body,
            method="POST",
            headers={"X-Request-Id": "reset-1"},
        )
        events = [e for e in entries if e["event"] == "breaker_reset_requested"]
    assert reply.status == 202
    (event,) = events
    assert (event["breaker"], event["subject"], event["by"]) == (
        "daily_loss_pct",
        "account:rev-01",
        "alice",
    )
    assert (event["result"], event["status"], event["request_id"]) == ("queued", 202, "reset-1")
    assert event["reason"] == "r" * 200


def test_reset_when_evaluation_fails_safe_then_stays_queued(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluation that failed safe left the state as it was: the reset is not dropped
    but applied by the next evaluation that succeeds."""
    _trip_then_clear(served)
    assert _post(served, RESET).status == 202

    def failing(policies: Any, snapshot: Any, state: Any, now: Any, **_: Any) -> Any:
        return fail_safe(policies, snapshot, state, now, RuntimeError("boom"))

    with monkeypatch.context() as patched:
        patched.setattr(runner, "evaluate", failing)
        _next_cycle(served)
    assert len(_status(served)["pending_resets"]) == 1
    cycle = _next_cycle(served)
    assert [d.outcome for d in cycle.decisions if d.kind == "breaker"] == ["reset"]
    assert _status(served)["pending_resets"] == []


def test_reset_when_requests_race_cycles_then_all_answered_and_queue_drained(
    served: Served,
) -> None:
    """Resets on the server's threads while cycles run: every request is answered 202,
    and the breaker ends up reset by one of them, with nothing left queued."""
    _trip_then_clear(served)
    replies: list[Reply] = []

    def send(who: str) -> None:
        replies.append(_post(served, {**RESET, "by": who}))

    senders = [threading.Thread(target=send, args=(f"op-{n}",)) for n in range(8)]
    for sender in senders:
        sender.start()
    while any(sender.is_alive() for sender in senders):
        served.service.cycle()
        # The scheduler never runs cycles back to back: without a gap this loop takes the
        # cycle lock again the moment it lets it go (locks are not fair), and a request
        # waiting for it starves past its timeout — more so as cycles got cheaper.
        time.sleep(0.002)
    for sender in senders:
        sender.join()
    served.service.cycle()  # whatever came in after the last one
    statuses = {reply.status for reply in replies}
    assert statuses <= {202, 409}  # 409: asked once an earlier one had re-armed it
    assert 202 in statuses
    assert served.service.state.breakers[KEY].last_reset_by in {f"op-{n}" for n in range(8)}
    assert served.service.state.trading_state("rev-01") == "ACTIVE"
    assert _status(served)["pending_resets"] == []


class SlowIntervalService:
    """A stand-in for the scheduler: every cycle asks for the next one in 300 s."""

    def __init__(self) -> None:
        self.cycles = 0

    def cycle(self) -> Cycle:
        self.cycles += 1
        return Cycle(START, (), Decimal(300), "sha256:x", True)

    def wall_interval_s(self, cycle: Cycle) -> float:
        return float(cycle.interval_s)


def test_run_soon_when_called_then_next_cycle_runs_at_once() -> None:
    """`run_soon` (what the service calls once a reset is queued) runs the cycle now, not
    300 s from now; before the scheduler starts it does nothing."""
    service = SlowIntervalService()
    scheduler = CycleScheduler(service)  # type: ignore[arg-type]
    scheduler.run_soon()  # not started: no job to move, no error
    scheduler.start()
    try:
        assert service.cycles == 1
        scheduler.run_soon()
        deadline = time.monotonic() + 5
        while service.cycles < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.cycles == 2
    finally:
        scheduler.stop()
