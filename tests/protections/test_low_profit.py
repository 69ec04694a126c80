"""low_profit: golden cases from freqtrade's tests/plugins/test_protections.py
(test_LowProfitPairs)."""

from __future__ import annotations

import pytest

from tests.protections.conftest import (
    LOSS_10,
    LOSS_20,
    SHORT_GAIN_14,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    locked,
    trade,
)


@pytest.mark.parametrize("only_per_side", [False, True])
def test_low_profit_when_pair_profit_below_floor_then_pair_locked(
    policies: PolicyFactory, only_per_side: bool
) -> None:
    """freqtrade test_LowProfitPairs: lookback 400 min, trade_limit 2, required profit 0.
    One trade in the window is not enough; a winning short lifts the pair's sum above 0
    (but the long side alone stays below it: locked with only_per_side, since the trade
    limit counts the pair's trades of both sides); a second losing long locks the pair."""
    compiled = policies(
        entry(
            "low_profit",
            lookback_min=400,
            lock_min=60,
            trade_limit=2,
            required_profit_pct=0,
            only_per_side=only_per_side,
        )
    )
    side = "long" if only_per_side else ""
    xrp = lock_key("low-profit", "symbol=XRP", side)
    trades = [trade("XRP", 450, LOSS_10)]  # outside the lookback
    assert locked(cycle(compiled, trades)[0]) == set()
    trades.append(trade("XRP", 120, LOSS_10))
    assert locked(cycle(compiled, trades)[0]) == set()  # one trade in the window
    trades.append(trade("XRP", 10, SHORT_GAIN_14, side="short", exit_reason="take_profit"))
    assert locked(cycle(compiled, trades)[0]) == ({xrp} if only_per_side else set())
    trades.append(trade("XRP", 21, LOSS_20))
    locks, decisions = cycle(compiled, trades)
    assert locked(locks) == {xrp}
    assert "< 0 % required" in decisions[0].reasons[0] or only_per_side


def test_low_profit_when_sum_exactly_at_floor_then_not_locked(policies: PolicyFactory) -> None:
    """The floor is exclusive (freqtrade: profit < required_profit): exactly at it passes,
    one hundredth below it locks."""
    compiled = policies(entry("low_profit", lookback_min=60, lock_min=60, required_profit_pct=-1))
    assert locked(cycle(compiled, [trade("XRP", 10, "-1", exit_reason="signal")])[0]) == set()
    locks, _ = cycle(compiled, [trade("XRP", 10, "-1.01", exit_reason="signal")])
    assert locked(locks) == {lock_key("low-profit", "symbol=XRP")}
