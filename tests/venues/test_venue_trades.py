"""Closed trades and instruments from every venue, through the real SDKs against the stubs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.builder import SnapshotBuilder
from bastion.adapters.builder_state import BuilderState
from bastion.engine.errors import AdapterError, TransientAdapterError
from bastion.engine.snapshot import Regime
from tests.venues.conftest import FILLS_SINCE, NOW, VenueCase
from tests.venues.stub import Reply

# What each stub's documented history pairs into (the stubs' comments say why):
# (id, symbol, side, units, opened_at, closed_at, profit_usd, exit_reason)
EXPECTED = {
    "alpaca": (
        "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b",
        "AAPL",
        "long",
        Decimal(4),
        datetime(2024, 1, 1, 15, tzinfo=UTC),
        datetime(2024, 1, 2, 14, 20, 0, 789_000, tzinfo=UTC),
        Decimal("-8.30"),  # 4 × 182.50 − (183.00 + 3 × 185.10)
        "stop_loss",  # a stop order (the stop leg of a bracket)
    ),
    "binance": (
        "BTCUSDT:128460",
        "BTCUSDT",
        "long",
        Decimal("0.005"),
        datetime(2024, 1, 1, 16, tzinfo=UTC),
        datetime(2024, 1, 2, 14, 10, tzinfo=UTC),
        Decimal("2.582"),  # 0.005 × 600 − 0.2075 (half the buy's fee) − 0.2105
        "stop_loss",  # STOP_LOSS_LIMIT
    ),
    "kraken": (
        "OSTOPL-XQ4DN-7YHR2K",
        "XXBTZUSD",
        "long",
        Decimal("0.01"),
        datetime(2024, 1, 1, 16, tzinfo=UTC),
        datetime(2024, 1, 2, 14, 16, 40, 500_000, tzinfo=UTC),
        Decimal("2.92874"),  # 0.01 × 510 − 1.079 − 1.09226
        "stop_loss",  # ordertype stop-loss
    ),
}
# The time parameter each venue's fill history takes, and its unit.
SINCE_PARAM = {"alpaca": "after", "binance": "startTime", "kraken": "start"}
HISTORY_PATH = {
    "alpaca": "/v2/account/activities/FILL",
    "binance": "/api/v3/myTrades",
    "kraken": "/0/private/TradesHistory",
}
ORDER_PATH = {"alpaca": "/v2/orders/", "binance": "/api/v3/order"}


def _since_asked(venue: VenueCase) -> list[datetime]:
    """The start time of every fill-history request the stub saw, oldest request first."""
    found = []
    for seen in venue.stub.requests:
        if seen.path != HISTORY_PATH[venue.name] or seen.param(SINCE_PARAM[venue.name]) is None:
            continue
        value = seen.param(SINCE_PARAM[venue.name])
        assert value is not None
        if venue.name == "alpaca":
            found.append(datetime.fromisoformat(value))
        else:
            seconds = float(value) / (1000 if venue.name == "binance" else 1)
            found.append(datetime.fromtimestamp(seconds, UTC))
    return found


def test_fetch_trades_when_history_has_a_round_trip_then_one_closed_trade(
    venue: VenueCase,
) -> None:
    """The venue's fills pair FIFO into the closed trade its payloads describe, exit reason
    from the closing order's type."""
    (trade,) = venue.adapter.fetch_trades(FILLS_SINCE)
    identity, symbol, side, units, opened_at, closed_at, profit_usd, reason = EXPECTED[venue.name]
    assert (trade.id, trade.symbol, trade.side, trade.units) == (identity, symbol, side, units)
    assert (trade.opened_at, trade.closed_at) == (opened_at, closed_at)
    assert (trade.profit_usd, trade.exit_reason) == (profit_usd, reason)
    assert trade.strategy_id == "core"
    assert trade.profit_pct == (profit_usd / (trade.entry_price_usd * units) * 100).quantize(
        Decimal("0.0001")
    )


