"""The replay's closed trades (listed, or paired from its fills) and instruments."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.replay_book import parse_book
from bastion.engine.errors import DataError
from bastion.engine.snapshot import Regime
from tests.adapters.test_replay import replay

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
BOOK = """{
  "accounts": [{"id": "gen-01", "type": "gen", "cash_usd": 100}],
  "positions": [],
  "trades": [%s]
}
"""
TRADE = (
    '{"id": "T-1", "account_id": "gen-01", "symbol": "SPY", "side": "short", "units": 2,'
    ' "opened_at": "2024-03-04T15:00:00Z", "closed_at": "2024-03-05T15:00:00Z",'
    ' "entry_price_usd": 500, "exit_price_usd": 510, "exit_reason": "stop_loss"%s}'
)


def test_fetch_trades_when_book_has_fills_only_then_paired_as_the_clock_passes_them() -> None:
    """The example's buy and stop-loss sell become one trade once replayed past the sell."""
    adapter, wall = replay()
    assert tuple(adapter.fetch_trades(EPOCH)) == ()
    wall.advance(6)  # past 2024-03-06 15:00:30
    (trade,) = adapter.fetch_trades(EPOCH)
    assert (trade.id, trade.side, trade.units, trade.exit_reason) == (
        "O-2002",
        "long",
        Decimal(20),
        "stop_loss",
    )
    assert trade.profit_usd == Decimal(-52)  # (475.90 − 478.40) × 20 − 2 × 1.00 fees
    assert trade.strategy_id == "trend-spy"


def test_parse_book_when_trade_listed_without_profit_then_profit_from_prices() -> None:
    """A listed trade's profit defaults to its price move (a short that rose lost)."""
    (trade,) = parse_book(BOOK % (TRADE % ""), source="book.json").trades
    assert (trade.profit_usd, trade.profit_pct, trade.strategy_id) == (
        Decimal(-20),
        Decimal(-2),
        "",
    )


@pytest.mark.parametrize(
    ("trade", "message"),
    [
        (TRADE.replace('"stop_loss"', '"stopped"') % "", r"trades.0.exit_reason: 'stopped'"),
        (TRADE.replace("03-05", "03-01") % "", r"trades.0.closed_at: is before opened_at"),
        (TRADE.replace('"gen-01"', '"nobody"') % "", r"trades.0.account_id: no account"),
    ],
)
def test_parse_book_when_trade_wrong_then_data_error_names_the_field(
    trade: str, message: str
) -> None:
    """Every trade error names the field (and the line)."""
    with pytest.raises(DataError, match=message):
        parse_book(BOOK % trade, source="book.json")


def test_build_when_replay_has_trades_then_snapshot_holds_them_and_sectors() -> None:
    """A replayed snapshot carries the paired trade and the book's instruments."""
    adapter, wall = replay()
    wall.advance(7)
    builder = SnapshotBuilder(adapter.builder_config())
    now = adapter.now()
    poll = builder.poll(adapter, now=now, state=BuilderState())
    result = builder.build(poll, now=now, state=BuilderState(), regime=Regime("r", "low", now))
    assert [trade.id for trade in result.snapshot.trades] == ["O-2002"]
    assert result.snapshot.instruments["SPY"].sector == "broad-market"
