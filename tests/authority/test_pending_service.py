"""Pending exposure in the service: reported orders count, are saved, survive a restart and
show in /api/v1/status (the sim feed, in process; the clock moved by no one)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bastion.adapters.sources import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from bastion.service.state_store import StateStore
from tests.conftest import POLICIES

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
# gen-01 holds no ETH-USD in the sim book; 0.1 unit is within every limit.
OPEN = {"account_id": "gen-01", "symbol": "ETH-USD", "action": "open", "target_size": "0.1"}


def _service(store: StateStore | None = None) -> Service:
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), store=store)
    service.cycle()
    return service


def _body(order: dict[str, Any], order_id: str | None = None) -> bytes:
    return json.dumps(order if order_id is None else {**order, "order_id": order_id}).encode()


def test_check_when_order_reported_then_counted_and_shown_in_status() -> None:
    """A check after a reported open says the pending order was counted; a check alone
    adds nothing; status lists the account's pending orders."""
    service = _service()
    service.check(_body(OPEN))
    assert not service.authority.state.authority.pending
    assert service.report_order(_body(OPEN, "ord-1"))[0] == 200
    status, answer = service.check(_body({**OPEN, "current_size": "0"}))
    assert status == 200
    assert "includes 1 pending order" in answer["reasons"][-1]
    assert [c["check"] for c in answer["decision"]["trace"]][1] == "pending"
    shown = service.status()["pending_orders"]
    assert list(shown) == ["gen-01"]
    assert (shown["gen-01"]["orders"], shown["gen-01"]["reported_sent"]) == (1, 1)
    assert list(shown["gen-01"]["symbols"]) == ["ETH-USD"]


def test_restart_when_orders_pending_then_restored_from_the_state_file(tmp_path: Path) -> None:
    """The pending orders are in the state file before the report is answered, and a
    service started from it counts them."""
    store = StateStore(tmp_path / "state.json")
    first = _service(store)
    assert first.report_order(_body(OPEN, "ord-1"))[0] == 200
    loaded = StateStore(store.path).load()
    assert loaded is not None
    saved = loaded.body["engine"]["authority"]["pending"]
    assert [(o["symbol"], o["units"], o["sent"], o["order_id"]) for o in saved] == [
        ("ETH-USD", "0.1", True, "")
    ]
    restarted = _service()
    restarted.restore(loaded.body)
    assert len(restarted.authority.state.authority.pending) == 1
    _, answer = restarted.check(_body(OPEN))  # 0.1 pending: an open contradicts itself
    assert answer["blocking"] == ["request"]
