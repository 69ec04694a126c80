"""Kraken specifics: error arrays, the nonce, TradeBalance equity, OHLC's open row, paging."""

from __future__ import annotations

import copy
import time
from decimal import Decimal

import krakenex
import pytest

from bastion.adapters.kraken import KrakenAdapter, KrakenConfig
from bastion.adapters.kraken_errors import LOCKOUT_S
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.venue import UnknownSymbolError
from bastion.adapters.venue_config import credentials_from_env
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from tests.venues.conftest import FILLS_SINCE, NOW, VenueCase
from tests.venues.routes_kraken import KEY, SECRET, TRADES

on_kraken = pytest.mark.parametrize("venue", ["kraken"], indirect=True)


# -- error arrays ------------------------------------------------------------------------


@on_kraken
@pytest.mark.parametrize(
    ("entry", "raised", "says"),
    [
        ("EAPI:Invalid key", AdapterError, "KRAKEN_API_KEY"),
        ("EAPI:Invalid signature", AdapterError, "KRAKEN_API_SECRET"),
        ("EGeneral:Permission denied", AdapterError, "query funds"),
        ("EAPI:Invalid nonce", AdapterError, "its own key"),
        ("EQuery:Unknown asset pair", UnknownSymbolError, "check the symbol"),
        ("EGeneral:Invalid arguments:ofs", AdapterError, "Invalid arguments:ofs"),
        ("EAPI:Rate limit exceeded", TransientAdapterError, "Rate limit"),
        ("EService:Unavailable", TransientAdapterError, "Unavailable"),
        ("EService:Busy", TransientAdapterError, "Busy"),
        ("EGeneral:Internal error", TransientAdapterError, "Internal error"),
    ],
)
def test_fetch_when_error_array_then_typed_error(
    venue: VenueCase, entry: str, raised: type[Exception], says: str
) -> None:
    """Each documented Kraken error (HTTP 200) becomes the right typed error."""
    venue.stub.payloads["balance"] = {"error": [entry]}
    with pytest.raises(AdapterError, match=says) as caught:
        venue.adapter.fetch_accounts()
    assert type(caught.value) is raised
    transient = raised is TransientAdapterError
    assert len(venue.stub.requests) == (3 if transient else 1)


@on_kraken
def test_fetch_when_temporary_lockout_then_transient_for_fifteen_minutes(venue: VenueCase) -> None:
    """A lockout waits Kraken's ~15 minutes: handed back at once, not slept through."""
    venue.stub.payloads["balance"] = {"error": ["EGeneral:Temporary lockout"]}
    with pytest.raises(TransientAdapterError) as caught:
        venue.adapter.fetch_accounts()
    assert caught.value.retry_after_s == LOCKOUT_S
    assert venue.sleeps == []


@on_kraken
def test_fetch_when_only_warnings_then_result_is_used(venue: VenueCase) -> None:
    """W-severity entries are warnings: the call still succeeded."""
    venue.stub.payloads["balance"]["error"] = ["WGeneral:Deprecated endpoint"]
    (account,) = venue.adapter.fetch_accounts()
    assert account.cash_usd == Decimal("25000.5")


@on_kraken
@pytest.mark.parametrize(
    ("envelope", "says"),
    [({"error": "EAPI:Invalid key"}, "'error'"), ({"error": [7]}, "strings"),
     ({"error": []}, "'result' is missing"), (["error"], "JSON object")],
)  # fmt: skip
def test_fetch_when_envelope_unreadable_then_data_error(
    venue: VenueCase, envelope: object, says: str
) -> None:
    """An envelope that is not {error: [str], result: ...} is a DataError."""
    venue.stub.payloads["balance"] = envelope
    with pytest.raises(DataError, match=says):
        venue.adapter.fetch_accounts()


@on_kraken
def test_fetch_bars_when_pair_unknown_then_fatal_error_naming_the_symbol_fix(
    venue: VenueCase,
) -> None:
    """EQuery:Unknown asset pair is fatal: the configured symbol is wrong."""
    with pytest.raises(AdapterError, match="Unknown asset pair") as caught:
        venue.adapter.fetch_bars(BarRequest("NOPEUSD", 60, limit=3))
    assert not isinstance(caught.value, TransientAdapterError)


# -- credentials and the nonce -----------------------------------------------------------


def test_from_env_when_secret_not_base64_then_fatal_error_without_the_value() -> None:
    """A secret that is not base64 fails at startup, naming the variable, not its value."""
    environ = {"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": "not base64!"}
    with pytest.raises(AdapterError, match="KRAKEN_API_SECRET is not base64") as caught:
        KrakenAdapter.from_env(environ)
    assert "not base64!" not in str(caught.value)


def test_sdk_nonce_when_two_calls_in_one_millisecond_then_it_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """krakenex's own nonce is the millisecond clock, so it repeats (why we replace it)."""
    monkeypatch.setattr(time, "time", lambda: 1_704_205_800.0)
    api = krakenex.API(KEY, SECRET)
    assert api._nonce() == api._nonce()


