"""The builder's trades and instruments: bounded, inconsistent trades left out, instruments."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from bastion.adapters.builder import BuilderConfig, BuilderState, Poll, SnapshotBuilder
from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot import ClosedTrade, Instrument, Snapshot
from tests.adapters.test_builder import ACCOUNT, CALM, T0, TINY, flat, quote

GOOD = ClosedTrade(
    id="o-1",
    account_id="acc-1",
    symbol="SPY",
    side="long",
    strategy_id="trend",
    units=Decimal(10),
    opened_at=T0 - timedelta(days=2),
    closed_at=T0 - timedelta(days=1),
    entry_price_usd=Decimal(100),
    exit_price_usd=Decimal(98),
    profit_usd=Decimal(-20),
    profit_pct=Decimal(-2),
    exit_reason="stop_loss",
)
POSITION = VenuePosition(
    "p-1", "acc-1", "SPY", "equity", Decimal(1), "long", Decimal(100), Decimal(100), T0
)


def _build(
    trades: tuple[ClosedTrade, ...],
    *,
    config: BuilderConfig = TINY,
    instruments: dict[str, Instrument] | None = None,
    positions: tuple[VenuePosition, ...] = (),
) -> tuple[tuple[ClosedTrade, ...], dict[str, Instrument], list[str]]:
    poll = Poll(
        (ACCOUNT,),
        positions,
        {"SPY": flat()},
        {"SPY": quote("SPY")},
        trades=trades,
        instruments=instruments or {},
    )
    result = SnapshotBuilder(config).build(poll, now=T0, state=BuilderState(), regime=CALM)
    left_out = [str(item) for item in result.unevaluable]
    return result.snapshot.trades, dict(result.snapshot.instruments), left_out


def test_build_when_trade_consistent_then_in_the_snapshot() -> None:
    """A good trade goes into the snapshot as given."""
    trades, _, left_out = _build((GOOD,))
    assert trades == (GOOD,) and left_out == []


def test_build_when_trade_older_than_lookback_then_dropped_at_the_boundary() -> None:
    """Only closes within trade_lookback_s are kept; exactly at the cutoff is kept."""
    config = replace(TINY, trade_lookback_s=86_400)
    at_cutoff = replace(GOOD, id="edge", closed_at=T0 - timedelta(days=1))
    older = replace(GOOD, id="old", closed_at=T0 - timedelta(days=1, seconds=1))
    trades, _, _ = _build((older, at_cutoff), config=config)
    assert [trade.id for trade in trades] == ["edge"]


def test_build_when_trade_inconsistent_then_left_out_as_unevaluable_trade() -> None:
    """A trade whose profit contradicts its side is unusable: left out, its account listed."""
    bad = replace(GOOD, id="o-2", profit_usd=Decimal(20), profit_pct=Decimal(2))
    trades, _, left_out = _build((GOOD, bad))
    assert trades == (GOOD,)
    (reason,) = left_out
    assert reason.startswith("trade o-2 (SPY, account acc-1): closed trade unusable: profit_pct")


def test_build_when_trade_of_unknown_account_or_from_the_future_then_left_out() -> None:
    """Unknown account and a close after now (beyond the clock skew) are both named."""
    stranger = replace(GOOD, id="o-3", account_id="acc-9")
    future = replace(GOOD, id="o-4", closed_at=T0 + timedelta(seconds=5.001))
    trades, _, left_out = _build((stranger, future))
    assert trades == ()
    assert "no account" in left_out[0] and "after as_of" in left_out[1]


def test_build_when_trade_closes_within_clock_skew_after_now_then_waits_for_next_poll() -> None:
    """A venue clock a little ahead (≤ max_clock_skew_s, 5 s): the trade is neither in the
    snapshot nor left out; the next poll takes it."""
    ahead = replace(GOOD, id="o-6", closed_at=T0 + timedelta(seconds=5))
    trades, _, left_out = _build((ahead,))
    assert (trades, left_out) == ((), [])


def test_build_when_same_trade_twice_then_second_left_out() -> None:
    """A venue reporting one id twice: the first is kept, the repeat is listed."""
    trades, _, left_out = _build((GOOD, GOOD))
    assert trades == (GOOD,)
    assert "reported twice" in left_out[0]


def test_build_when_adapter_knows_instruments_then_used_else_position_asset_class() -> None:
    """Instruments come from the adapter; a position's asset class fills the gaps."""
    _, instruments, _ = _build((), positions=(POSITION,))
    assert instruments == {"SPY": Instrument("SPY", "equity")}
    known = {"SPY": Instrument("SPY", "equity", "broad-market")}
    _, instruments, _ = _build((), positions=(POSITION,), instruments=known)
    assert instruments["SPY"].sector == "broad-market"


def test_build_when_trade_field_breaks_its_rule_then_left_out_naming_it() -> None:
    """The field table's rules apply to built trades too (units must be positive)."""
    bad = replace(GOOD, id="o-5", units=Decimal(0))
    trades, _, left_out = _build((bad,))
    assert trades == ()
    assert "units: must be a positive number, got 0" in left_out[0]


def test_build_when_trades_attached_then_snapshot_round_trips_through_the_validator() -> None:
    """Trades attached without cerberus are ones the validator accepts: to_dict → from_dict
    gives the same snapshot."""
    poll = Poll((ACCOUNT,), (), {"SPY": flat()}, {"SPY": quote("SPY")}, trades=(GOOD,))
    snapshot = SnapshotBuilder(TINY).build(poll, now=T0, state=BuilderState(), regime=CALM)
    assert Snapshot.from_dict(snapshot.snapshot.to_dict()) == snapshot.snapshot
