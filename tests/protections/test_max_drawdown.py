"""max_drawdown: golden cases from freqtrade's tests/plugins/test_protections.py
(test_MaxDrawdown), and where Bastion differs (the peak starts at 0)."""

from __future__ import annotations

from tests.protections.conftest import (
    GAIN_9,
    GAIN_49,
    LOSS_10,
    LOSS_20,
    LOSS_50,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    locked,
    trade,
)

MAX_DRAWDOWN = entry(
    "max_drawdown", lookback_min=1000, lock_min=60, trade_limit=3, max_drawdown_pct=15
)


def test_max_drawdown_when_cumulated_profit_falls_15_pct_then_account_locked(
    policies: PolicyFactory,
) -> None:
    """freqtrade test_MaxDrawdown, step by step: three winners (no drawdown); a loser (a
    10.45 % drawdown); a 50 % loser outside the 1000-min lookback (no effect); a winner
    closed before the loser (peak 77.6 %, drawdown still 10.45 %); a 20.40 % loser
    (drawdown 30.85 % > 15 %): the account is locked (freqtrade: a global lock)."""
    compiled = policies(MAX_DRAWDOWN)
    trades = [trade(s, 900, GAIN_9, exit_reason="take_profit") for s in ("XRP", "ETH", "NEO")]
    assert locked(cycle(compiled, trades)[0]) == set()
    trades.append(trade("XRP", 400, LOSS_10))
    assert locked(cycle(compiled, trades)[0]) == set()
    trades.append(trade("XRP", 1100, LOSS_50))
    assert locked(cycle(compiled, trades)[0]) == set()
    trades.append(trade("XRP", 410, GAIN_49, exit_reason="take_profit"))
    assert locked(cycle(compiled, trades)[0]) == set()
    trades.append(trade("XRP", 10, LOSS_20, exit_reason="take_profit"))
    locks, decisions = cycle(compiled, trades)
    assert locked(locks) == {lock_key("max-drawdown", "account")}
    assert "drawdown 30.85 %" in decisions[0].reasons[0]
    assert len(locks[lock_key("max-drawdown", "account")].trade_ids) == 6  # the window's


def test_max_drawdown_when_first_trade_loses_then_counted_from_zero(
    policies: PolicyFactory,
) -> None:
    """Bastion differs from freqtrade here: freqtrade's peak starts at the first trade's
    result, so three losers in a row are a drawdown of only the last two; Bastion starts
    the peak at 0 (the account before the window) and counts all three (fails closed)."""
    compiled = policies(MAX_DRAWDOWN)
    trades = [trade("XRP", 30, "-6"), trade("ETH", 20, "-5"), trade("NEO", 10, "-5")]
    assert locked(cycle(compiled, trades)[0]) == {lock_key("max-drawdown", "account")}
