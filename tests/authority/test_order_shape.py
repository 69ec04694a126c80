"""The order as the venue sees it: the request's order type, prices, reduce-only flag,
time in force and expiry — their cross-field checks, reduce-only overshoot and GTD
expiry at the injected `now`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bastion.engine.authority import rules as r
from bastion.engine.authority.request import RequestInvalid, request_from_dict
from tests.authority.builders import (
    NOW,
    SYMBOL,
    D,
    decide,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import PolicyFactory

# -- the request's cross-field checks ----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"order_type": "limit"}, "price", "is required for a limit order"),
        ({"order_type": "stop_limit", "trigger_price": 1}, "price", "is required"),
        ({"order_type": "stop"}, "trigger_price", "is required for a stop order"),
        ({"price": 1}, "price", "a market order has no limit price"),
        ({"order_type": "limit", "price": 1, "trigger_price": 1}, "trigger_price", "no trigger"),
        ({"time_in_force": "gtd"}, "expire_at", "is required for time_in_force gtd"),
        ({"expire_at": "2026-11-21T00:00:00Z"}, "expire_at", "only a gtd order expires"),
        ({"time_in_force": "never"}, "time_in_force", "one of gtc, day, ioc, fok, gtd"),
        ({"reduce_only": "yes"}, "reduce_only", "true or false"),
    ],
)
def test_request_when_order_shape_contradicts_itself_then_invalid_naming_the_field(
    fields: dict[str, Any], path: str, words: str
) -> None:
    """Prices that do not fit the order type, and an expiry without gtd, are refused."""
    document = {"symbol": SYMBOL, "action": "open", "target_size": 1, **fields}
    with pytest.raises(RequestInvalid) as raised:
        request_from_dict(document)
    assert any(e.path == path and words in e.message for e in raised.value.errors), str(
        raised.value
    )


def test_request_when_order_shape_given_then_read_and_echoed() -> None:
    """A gtd stop-limit reads back as given, and to_dict shows it."""
    order = request_from_dict(
        {
            "symbol": SYMBOL,
            "action": "open",
            "target_size": 1,
            "order_type": "stop_limit",
            "price": "101.5",
            "trigger_price": "101",
            "reduce_only": False,
            "time_in_force": "gtd",
            "expire_at": "2026-11-21T00:00:00Z",
        }
    )
    assert (order.order_type, order.price, order.trigger_price) == (
        "stop_limit",
        D("101.5"),
        D(101),
    )
    assert order.to_dict()["expire_at"] == "2026-11-21T00:00:00Z"
    assert "reduce_only" not in order.to_dict()


def test_request_when_shape_absent_then_market_gtc() -> None:
    """No order-shape field: today's behaviour, a market order good till cancelled."""
    order = request_from_dict({"symbol": SYMBOL, "action": "open", "target_size": 1})
    assert (order.order_type, order.time_in_force, order.reduce_only) == ("market", "gtc", False)


# -- reduce-only -------------------------------------------------------------------------


def held(quantity: Any) -> Any:
    return snapshot(positions=[position(SYMBOL, quantity)])


def test_reduce_only_when_close_of_what_is_held_then_approved(policies: PolicyFactory) -> None:
    """Closing the 10 units held is what reduce-only is for."""
    result = decide(policies(), request("close", reduce_only=True), held(10))
    assert summary(result) == ("approved", True, D(0), ())


def test_reduce_only_when_larger_than_position_then_denied_saying_how_large(
    policies: PolicyFactory,
) -> None:
    """The strategy believes it holds 15; the snapshot holds 10: at most 10 may go."""
    order = request("close", reduce_only=True, current_size=15)
    result = decide(policies(), order, held(10))
    assert summary(result) == ("denied", False, None, (r.REDUCE_ONLY,))
    assert "close of 15 units is larger than the 10 long units held" in result.reasons[0]
    assert "at most 10 units" in result.reasons[0]


def test_reduce_only_when_decrease_within_position_then_approved(
    policies: PolicyFactory,
) -> None:
    """A decrease by exactly what is held passes (boundary)."""
    order = request("decrease", reduce_only=True, current_size=10, target_size=0)
    assert decide(policies(), order, held(10)).approved


def test_reduce_only_when_position_already_closed_then_denied(policies: PolicyFactory) -> None:
    """Nothing held on the side: a reduce-only close has nothing to reduce."""
    order = request("close", reduce_only=True, current_size=5)
    result = decide(policies(), order, snapshot())
    assert r.REDUCE_ONLY in result.blocking
    assert "nothing to reduce" in result.reasons[0]


@pytest.mark.parametrize("action", ["open", "increase"])
def test_reduce_only_when_order_adds_exposure_then_denied(
    policies: PolicyFactory, action: str
) -> None:
    """A reduce-only order that would increase the position is refused."""
    current = 10 if action == "increase" else None
    order = request(action, reduce_only=True, target_size=20, current_size=current)
    result = decide(policies(), order, held(10) if current else snapshot())
    assert summary(result) == ("denied", False, None, (r.REDUCE_ONLY,))
    assert f"{action} adds exposure" in result.reasons[0]


# -- GTD expiry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expire_in", "passes"),
    [(timedelta(seconds=-1), False), (timedelta(0), False), (timedelta(microseconds=1), True)],
    ids=["before-now", "at-now", "after-now"],
)
def test_gtd_when_expire_at_around_now_then_expired_at_and_before(
    policies: PolicyFactory, expire_in: timedelta, passes: bool
) -> None:
    """expire_at must be after the injected now; at now the order has expired."""
    order = request("open", target_size=1, time_in_force="gtd", expire_at=NOW + expire_in)
    result = decide(policies(), order)
    assert result.approved is passes
    if not passes:
        assert result.blocking == (r.EXPIRY,)
        assert "send it with a later expire_at" in result.reasons[0]


def test_gtd_when_cancel_of_expired_order_then_approved(policies: PolicyFactory) -> None:
    """Cancelling is always possible, expired or not."""
    order = request("cancel", time_in_force="gtd", expire_at=NOW - timedelta(days=1))
    assert decide(policies(), order, held(10)).approved


def test_gtd_when_expired_and_no_limit_policy_then_not_checked(policies: PolicyFactory) -> None:
    """The order-shape checks are limits: without a LimitPolicy only the trading state runs."""
    order = request("open", target_size=1, time_in_force="gtd", expire_at=NOW - timedelta(1))
    assert r.EXPIRY not in decide(policies(limits=False), order).blocking
