"""The kill switch: a daily drawdown ≥ max_daily_drawdown_pct, or the drift flag with
on_drift true, denies what adds exposure (open, increase) and lets reductions pass."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authority.builders import D, decide, position, request, snapshot, summary
from tests.authority.conftest import PolicyFactory

KILL = {"kill_switch": {"max_daily_drawdown_pct": 10, "on_drift": True}}
ORDERS = {
    "open": (request("open", current_size=0, target_size=5), 5),
    "increase": (request("increase", target_size=15), 15),
    "decrease": (request("decrease", target_size=5), 5),
    "close": (request("close"), 0),
    "cancel": (request("cancel"), 10),
}
ADDS = {"open", "increase"}


def account_at(equity: int, *, drift: bool = False) -> Any:
    """Day started at 100 000 USD; 10 units of XYZ held for 30 days."""
    return snapshot(
        equity=equity, day_start=100_000, drift=drift, positions=[position(quantity=10)]
    )


@pytest.mark.parametrize(
    ("equity", "tripped"),
    [(90_001, False), (90_000, True), (89_999, True)],
    ids=["just-below-10pct", "at-10pct", "just-above-10pct"],
)
def test_kill_switch_when_drawdown_around_max_then_trips_at_it(
    policies: PolicyFactory, equity: int, tripped: bool
) -> None:
    result = decide(policies(limits=KILL), request("increase", target_size=15), account_at(equity))
    expected = (
        ("denied", False, None, ("limit.kill_switch.drawdown",))
        if tripped
        else ("approved", True, D(15), ())
    )
    assert summary(result) == expected


@pytest.mark.parametrize("action", list(ORDERS))
def test_kill_switch_when_drawdown_tripped_then_only_reductions_pass(
    policies: PolicyFactory, action: str
) -> None:
    order, size = ORDERS[action]
    result = decide(policies(limits=KILL), order, account_at(85_000))
    expected = (
        ("denied", False, None, ("limit.kill_switch.drawdown",))
        if action in ADDS
        else ("approved", True, D(size), ())
    )
    assert summary(result) == expected


def test_kill_switch_when_equity_above_day_start_then_no_drawdown(
    policies: PolicyFactory,
) -> None:
    result = decide(policies(limits=KILL), request("increase", target_size=15), account_at(150_000))
    assert summary(result) == ("approved", True, D(15), ())


@pytest.mark.parametrize("action", list(ORDERS))
def test_kill_switch_when_drift_flag_and_on_drift_then_only_reductions_pass(
    policies: PolicyFactory, action: str
) -> None:
    order, size = ORDERS[action]
    result = decide(policies(limits=KILL), order, account_at(100_000, drift=True))
    expected = (
        ("denied", False, None, ("limit.kill_switch.drift",))
        if action in ADDS
        else ("approved", True, D(size), ())
    )
    assert summary(result) == expected


@pytest.mark.parametrize("action", sorted(ADDS))
def test_kill_switch_when_on_drift_false_then_drift_flag_ignored(
    policies: PolicyFactory, action: str
) -> None:
    compiled = policies(limits={"kill_switch": {"on_drift": False}})
    order, size = ORDERS[action]
    result = decide(compiled, order, account_at(100_000, drift=True))
    assert summary(result) == ("approved", True, D(size), ())


def test_kill_switch_when_drawdown_and_drift_then_both_named(policies: PolicyFactory) -> None:
    result = decide(
        policies(limits=KILL),
        request("open", target_size=5),
        snapshot(day_start=200_000, drift=True),
    )
    assert summary(result) == (
        "denied",
        False,
        None,
        ("limit.kill_switch.drawdown", "limit.kill_switch.drift"),
    )


def test_kill_switch_when_threshold_changed_then_trips_at_new_value(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"kill_switch": {"max_daily_drawdown_pct": 5}})
    tripped = decide(compiled, request("increase", target_size=15), account_at(95_000))
    passes = decide(compiled, request("increase", target_size=15), account_at(95_001))
    assert tripped.blocking == ("limit.kill_switch.drawdown",)
    assert summary(passes) == ("approved", True, D(15), ())
