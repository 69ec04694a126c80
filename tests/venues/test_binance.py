"""Binance specifics: offline construction, valuation in USDT, fills and fees, WAF and bans."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from binance.client import Client

from bastion.adapters.binance import BinanceAdapter, BinanceConfig
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.venue_config import credentials_from_env
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from tests.venues.conftest import FILLS_SINCE, VenueCase
from tests.venues.routes_binance import KEY, SECRET, TRADES

on_binance = pytest.mark.parametrize("venue", ["binance"], indirect=True)
ENVIRON = {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


def test_sdk_client_when_built_with_defaults_then_it_pings_the_exchange() -> None:
    """python-binance's default constructor goes on the network (why we pass ping=False)."""
    with pytest.raises(AssertionError, match=r"api\.binance\.com"):
        Client(KEY, SECRET)


def test_construct_when_default_url_then_no_network_and_api_url_on_binance() -> None:
    """Building the adapter with Binance's real URL opens no socket and resolves no name."""
    credentials = credentials_from_env(ENVIRON, "binance", "BINANCE_API_KEY", "BINANCE_API_SECRET")
    adapter = BinanceAdapter(credentials, BinanceConfig())
    assert adapter.api_url == "https://api.binance.com/api"
    adapter.close()


# -- valuation ---------------------------------------------------------------------------


@on_binance
def test_fetch_positions_when_balances_held_then_valued_at_usdt_tickers(venue: VenueCase) -> None:
    """Each non-USDT balance (free + locked) is a long position at its <ASSET>USDT price."""
    btc, eth = venue.adapter.fetch_positions()
    assert (btc.symbol, btc.quantity, btc.price_usd) == ("BTCUSDT", Decimal("0.6"), Decimal(42000))
    assert (eth.symbol, eth.quantity, eth.price_usd) == ("ETHUSDT", Decimal(2), Decimal("2300.5"))
    assert btc.id == "binance-354937868:BTC" and btc.account_id == "binance-354937868"


@on_binance
def test_fetch_positions_when_asset_has_no_usdt_ticker_then_row_problem_naming_fix(
    venue: VenueCase,
) -> None:
    """A held asset Binance cannot value is that position's problem (naming ignore_assets),
    left out of equity, never valued at zero."""
    venue.stub.payloads["account"]["balances"].append(
        {"asset": "LUNC", "free": "1000", "locked": "0"}
    )
    (account,) = venue.adapter.fetch_accounts()
    assert account.equity_usd == venue.facts.equity_usd
    flagged = [p for p in venue.adapter.fetch_positions() if p.problem]
    assert [p.id for p in flagged] == ["binance-354937868:LUNC"]
    assert flagged[0].problem is not None
    assert re.search(r"LUNCUSDT.*ignore_assets", flagged[0].problem)


@on_binance
def test_fetch_accounts_when_asset_ignored_then_left_out_of_equity(venue: VenueCase) -> None:
    """Assets listed in ignore_assets are neither valued nor reported."""
    venue.stub.payloads["account"]["balances"].append({"asset": "LUNC", "free": "1", "locked": "0"})
    adapter = venue.make(ignore_assets=("LUNC", "ETH"))
    (account,) = adapter.fetch_accounts()
    assert account.equity_usd == Decimal("0.6") * 42000 + 10500
    assert [p.symbol for p in adapter.fetch_positions()] == ["BTCUSDT"]


@on_binance
def test_fetch_accounts_when_only_inverse_ticker_exists_then_valued_through_it(
    venue: VenueCase,
) -> None:
    """An asset quoted as USDT<ASSET> (a fiat like TRY) is valued at 1 / that price."""
    venue.stub.payloads["account"]["balances"] = [{"asset": "TRY", "free": "300", "locked": "0"}]
    venue.stub.payloads["tickers"].append({"symbol": "USDTTRY", "price": "30.00000000"})
    (account,) = venue.adapter.fetch_accounts()
    assert account.equity_usd == Decimal(10)


# -- fills -------------------------------------------------------------------------------


@on_binance
def test_fetch_fills_when_fee_paid_in_bnb_then_fee_valued_at_bnb_price(venue: VenueCase) -> None:
    """A commission in BNB is valued at BNBUSDT; one in USDT is taken as is."""
    bnb_fee, usdt_fee = venue.adapter.fetch_fills(FILLS_SINCE)
    assert bnb_fee.fee_usd == Decimal("0.00001") * 310
    assert (bnb_fee.side, bnb_fee.price_usd) == ("buy", Decimal("42000.1"))
    assert (usdt_fee.side, usdt_fee.fee_usd) == ("sell", Decimal("0.2105"))