def test_fetch_trades_when_first_poll_then_history_reaches_thirty_days_before_the_window(
    venue: VenueCase,
) -> None:
    """The first fetch reaches the horizon back, so opening fills are on record."""
    venue.adapter.fetch_trades(FILLS_SINCE)
    first = _since_asked(venue)[0]
    assert abs(first - (FILLS_SINCE - timedelta(days=30))) < timedelta(seconds=1)


def test_fetch_trades_when_polled_again_then_fetches_only_since_the_newest_fill(
    venue: VenueCase,
) -> None:
    """Poll cost: the second poll asks from 5 minutes before the newest fill seen, and the
    same trade comes back once."""
    venue.adapter.fetch_trades(FILLS_SINCE)
    venue.stub.requests.clear()
    again = venue.adapter.fetch_trades(FILLS_SINCE)
    newest = max(EXPECTED[venue.name][5], NOW - timedelta(hours=1))
    (asked,) = _since_asked(venue)
    assert asked >= newest - timedelta(minutes=5, seconds=1)
    assert [trade.id for trade in again] == [EXPECTED[venue.name][0]]


def test_fetch_trades_when_polled_again_then_closing_order_not_asked_again(
    venue: VenueCase,
) -> None:
    """The closing order's type is asked once (Alpaca, Binance); Kraken's trade carries it."""
    venue.adapter.fetch_trades(FILLS_SINCE)
    venue.adapter.fetch_trades(FILLS_SINCE)
    asked = [
        seen
        for seen in venue.stub.requests
        if venue.name in ORDER_PATH and seen.path.startswith(ORDER_PATH[venue.name])
    ]
    assert len(asked) == (1 if venue.name in ORDER_PATH else 0)


def test_fetch_trades_when_closing_order_unknown_to_venue_then_exit_is_signal(
    venue: VenueCase,
) -> None:
    """An order the venue no longer has (Alpaca 404, Binance -2013) leaves the exit as signal;
    the trade itself is kept."""
    if venue.name not in ORDER_PATH:
        pytest.skip("Kraken's trade record carries the order type")
    venue.stub.payloads["orders"].clear()
    (trade,) = venue.adapter.fetch_trades(FILLS_SINCE)
    assert trade.exit_reason == "signal"


def test_fetch_trades_when_history_fails_then_transient_error_after_retries(
    venue: VenueCase,
) -> None:
    """A failing history endpoint is the venue's error, retried then raised; nothing is
    paired from half an answer."""
    venue.stub.fail(503)
    with pytest.raises(TransientAdapterError):
        venue.adapter.fetch_trades(FILLS_SINCE)


def test_fetch_trades_when_window_starts_after_the_close_then_nothing(venue: VenueCase) -> None:
    """Bounded: a trade closed before the snapshot's window is not returned."""
    assert tuple(venue.adapter.fetch_trades(NOW)) == ()


def test_instruments_when_positions_read_then_asset_class_per_symbol(venue: VenueCase) -> None:
    """Alpaca: asset class of each position (the asset endpoint's when read); Binance and
    Kraken: crypto."""
    positions = venue.adapter.fetch_positions()
    if venue.name == "alpaca":
        venue.adapter.check_symbol("AAPL")
    instruments = venue.adapter.instruments(positions)
    for position in positions:
        if position.problem is None:
            assert instruments[position.symbol].symbol == position.symbol
    if venue.name == "alpaca":
        assert instruments["AAPL"].asset_class == "equity"
        assert instruments["AAPL240119C00190000"].asset_class == "option"
    else:
        assert {i.asset_class for i in instruments.values()} == {"crypto"}


def test_build_when_venue_has_trades_then_snapshot_holds_trades_and_instruments(
    venue: VenueCase,
) -> None:
    """End to end: a poll of the venue builds a snapshot with its closed trades (within the
    lookback) and its instruments."""
    builder = SnapshotBuilder()
    state = BuilderState()
    poll = builder.poll(venue.adapter, now=NOW, state=state)
    result = builder.build(
        poll, now=NOW, state=state, regime=Regime("calm", "low", NOW - timedelta(days=1))
    )
    snapshot = result.snapshot
    assert [trade.id for trade in snapshot.trades] == [EXPECTED[venue.name][0]]
    traded = EXPECTED[venue.name][1]
    assert traded in snapshot.instruments
    assert not [item for item in result.unevaluable if item.kind == "trade"]


