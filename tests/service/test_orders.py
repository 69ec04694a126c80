"""Order memory from what happened: checks record nothing, reported orders count."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES
from tests.service.http_support import default_logging  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
# gen-01 holds no ETH-USD in the sim book; 0.1 unit is within every limit.
OPEN = {"account_id": "gen-01", "symbol": "ETH-USD", "action": "open", "target_size": "0.1"}
CLOSE = {"account_id": "gen-01", "symbol": "ETH-USD", "action": "close", "current_size": "0.1"}


@pytest.fixture
def service() -> Service:
    """The real service on the sim feed, one cycle run (ready), time moved by no one."""
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    made = Service(feed, reloader, ServiceMetrics())
    made.cycle()
    return made


def _body(order: dict[str, Any], order_id: str | None = None) -> bytes:
    return json.dumps(order if order_id is None else {**order, "order_id": order_id}).encode()


def _memory(service: Service) -> Any:
    return service.authority.state.authority


def test_check_when_open_close_open_close_asked_then_real_open_not_blocked_by_whipsaw(
    service: Service,
) -> None:
    """Four checks of orders never sent (open, close, open, close) leave no round trip:
    the real open is still approved."""
    for order in (OPEN, CLOSE, OPEN, CLOSE):
        assert service.check(_body(order))[0] == 200
    status, answer = service.check(_body(OPEN))
    assert (status, answer["approved"]) == (200, True)
    assert "whipsaw_protection" not in answer["blocking"]
    assert not _memory(service)  # nothing remembered at all


def test_check_when_120_checks_in_a_burst_then_submit_rate_not_spent(service: Service) -> None:
    """120 checks in one instant (the limit is 100/1s) spend no submit: the real order
    reported next is approved, not denied by limit.submit_rate."""
    for _ in range(120):
        service.check(_body(OPEN))
    assert not _memory(service).submits
    status, answer = service.report_order(_body(OPEN, "real-1"))
    assert (status, answer["approved"], answer["recorded"]) == (200, True, True)
    assert "limit.submit_rate" not in answer["blocking"]
    assert len(_memory(service).submits["gen-01"]) == 1


def test_report_when_two_round_trips_reported_then_whipsaw_denies_next_open(
    service: Service,
) -> None:
    """Reported orders are what happened: two round trips sent make whipsaw protection
    deny the next open."""
    for number, order in enumerate((OPEN, CLOSE, OPEN, CLOSE)):
        assert service.report_order(_body(order, f"ord-{number}"))[0] == 200
    status, answer = service.check(_body(OPEN))
    assert (status, answer["approved"]) == (200, False)
    assert "whipsaw_protection" in answer["blocking"]


def test_report_when_same_order_id_twice_then_first_answer_and_counted_once(
    service: Service,
) -> None:
    """A retried report changes nothing and answers the first answer, marked duplicate,
    even when the retry's body differs."""
    first_status, first = service.report_order(_body(OPEN, "A-1"))
    memory = _memory(service)
    again_status, again = service.report_order(_body(CLOSE, "A-1"))
    assert (first_status, again_status) == (200, 200)
    assert again == {**first, "duplicate": True}
    assert _memory(service) is memory
    assert len(memory.submits["gen-01"]) == 1


def test_report_when_answered_then_names_order_decision_and_reporter(service: Service) -> None:
    """The answer is the decision the order was sent under, with its id and who said so."""
    status, answer = service.report_order(_body(OPEN, "A-2"))
    assert status == 200
    assert (answer["order_id"], answer["reported_by"], answer["outcome"]) == (
        "A-2",
        "local",
        "approved",
    )
    assert answer["decision_id"].startswith("dec_") and answer["policy_version"]


@pytest.mark.parametrize(
    ("order", "named"),
    [
        (OPEN, "order_id"),
        ({**OPEN, "order_id": ""}, "order_id"),
        ({**OPEN, "order_id": 7}, "order_id"),
        ({**OPEN, "order_id": "x" * 129}, "order_id"),
        ({**OPEN, "order_id": "B-1", "target_size": -1}, "target_size"),
        ({**OPEN, "order_id": "B-1", "reason": "eve\ud800"}, "reason"),
        ({**OPEN, "order_id": "B-1\u0000"}, "order_id"),
    ],
)
def test_report_when_body_invalid_then_422_naming_the_field_nothing_recorded(
    service: Service, order: dict[str, Any], named: str
) -> None:
    """No order id, a bad field, text that cannot be kept: 422 naming it, no memory."""
    status, answer = service.report_order(json.dumps(order).encode())
    assert (status, answer["recorded"]) == (422, False)
    assert named in {error["path"] for error in answer["errors"]}
    assert not _memory(service) and len(service.orders) == 0


@pytest.mark.parametrize("body", [b"", b"[1]", b"{", b"\xff"])
def test_report_when_body_unreadable_then_422(service: Service, body: bytes) -> None:
    """Empty, not an object, not JSON, not UTF-8: 422, nothing recorded."""
    status, answer = service.report_order(body)
    assert (status, answer["recorded"]) == (422, False)
    assert not _memory(service)


def test_report_when_order_denied_but_sent_then_recorded_and_alerted(service: Service) -> None:
    """An order sent though denied still happened: its submit counts, and an alert says so."""
    core_close = {"account_id": "gen-01", "symbol": "SPY", "action": "close"}  # immune
    with capture_logs() as entries:
        status, answer = service.report_order(_body(core_close, "C-1"))
    assert (status, answer["approved"], answer["recorded"]) == (200, False, True)
    assert len(_memory(service).submits["gen-01"]) == 1
    alerts = [e for e in entries if e["event"] == "alert_raised"]
    assert [a["kind"] for a in alerts] == ["order_sent_denied"]


def test_report_when_no_snapshot_yet_then_503_nothing_recorded() -> None:
    """Before the first cycle the order cannot be decided: 503, report it again."""
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    fresh = Service(feed, reloader, ServiceMetrics())
    status, answer = fresh.report_order(_body(OPEN, "D-1"))
    assert (status, answer["recorded"]) == (503, False)
    assert len(fresh.orders) == 0


def test_check_when_lone_surrogate_escaped_then_422_naming_the_field(service: Service) -> None:
    """A check whose text cannot be kept is refused before it is read."""
    body = json.dumps({**OPEN, "id": "eve\ud800"}).encode()
    status, answer = service.check(body)
    assert (status, answer["approved"]) == (422, False)
    assert [error["path"] for error in answer["errors"]] == ["id"]


def test_metrics_when_reports_answered_then_counted_by_outcome(service: Service) -> None:
    """bastion_orders_reported_total counts each report by outcome (duplicates apart)."""
    service.report_order(_body(OPEN, "E-1"))
    service.report_order(_body(OPEN, "E-1"))
    service.report_order(b"{}")
    text = service.metrics.render()[0].decode()
    assert 'bastion_orders_reported_total{outcome="approved"} 1.0' in text
    assert 'bastion_orders_reported_total{outcome="duplicate"} 1.0' in text
    assert 'bastion_orders_reported_total{outcome="error"} 1.0' in text
