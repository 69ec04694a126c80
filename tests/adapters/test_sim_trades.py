"""The sim's closed trades and instruments: stop-outs in the sell-off, sectors, determinism."""

from __future__ import annotations

from datetime import timedelta

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.sim import SECTORS, SimAdapter
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.snapshot.consistency import trade_problems

SPEED = 60.0


def _sim(seed: int = 7) -> tuple[SimAdapter, ManualClock]:
    wall = ManualClock()
    return SimAdapter(wall, speed=SPEED, seed=seed), wall


def test_fetch_trades_when_tour_runs_through_sell_off_then_stop_outs_among_exits() -> None:
    """Round trips close as trades; the sell-off stops some of them out."""
    adapter, wall = _sim()
    wall.advance(45)  # 45 market minutes: calm, then the sell-off from minute 10
    trades = adapter.fetch_trades(adapter.clock.start)
    reasons = {trade.exit_reason for trade in trades}
    assert "stop_loss" in reasons
    assert reasons <= {"stop_loss", "take_profit", "signal"}
    closes = [trade.closed_at for trade in trades]
    assert closes == sorted(closes)
    assert all(trade.closed_at <= adapter.now() for trade in trades)


def test_fetch_trades_when_made_then_consistent_with_the_snapshot_checks() -> None:
    """Every sim trade passes the snapshot's own consistency check."""
    adapter, wall = _sim()
    wall.advance(45)
    accounts = {account.id for account in adapter.fetch_accounts()}
    for trade in adapter.fetch_trades(adapter.clock.start):
        record = {name: getattr(trade, name) for name in trade.__slots__}
        assert list(trade_problems(record, adapter.now(), accounts)) == []


def test_fetch_trades_when_same_seed_then_identical() -> None:
    """Same seed, same trades, whatever the polling pattern."""
    first, first_wall = _sim()
    second, second_wall = _sim()
    for _ in range(3):
        first_wall.advance(10)
        first.fetch_trades(first.clock.start)
    second_wall.advance(30)
    assert first.fetch_trades(first.clock.start) == second.fetch_trades(second.clock.start)


def test_fetch_trades_when_since_later_then_only_later_closes() -> None:
    """fetch_trades keeps closes at or after `since`."""
    adapter, wall = _sim()
    wall.advance(30)
    since = adapter.clock.start + timedelta(minutes=20)
    assert all(trade.closed_at >= since for trade in adapter.fetch_trades(since))


def test_instruments_when_asked_then_sector_per_symbol_and_option_in_underlying_sector() -> None:
    """Each symbol has its asset class and sector; the SPY put is an option in SPY's sector."""
    adapter, _ = _sim()
    positions = adapter.fetch_positions()
    instruments = adapter.instruments(positions)
    for symbol, sector in SECTORS.items():
        assert instruments[symbol].sector == sector
    assert instruments["BTC-USD"].asset_class == "crypto"
    put = next(p for p in positions if p.option is not None)
    assert (instruments[put.symbol].asset_class, instruments[put.symbol].sector) == (
        "option",
        "broad-market",
    )


def test_build_when_sim_polled_then_snapshot_has_trades_and_instruments() -> None:
    """The builder puts the sim's trades (within the lookback) and instruments in the snapshot."""
    adapter, wall = _sim()
    wall.advance(45)
    builder = SnapshotBuilder(SimAdapter.builder_config())
    state = BuilderState()
    now = adapter.now()
    poll = builder.poll(adapter, now=now, state=state)
    result = builder.build(poll, now=now, state=state, regime=adapter.regime())
    assert len(result.snapshot.trades) == len(adapter.fetch_trades(adapter.clock.start))
    assert result.snapshot.instruments["AAPL"].sector == "technology"
    assert not [item for item in result.unevaluable if item.kind == "trade"]