@on_kraken
def test_private_calls_when_clock_stands_still_then_nonces_still_increase(
    venue: VenueCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-to-back private calls in one millisecond pass Kraken's nonce check."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_704_205_800_000_000_000)
    venue.adapter.fetch_accounts()
    venue.adapter.fetch_fills(FILLS_SINCE)
    nonces = [
        int(seen.param("nonce") or 0) for seen in venue.stub.requests if seen.method == "POST"
    ]
    assert len(nonces) == 3
    assert nonces == sorted(set(nonces))


@on_kraken
def test_private_calls_when_adapter_rebuilt_in_same_millisecond_then_nonce_keeps_rising(
    venue: VenueCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second adapter on the same key continues above the first one's nonces."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_704_205_800_000_000_000)
    (first,) = venue.adapter.fetch_accounts()
    (second,) = venue.make().fetch_accounts()
    assert first == second  # the stub accepted every nonce
    nonces = [int(seen.param("nonce") or 0) for seen in venue.stub.requests]
    assert len(nonces) == 4 and nonces == sorted(set(nonces))


# -- account, positions, fills, bars ---------------------------------------------------------


@on_kraken
def test_fetch_accounts_when_margin_open_then_equity_is_eb_plus_unrealized(
    venue: VenueCase,
) -> None:
    """Equity is TradeBalance eb + n; n is also the unrealised P&L; cash is ZUSD."""
    (account,) = venue.adapter.fetch_accounts()
    assert account.equity_usd == Decimal("76543.21") + Decimal("250.5")
    assert account.unrealized_pnl_usd == Decimal("250.5")
    assert venue.stub.requests[-1].param("asset") == "ZUSD"


@on_kraken
def test_fetch_positions_when_margin_and_spot_then_both_reported(venue: VenueCase) -> None:
    """A margin position's entry is cost / vol and price value / open vol; spot uses Ticker."""
    margin, eth, btc = venue.adapter.fetch_positions()
    assert (margin.id, margin.side, margin.quantity) == (
        "TF5GVO-T7ZZ2-6NBKBI",
        "long",
        Decimal("0.1"),
    )
    assert (margin.entry_price_usd, margin.price_usd) == (Decimal(42000), Decimal(42500))
    assert (eth.quantity, eth.price_usd) == (Decimal(3), Decimal("2300.5"))
    assert (btc.quantity, btc.price_usd) == (Decimal("0.75"), Decimal("42000.1"))


@on_kraken
def test_fetch_positions_when_asset_has_no_usd_pair_then_row_problem_naming_fix(
    venue: VenueCase,
) -> None:
    """A balance Kraken cannot value in ZUSD is that position's problem naming
    ignore_assets, not a zero; the other positions are read."""
    venue.stub.payloads["balance"]["result"]["XXDG"] = "1000.0"
    positions = venue.adapter.fetch_positions()
    flagged = [p for p in positions if p.problem]
    assert [p.id for p in flagged] == ["kraken:XXDG"]
    assert flagged[0].problem is not None and "ignore_assets" in flagged[0].problem
    assert len(venue.make(ignore_assets=("XXDG",)).fetch_positions()) == 3


@on_kraken
def test_fetch_bars_when_last_row_uncommitted_then_it_is_dropped(venue: VenueCase) -> None:
    """OHLC's last row is the interval still running: the newest bar is the one before."""
    bars = venue.adapter.fetch_bars(BarRequest("XBTUSD", 60))
    assert len(bars) == 9
    assert int(bars[-1].timestamp.timestamp()) == int(NOW.timestamp()) - 60


@on_kraken
def test_fetch_fills_when_more_than_a_page_then_follows_ofs(venue: VenueCase) -> None:
    """120 trades arrive over three pages of 50, asked for by ofs."""
    many = {}
    for index in range(120):
        trade = copy.deepcopy(next(iter(TRADES.values())))
        trade["time"] = 1_704_200_000 + index
        many[f"T{index:05d}-AAAAA-BBBBBB"] = trade
    venue.stub.payloads["trades_history"]["result"] = {"trades": many, "count": 120}
    fills = venue.adapter.fetch_fills(FILLS_SINCE)
    assert len(fills) == 120 and fills[0].id == "T00000-AAAAA-BBBBBB"
    offsets = [seen.param("ofs") for seen in venue.stub.requests if seen.path.endswith("History")]
    assert offsets == ["0", "50", "100"]


@on_kraken
def test_fetch_fills_when_venue_answers_then_fee_and_side_from_trade(venue: VenueCase) -> None:
    """A trade's fee (in the quote currency) and its buy/sell type carry over."""
    buy, sell = venue.adapter.fetch_fills(FILLS_SINCE)
    assert (buy.side, buy.fee_usd, buy.price_usd) == ("buy", Decimal("2.18348"), Decimal(41990))
    assert sell.side == "sell"


def test_construct_when_default_url_then_offline_and_pointed_at_kraken() -> None:
    """Building the adapter with Kraken's real URL touches no network."""
    environ = {"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": SECRET}
    credentials = credentials_from_env(environ, "kraken", "KRAKEN_API_KEY", "KRAKEN_API_SECRET")
    adapter = KrakenAdapter(credentials, KrakenConfig())
    assert adapter.uri == "https://api.kraken.com"
    adapter.close()
