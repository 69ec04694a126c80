"""Alpaca specifics: OCC option symbols, last_equity, paper by default, the SDK's own retry."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bastion.adapters.alpaca import AlpacaAdapter, AlpacaConfig, parse_occ_symbol, timeframe_for
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.venue_config import credentials_from_env
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from tests.venues.conftest import FILLS_SINCE, VenueCase
from tests.venues.routes_alpaca import ACTIVITIES, KEY, SECRET

# The shared `venue` fixture, for Alpaca only.
on_alpaca = pytest.mark.parametrize("venue", ["alpaca"], indirect=True)


def offline_adapter(**config: object) -> AlpacaAdapter:
    environ = {"ALPACA_API_KEY_ID": KEY, "ALPACA_API_SECRET_KEY": SECRET}
    return AlpacaAdapter(
        credentials_from_env(environ, "alpaca", "ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY"),
        AlpacaConfig(**config),  # type: ignore[arg-type]
    )


# -- OCC symbols -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "kind", "strike", "expires_at", "underlying"),
    [
        ("AAPL240119C00190000", "call", "190", datetime(2024, 1, 19, 21, tzinfo=UTC), "AAPL"),
        ("SPY   241220P00450500", "put", "450.5", datetime(2024, 12, 20, 21, tzinfo=UTC), "SPY"),
        ("SPY240621C00500000", "call", "500", datetime(2024, 6, 21, 20, tzinfo=UTC), "SPY"),
        ("AAPL1240119C00190000", "call", "190", datetime(2024, 1, 19, 21, tzinfo=UTC), "AAPL1"),
        ("BRKB260618P00000500", "put", "0.5", datetime(2026, 6, 18, 20, tzinfo=UTC), "BRKB"),
    ],
)
def test_parse_occ_symbol_when_valid_then_contract_with_new_york_close_expiry(
    symbol: str, kind: str, strike: str, expires_at: datetime, underlying: str
) -> None:
    """Type, strike (÷1000) and a 16:00 New York expiry (EST or EDT) come from the symbol."""
    contract = parse_occ_symbol(symbol)
    assert contract.option_type == kind
    assert contract.strike_usd == Decimal(strike)
    assert contract.expires_at == expires_at
    assert contract.underlying_symbol == underlying
    assert contract.multiplier == 100


@pytest.mark.parametrize(
    "symbol",
    ["AAPL", "AAPL240119X00190000", "AAPL241340C00190000", "TOOLONG240119C00190000",
     "240119C00190000", "AAPL240119C0019000A"],
)  # fmt: skip
def test_parse_occ_symbol_when_malformed_then_data_error_naming_it(symbol: str) -> None:
    """A symbol that is not OCC (or has an impossible date) is a DataError quoting it."""
    with pytest.raises(DataError, match=symbol.strip()):
        parse_occ_symbol(symbol)


@on_alpaca
def test_fetch_positions_when_option_held_then_contract_parsed_from_occ_symbol(
    venue: VenueCase,
) -> None:
    """A us_option position becomes asset_class option with its parsed contract."""
    option = next(p for p in venue.adapter.fetch_positions() if p.asset_class == "option")
    assert option.option is not None
    assert (option.option.option_type, option.option.strike_usd) == ("call", Decimal(190))
    assert (option.quantity, option.price_usd, option.entry_price_usd) == (
        Decimal(2),
        Decimal("4.2"),
        Decimal("3.10"),
    )


@on_alpaca
def test_fetch_positions_when_short_then_positive_quantity_and_short_side(
    venue: VenueCase,
) -> None:
    """Alpaca's negative qty for a short becomes a positive quantity with side short."""
    tsla = next(p for p in venue.adapter.fetch_positions() if p.symbol == "TSLA")
    assert (tsla.quantity, tsla.side) == (Decimal(10), "short")


@on_alpaca
def test_fetch_positions_when_current_price_absent_then_derived_from_market_value(
    venue: VenueCase,
) -> None:
    """Without current_price, the price is market_value / (qty × multiplier)."""
    venue.stub.set_field(("positions", 1, "current_price"), None)
    option = venue.adapter.fetch_positions()[1]
    assert option.price_usd == Decimal("4.2")


@on_alpaca
def test_fetch_positions_when_asset_class_unknown_then_row_has_problem(venue: VenueCase) -> None:
    """An asset class Bastion does not model is that row's problem, naming field and value."""
    venue.stub.set_field(("positions", 0, "asset_class"), "us_bond")
    first, *others = venue.adapter.fetch_positions()
    assert first.problem is not None and "'asset_class' is 'us_bond'" in first.problem
    assert all(position.problem is None for position in others)