@on_binance
def test_fetch_fills_when_more_than_a_page_then_follows_from_id(venue: VenueCase) -> None:
    """1,500 trades come over two requests: startTime first, then fromId after the last id."""
    many = []
    for index in range(1500):
        trade = copy.deepcopy(TRADES[2])
        trade["id"] = 50_000 + index
        trade["time"] = 1_704_200_000_000 + index
        many.append(trade)
    venue.stub.payloads["trades"] = many
    assert len(venue.adapter.fetch_fills(FILLS_SINCE)) == 1500
    pages = [seen for seen in venue.stub.requests if seen.path == "/api/v3/myTrades"]
    assert [seen.param("fromId") for seen in pages] == [None, "51000"]


@on_binance
def test_fetch_fills_when_is_buyer_not_boolean_then_data_error(venue: VenueCase) -> None:
    """isBuyer must be true or false: a string is not guessed into a side."""
    venue.stub.set_field(("trades", 1, "isBuyer"), "yes")
    with pytest.raises(DataError, match="'isBuyer'"):
        venue.adapter.fetch_fills(FILLS_SINCE)


@on_binance
def test_fetch_fills_when_no_symbols_configured_then_nothing_asked(venue: VenueCase) -> None:
    """myTrades needs a symbol: without fill_symbols there is nothing to read."""
    assert venue.make(fill_symbols=()).fetch_fills(FILLS_SINCE) == []


# -- bars --------------------------------------------------------------------------------


@on_binance
def test_fetch_bars_when_last_kline_still_open_then_it_is_dropped(venue: VenueCase) -> None:
    """The kline whose close time is still ahead is not a bar yet."""
    bars = venue.adapter.fetch_bars(BarRequest("BTCUSDT", 60))
    assert len(bars) == 9
    assert bars[-1].timestamp == datetime(2024, 1, 2, 14, 29, tzinfo=UTC)


@on_binance
def test_fetch_bars_when_history_requested_then_start_and_end_sent_in_ms(venue: VenueCase) -> None:
    """A history slice sends startTime / endTime in milliseconds."""
    start, end = datetime(2024, 1, 2, 14, 22, tzinfo=UTC), datetime(2024, 1, 2, 14, 24, tzinfo=UTC)
    bars = venue.adapter.fetch_bars(BarRequest("BTCUSDT", 60, start=start, end=end))
    query = venue.stub.requests[-1].query
    assert (query["startTime"], query["endTime"]) == (["1704205320000"], ["1704205440000"])
    assert [bar.timestamp.minute for bar in bars] == [22, 23, 24]


# -- Binance's own error semantics -------------------------------------------------------


@on_binance
def test_fetch_when_403_then_fatal_error_saying_waf(venue: VenueCase) -> None:
    """Binance's 403 is its WAF: fatal, and the message says so."""
    venue.stub.fail(403)
    with pytest.raises(AdapterError, match="WAF") as caught:
        venue.adapter.fetch_quote("BTCUSDT")
    assert not isinstance(caught.value, TransientAdapterError)


@on_binance
def test_fetch_when_418_ip_ban_then_transient_with_retry_after(venue: VenueCase) -> None:
    """418 (banned for ignoring 429s) is transient and carries the ban's Retry-After."""
    venue.stub.fail(418, retry_after=600)
    with pytest.raises(TransientAdapterError) as caught:
        venue.adapter.fetch_quote("BTCUSDT")
    assert caught.value.retry_after_s == 600
    assert venue.sleeps == []


@on_binance
def test_fetch_when_secret_wrong_then_signature_refused_and_fatal(venue: VenueCase) -> None:
    """A wrong secret fails Binance's signature check (-1022): fatal, naming the variables."""
    adapter = venue.make({"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": "not-the-secret"})
    with pytest.raises(AdapterError, match=r"-1022.*BINANCE_API_SECRET") as caught:
        adapter.fetch_accounts()
    assert not isinstance(caught.value, TransientAdapterError)


@on_binance
def test_fetch_when_timestamp_outside_recv_window_then_fatal_error_saying_ntp(
    venue: VenueCase,
) -> None:
    """-1021 means this host's clock is off: fatal, and the fix is to sync it."""
    venue.stub.fail(
        400, body={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    )
    with pytest.raises(AdapterError, match="NTP"):
        venue.adapter.fetch_accounts()