def test_fetch_trades_when_kraken_key_lacks_query_trades_then_fatal_error_names_the_fix(
    venue: VenueCase,
) -> None:
    """Kraken's error envelope (HTTP 200, ``{"error": ["EGeneral:Permission denied"]}``)
    is a fatal error that names the credentials to check."""
    if venue.name != "kraken":
        pytest.skip("Kraken's error envelope")
    venue.stub.payloads["trades_history"] = {"error": ["EGeneral:Permission denied"]}
    with pytest.raises(AdapterError, match="KRAKEN_API_KEY") as caught:
        venue.adapter.fetch_trades(FILLS_SINCE)
    assert not isinstance(caught.value, TransientAdapterError)


def test_fetch_trades_when_order_lookup_fails_then_error_and_next_poll_recovers(
    venue: VenueCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The closing order's lookup answers 503 (the venue's error body) until the retries
    run out: the fetch fails, nothing is half recorded, and the next poll pairs the same
    fills and gets the stop-loss."""
    if venue.name not in ORDER_PATH:
        pytest.skip("Kraken's trade record carries the order type")
    spec = venue.stub.spec
    key = ("GET", ORDER_PATH[venue.name])
    table = spec.prefixes if venue.name == "alpaca" else spec.routes
    down = Reply(503, spec.fault_body(503))
    monkeypatch.setitem(table, key, lambda _stub, _seen: down)
    with pytest.raises(TransientAdapterError):
        venue.adapter.fetch_trades(FILLS_SINCE)
    monkeypatch.undo()
    (trade,) = venue.adapter.fetch_trades(FILLS_SINCE)
    assert trade.exit_reason == "stop_loss"


def test_poll_when_builder_polls_twice_then_one_history_request_each_time(
    venue: VenueCase,
) -> None:
    """Poll cost: order flow and trade history share one fill-history request per poll;
    the second poll asks only from near the newest fill (or the order-flow window)."""
    builder = SnapshotBuilder()
    state = BuilderState()
    regime = Regime("calm", "low", NOW - timedelta(days=1))
    for poll_number in range(2):
        venue.stub.requests.clear()
        now = NOW + timedelta(minutes=poll_number)
        poll = builder.poll(venue.adapter, now=now, state=state)
        state = builder.build(poll, now=now, state=state, regime=regime).state
        assert len(_since_asked(venue)) == 1
        assert [trade.id for trade in poll.trades] == [EXPECTED[venue.name][0]]
    (asked,) = _since_asked(venue)
    # not the 30-day horizon again: 5 minutes before the newest fill (here the close)
    assert asked >= EXPECTED[venue.name][5] - timedelta(minutes=5, seconds=1)


def test_fetch_trades_when_kraken_order_says_liquidated_then_exit_is_liquidation(
    venue: VenueCase,
) -> None:
    """Kraken flags a liquidation on the closing order (QueryOrders ``misc``), asked once."""
    if venue.name != "kraken":
        pytest.skip("Kraken's order misc")
    venue.stub.payloads["orders"]["OSTOPL-XQ4DN-7YHR2K"]["misc"] = "liquidated"
    (trade,) = venue.adapter.fetch_trades(FILLS_SINCE)
    assert trade.exit_reason == "liquidation"
    venue.adapter.fetch_trades(FILLS_SINCE)
    asked = [seen for seen in venue.stub.requests if seen.path == "/0/private/QueryOrders"]
    assert len(asked) == 1


def test_fetch_trades_when_kraken_does_not_know_the_order_then_exit_from_trade_ordertype(
    venue: VenueCase,
) -> None:
    """EOrder:Invalid order from QueryOrders keeps the exit the trade's ordertype gave."""
    if venue.name != "kraken":
        pytest.skip("Kraken's order misc")
    venue.stub.payloads["orders"].clear()
    (trade,) = venue.adapter.fetch_trades(FILLS_SINCE)
    assert trade.exit_reason == "stop_loss"
