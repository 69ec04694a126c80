"""stoploss_guard: golden cases from freqtrade's tests/plugins/test_protections.py
(test_stoploss_guard, test_stoploss_guard_perpair), re-expressed as Bastion policies,
snapshot trades and the evaluation cycle's locks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.protections.conftest import (
    LOSS_10,
    NOW,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    locked,
    trade,
)

GLOBAL = entry("stoploss_guard", lookback_min=60, lock_min=40, max_stop_losses=3, scope="account")


@pytest.mark.parametrize("side", ["long", "short"])
def test_stoploss_guard_when_third_stop_in_lookback_then_account_locked(
    policies: PolicyFactory, side: str
) -> None:
    """freqtrade test_stoploss_guard: 3 stop-losses within 60 min lock everything for 40
    min; a stop closed 100 min ago does not count; both sides count (is_short)."""
    compiled = policies(GLOBAL)
    trades = [trade("XRP", 30, LOSS_10, side=side)]
    assert locked(cycle(compiled, trades)[0]) == set()
    trades += [trade("BCH", 100, LOSS_10, side=side), trade("ETH", 30, LOSS_10, side=side)]
    assert locked(cycle(compiled, trades)[0]) == set()  # the BCH stop is too old
    trades.append(trade("LTC", 30, LOSS_10, side=side))
    locks, decisions = cycle(compiled, trades)
    key = lock_key("stoploss-guard", "account")
    assert locked(locks) == {key}
    assert locks[key].until == NOW - timedelta(minutes=30) + timedelta(minutes=40)
    assert set(locks[key].trade_ids) == {f"{s}-{side}-30" for s in ("XRP", "ETH", "LTC")}
    assert [d.outcome for d in decisions] == ["locked"]


def test_stoploss_guard_when_evaluated_after_lock_end_then_not_locked_again(
    policies: PolicyFactory,
) -> None:
    """freqtrade test_stoploss_guard: 5 minutes after the lock ended the same stops would
    lock only to the same (past) end: no new lock."""
    compiled = policies(GLOBAL)
    trades = [trade(s, 30, LOSS_10) for s in ("XRP", "ETH", "LTC")]
    locks, _ = cycle(compiled, trades)
    end = locks[lock_key("stoploss-guard", "account")].until + timedelta(minutes=5)
    later, decisions = cycle(compiled, trades, now=end, locks=locks)
    assert later == {} and decisions == ()


def test_stoploss_guard_when_stop_exit_in_profit_then_not_counted(
    policies: PolicyFactory,
) -> None:
    """freqtrade counts a stop only with close_profit < required_profit (default 0): a
    trailing stop that kept a profit, or a signal exit, is not a stop-loss to guard."""
    compiled = policies(GLOBAL)
    trades = [
        trade("XRP", 30, LOSS_10),
        trade("ETH", 30, "2.5"),
        trade("LTC", 30, LOSS_10, exit_reason="signal"),
        trade("NEO", 20, LOSS_10, exit_reason="liquidation"),
    ]
    assert locked(cycle(compiled, trades)[0]) == set()  # XRP and NEO: 2 of 3
    trades.append(trade("BCH", 10, LOSS_10))
    assert locked(cycle(compiled, trades)[0]) == {lock_key("stoploss-guard", "account")}


def _perpair(only_per_pair: bool, only_per_side: bool) -> dict[str, object]:
    return entry(
        "stoploss_guard",
        lookback_min=60,
        lock_min=60,
        max_stop_losses=2,
        scope="symbol" if only_per_pair else "account",
        only_per_side=only_per_side,
    )


@pytest.mark.parametrize("only_per_side", [False, True])
@pytest.mark.parametrize("only_per_pair", [False, True])
def test_stoploss_guard_when_per_pair_and_per_side_then_locks_as_freqtrade(
    policies: PolicyFactory, only_per_pair: bool, only_per_side: bool
) -> None:
    """freqtrade test_stoploss_guard_perpair, step by step: only_per_pair is scope symbol
    (else account), only_per_side locks the side that fired (freqtrade's lock_side)."""
    compiled = policies(_perpair(only_per_pair, only_per_side))
    side = "long" if only_per_side else ""
    where = "symbol=XRP" if only_per_pair else "account"
    account_lock = lock_key("stoploss-guard", "account", side)
    trades = [trade("XRP", 30, LOSS_10)]
    assert locked(cycle(compiled, trades)[0]) == set()
    # XRP closed too long ago, and an ETH stop: per pair XRP has 1, the account 2.
    trades += [trade("XRP", 100, LOSS_10), trade("ETH", 30, LOSS_10)]
    assert locked(cycle(compiled, trades)[0]) == (set() if only_per_pair else {account_lock})
    # A short XRP stop: counts unless only_per_side.
    trades.append(trade("XRP", 25, LOSS_10, side="short"))
    locks = locked(cycle(compiled, trades)[0])
    pair_lock = lock_key("stoploss-guard", where, side)
    if only_per_pair:
        assert locks == (set() if only_per_side else {pair_lock})
    else:
        assert locks == {account_lock}
    # A second long XRP stop: XRP is locked (its long side only with only_per_side).
    trades.append(trade("XRP", 31, LOSS_10))
    locks = locked(cycle(compiled, trades)[0])
    assert pair_lock in locks
    assert all(key.endswith("/long") for key in locks) == only_per_side
