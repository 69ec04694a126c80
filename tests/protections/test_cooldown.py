"""cooldown: golden cases from freqtrade's tests/plugins/test_protections.py
(test_CooldownPeriod, test_CooldownPeriod_unlock_at)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.protections.conftest import (
    GAIN_9,
    LOSS_10,
    NOW,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    locked,
    trade,
)


def test_cooldown_when_pair_exits_then_that_pair_locked_for_lock_s(
    policies: PolicyFactory,
) -> None:
    """freqtrade test_CooldownPeriod: stop_duration 60 min; an XRP stop-loss 30 min ago
    locks XRP (not the account); an ETH exit by ROI 35 min ago locks ETH too: any exit
    reason starts the cooldown, anchored at the exit time."""
    compiled = policies(entry("cooldown", lookback_min=60, lock_min=60))
    assert locked(cycle(compiled, [])[0]) == set()
    trades = [trade("XRP", 30, LOSS_10)]
    locks, _ = cycle(compiled, trades)
    assert locked(locks) == {lock_key("cooldown", "symbol=XRP")}
    assert locks[lock_key("cooldown", "symbol=XRP")].until == NOW + timedelta(minutes=30)
    trades.append(trade("ETH", 35, GAIN_9, exit_reason="take_profit"))
    locks, _ = cycle(compiled, trades)
    assert locked(locks) == {lock_key("cooldown", "symbol=XRP"), lock_key("cooldown", "symbol=ETH")}
    assert locks[lock_key("cooldown", "symbol=ETH")].until == NOW + timedelta(minutes=25)


def test_cooldown_when_unlock_at_then_locked_until_that_clock_time(
    policies: PolicyFactory,
) -> None:
    """freqtrade test_CooldownPeriod_unlock_at: unlock_at 05:00; an exit at 00:20 locks
    until 05:00 the same day (locked at 04:30, free at 05:30); an exit at 21:50 rolls over
    to 05:00 the next day (locked at 23:00 and 04:59). freqtrade frees the pair only when
    the 05:00 candle closes (05:05); Bastion has no candles: free from 05:00:00."""
    compiled = policies(entry("cooldown", lookback_min=60, unlock_at="05:00"))
    start = datetime(2024, 5, 2, 0, 30, tzinfo=UTC)
    xrp = lock_key("cooldown", "symbol=XRP")
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10, now=start)], now=start)
    assert locks[xrp].until == datetime(2024, 5, 2, 5, 0, tzinfo=UTC)
    later = start + timedelta(hours=4)  # 04:30: the trade left the lookback; the lock held
    kept, _ = cycle(compiled, [trade("XRP", 250, LOSS_10, now=later)], now=later, locks=locks)
    assert locked(kept, later) == {xrp}
    past = start + timedelta(hours=5)  # 05:30
    assert locked(cycle(compiled, [], now=past, locks=kept)[0], past) == set()

    evening = datetime(2024, 5, 2, 22, 0, tzinfo=UTC)
    eth = lock_key("cooldown", "symbol=ETH")
    trades = [trade("ETH", 10, GAIN_9, exit_reason="take_profit", now=evening)]
    locks, _ = cycle(compiled, trades, now=evening)
    assert locks[eth].until == datetime(2024, 5, 3, 5, 0, tzinfo=UTC)
    for moment in (evening + timedelta(hours=1), evening + timedelta(hours=6, minutes=59)):
        assert locked(locks, moment) == {eth}
    assert locked(locks, evening + timedelta(hours=7)) == set()


def test_cooldown_when_exit_exactly_at_unlock_time_then_no_lock(
    policies: PolicyFactory,
) -> None:
    """freqtrade's calculate_lock_end moves unlock_at to the next day only when it is
    before the exit: an exit at exactly 05:00 ends its lock at once (Bastion agrees)."""
    compiled = policies(entry("cooldown", lookback_min=60, unlock_at="05:00"))
    at = datetime(2024, 5, 2, 5, 0, tzinfo=UTC)
    assert cycle(compiled, [trade("XRP", 0, LOSS_10, now=at)], now=at) == ({}, ())


def test_cooldown_when_trade_limit_two_then_waits_for_second_exit(
    policies: PolicyFactory,
) -> None:
    """trade_limit (not in freqtrade's cooldown, which is 1) waits for that many exits."""
    compiled = policies(entry("cooldown", lookback_min=60, lock_min=60, trade_limit=2))
    assert locked(cycle(compiled, [trade("XRP", 30, LOSS_10)])[0]) == set()
    trades = [trade("XRP", 30, LOSS_10), trade("XRP", 20, GAIN_9, exit_reason="signal")]
    locks, _ = cycle(compiled, trades)
    assert locks[lock_key("cooldown", "symbol=XRP")].trade_ids == ("XRP-long-20",)