@on_alpaca
def test_fetch_accounts_when_venue_answers_then_day_start_equity_is_last_equity(
    venue: VenueCase,
) -> None:
    """day_start_equity_usd is Alpaca's last_equity (equity at the previous close)."""
    (account,) = venue.adapter.fetch_accounts()
    assert account.day_start_equity_usd == Decimal("103529.24")
    assert account.id == "e6fe16f3-64a4-4921-8928-cadf02f92f98"


# -- endpoints and SDK behaviour ---------------------------------------------------------


def test_construct_when_no_url_given_then_paper_endpoint_by_default() -> None:
    """Without trading_url the SDK's paper endpoint is used; paper=False means live."""
    assert offline_adapter().trading_url == "https://paper-api.alpaca.markets"
    assert offline_adapter(paper=False).trading_url == "https://api.alpaca.markets"


def test_construct_when_feed_unknown_then_fatal_error_listing_feeds() -> None:
    """A data feed Alpaca does not have is refused at construction."""
    with pytest.raises(AdapterError, match="iex"):
        offline_adapter(feed="nasdaq")


@on_alpaca
def test_fetch_when_429_then_sdk_never_sleeps_itself(
    venue: VenueCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alpaca-py's own 3 s retry is off: only the injected sleep runs, once per retry."""

    def forbidden(_seconds: float) -> None:
        raise AssertionError("time.sleep called: the SDK's own retry is still on")

    monkeypatch.setattr(time, "sleep", forbidden)
    venue.stub.fail(429)
    with pytest.raises(TransientAdapterError):
        venue.adapter.fetch_accounts()
    assert len(venue.stub.requests) == 3
    assert len(venue.sleeps) == 2


@on_alpaca
def test_fetch_bars_when_live_then_newest_first_query_reversed_to_oldest_first(
    venue: VenueCase,
) -> None:
    """Live bars ask for sort=desc with the limit and the iex feed, then read oldest first."""
    bars = venue.adapter.fetch_bars(BarRequest("AAPL", 300, limit=3))
    query = venue.stub.requests[-1].query
    assert (query["sort"], query["limit"], query["feed"]) == (["desc"], ["3"], ["iex"])
    assert query["timeframe"] == ["5Min"]
    assert [bar.timestamp.minute for bar in bars] == [27, 28, 29]


@on_alpaca
def test_fetch_bars_when_history_requested_then_ascending_between_start_and_end(
    venue: VenueCase,
) -> None:
    """A history slice asks for sort=asc between start and end."""
    start, end = datetime(2024, 1, 2, 14, 20, tzinfo=UTC), datetime(2024, 1, 2, 14, 29, tzinfo=UTC)
    bars = venue.adapter.fetch_bars(BarRequest("AAPL", 60, start=start, end=end))
    query = venue.stub.requests[-1].query
    assert query["sort"] == ["asc"] and "end" in query
    assert bars[0].timestamp == start and len(bars) == 10


@pytest.mark.parametrize(
    ("interval_s", "expected"),
    [(60, "1Min"), (900, "15Min"), (3600, "1Hour"), (14400, "4Hour"), (86400, "1Day"),
     (604800, "1Week")],
)  # fmt: skip
def test_timeframe_for_when_supported_interval_then_alpaca_timeframe(
    interval_s: int, expected: str
) -> None:
    """Seconds map onto Alpaca's Min / Hour / Day / Week timeframes."""
    assert timeframe_for(interval_s).value == expected


@on_alpaca
def test_fetch_fills_when_more_than_one_page_then_follows_page_token(venue: VenueCase) -> None:
    """150 fills arrive over two pages of 100, the second asked for by page_token."""
    template = ACTIVITIES[1]
    many = []
    for index in range(150):
        row = copy.deepcopy(template)
        row["id"] = f"20240102{index:09d}::fill-{index:03d}"
        row["transaction_time"] = f"2024-01-02T10:{index // 60:02d}:{index % 60:02d}Z"
        many.append(row)
    venue.stub.payloads["activities"] = many
    fills = venue.adapter.fetch_fills(FILLS_SINCE)
    assert len(fills) == 150
    pages = [seen for seen in venue.stub.requests if seen.path.endswith("/FILL")]
    assert [seen.param("page_token") for seen in pages] == [None, many[99]["id"]]


@on_alpaca
def test_fetch_fills_when_sell_short_then_side_is_sell(venue: VenueCase) -> None:
    """Alpaca's sell_short side is a sell fill; fees are not reported (zero) by FILL."""
    tsla = next(fill for fill in venue.adapter.fetch_fills(FILLS_SINCE) if fill.symbol == "TSLA")
    assert (tsla.symbol, tsla.side, tsla.fee_usd) == ("TSLA", "sell", Decimal(0))
    assert tsla.position_effect == "open"
