"""Alpaca's option chain through the real alpaca-py SDK against the loopback stub."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bastion.adapters.alpaca import AlpacaAdapter
from bastion.adapters.option_chains import REFRESH_S, RETRY_S, chain_records, underlyings_of
from bastion.engine.errors import AdapterError
from bastion.engine.snapshot.model import ListedOption
from tests.venues.conftest import NOW, VenueCase
from tests.venues.routes_alpaca import CHAIN_PAGE_SIZE, OPTION_CHAIN

on_alpaca = pytest.mark.parametrize("venue", ["alpaca"], indirect=True)
D = Decimal


def alpaca(venue: VenueCase) -> AlpacaAdapter:
    assert isinstance(venue.adapter, AlpacaAdapter)
    return venue.adapter


def by_symbol(contracts: tuple[ListedOption, ...]) -> dict[str, ListedOption]:
    return {contract.symbol: contract for contract in contracts}


@on_alpaca
def test_fetch_option_chains_when_listed_then_quotes_iv_and_greeks_per_contract(
    venue: VenueCase,
) -> None:
    """Bid/ask/quote time from latestQuote, last from latestTrade, IV and greeks as given."""
    fetched = alpaca(venue).fetch_option_chains(["AAPL"])
    chain = fetched.chains["AAPL"]
    assert chain.underlying == "AAPL" and chain.as_of == NOW
    held = by_symbol(chain.contracts)["AAPL240119C00190000"]
    assert (held.option_type, held.strike_usd) == ("call", D(190))
    assert held.expires_at == datetime(2024, 1, 19, 21, tzinfo=UTC)
    assert (held.bid_usd, held.ask_usd, held.last_usd) == (D("3.95"), D("4.25"), D("4.1"))
    assert held.quoted_at == datetime(2024, 1, 2, 14, 29, 58, 259610, tzinfo=UTC)
    assert (held.implied_volatility, held.delta) == (D("0.2214"), D("0.3902"))
    assert (held.gamma, held.theta_per_day_usd, held.vega_usd) == (
        D("0.0124"),
        D("-0.1011"),
        D("0.1314"),
    )
    quote_only = by_symbol(chain.contracts)["AAPL240216C00210000"]
    assert (quote_only.implied_volatility, quote_only.delta) == (None, None)


@on_alpaca
def test_fetch_option_chains_when_many_pages_then_sdk_follows_every_page(
    venue: VenueCase,
) -> None:
    """The stub answers three contracts a page: every page is fetched and merged."""
    adapter, stub = venue
    assert isinstance(adapter, AlpacaAdapter)
    fetched = adapter.fetch_option_chains(["AAPL"])
    pages = [seen for seen in stub.requests if seen.path == "/v1beta1/options/snapshots/AAPL"]
    assert len(pages) == -(-len(OPTION_CHAIN) // CHAIN_PAGE_SIZE) > 1
    assert pages[0].param("expiration_date_gte") == "2024-01-02"
    assert pages[0].param("expiration_date_lte") == "2024-04-01"  # option_chain_days 90
    listed = len(fetched.chains["AAPL"].contracts) + len(fetched.left_out)
    assert listed == len(OPTION_CHAIN)


@on_alpaca
def test_fetch_option_chains_when_contract_unreadable_then_left_out_with_reason(
    venue: VenueCase,
) -> None:
    """An adjusted root, a non-OCC symbol and a snapshot without a quote are left out."""
    fetched = alpaca(venue).fetch_option_chains(["AAPL"])
    reasons = dict(fetched.left_out)
    assert set(reasons) == {
        "option_chains['AAPL'] AAPL1240216C00200000",
        "option_chains['AAPL'] AAPL24216C00200000",
        "option_chains['AAPL'] AAPL240216P00180000",
    }
    assert "root 'AAPL1' is not 'AAPL'" in reasons["option_chains['AAPL'] AAPL1240216C00200000"]
    assert "not an OCC option symbol" in reasons["option_chains['AAPL'] AAPL24216C00200000"]
    assert "no latestQuote" in reasons["option_chains['AAPL'] AAPL240216P00180000"]


@on_alpaca
def test_chain_records_when_quote_crossed_then_builder_leaves_it_out(venue: VenueCase) -> None:
    """The crossed 205 call never reaches the snapshot; the rest do, unchanged."""
    fetched = alpaca(venue).fetch_option_chains(["AAPL"])
    records, left_out = chain_records(fetched, NOW)
    symbols = {record["symbol"] for record in records["AAPL"]["contracts"]}
    assert "AAPL240216C00205000" not in symbols
    assert "AAPL240119C00190000" in symbols
    crossed = dict(left_out)["option_chains['AAPL'] AAPL240216C00205000"]
    assert "crossed quote" in crossed


@on_alpaca
def test_fetch_option_chains_when_feed_refused_then_chain_absent_and_error_kept(
    venue: VenueCase,
) -> None:
    """OPRA without a subscription: 403 with Alpaca's {"message"} shape; the chain is absent,
    the poll goes on, and the reason names the request and the status."""
    adapter = venue.make(option_feed="opra")
    assert isinstance(adapter, AlpacaAdapter)
    fetched = adapter.fetch_option_chains(["AAPL"])
    assert dict(fetched.chains) == {}
    ((what, why),) = fetched.left_out
    assert what == "option_chains['AAPL']"
    assert "/v1beta1/options/snapshots/AAPL" in why and "403" in why


@on_alpaca
def test_fetch_option_chains_when_underlying_unlisted_then_empty_chain(venue: VenueCase) -> None:
    """An underlying with no options listed: an empty chain (nothing to roll into)."""
    fetched = alpaca(venue).fetch_option_chains(["TSLA"])
    assert fetched.chains["TSLA"].contracts == ()


@on_alpaca
def test_fetch_option_chains_when_5xx_then_retried_like_every_call(venue: VenueCase) -> None:
    """A 503 once: retried with backoff (the SDK's own retry is off), then read."""
    adapter, stub = venue
    assert isinstance(adapter, AlpacaAdapter)
    stub.fail(503, times=1)
    fetched = adapter.fetch_option_chains(["AAPL"])
    assert fetched.chains["AAPL"].contracts
    assert len(venue.sleeps) == 1


def test_construct_when_option_feed_unknown_then_fatal_error_listing_feeds() -> None:
    """option_feed must be one of Alpaca's option feeds."""
    from tests.venues.test_alpaca import offline_adapter  # noqa: PLC0415

    with pytest.raises(AdapterError, match="option_feed 'cboe' is not one of"):
        offline_adapter(option_feed="cboe")


@on_alpaca
def test_underlyings_of_when_option_held_then_its_underlying(venue: VenueCase) -> None:
    """The held AAPL call asks for AAPL's chain, once."""
    assert underlyings_of(alpaca(venue).fetch_positions()) == ["AAPL"]


@on_alpaca
def test_poll_when_option_held_then_snapshot_carries_chain_and_fallbacks_name_left_out(
    venue: VenueCase,
) -> None:
    """A poll as the service makes it: the AAPL chain is in the snapshot without the
    contracts that break a rule, each of those named in the build's fallbacks."""
    from tests.venues.test_live_scenarios import poll_and_build  # noqa: PLC0415

    result = poll_and_build(venue)
    chain = result.snapshot.option_chains["AAPL"]
    symbols = {contract.symbol for contract in chain.contracts}
    assert symbols == {
        "AAPL240119C00190000",
        "AAPL240216C00190000",
        "AAPL240216C00200000",
        "AAPL240216C00210000",
    }
    left_out = {str(fallback).split(" = ")[0] for fallback in result.fallbacks}
    assert "option_chains['AAPL'] AAPL240216C00205000" in left_out  # crossed
    assert "option_chains['AAPL'] AAPL1240216C00200000" in left_out  # adjusted root


def _chain_requests(venue: VenueCase) -> int:
    return sum(seen.path == "/v1beta1/options/snapshots/AAPL" for seen in venue.stub.requests)


@on_alpaca
def test_fetch_option_chains_when_polled_again_within_refresh_then_no_new_request(
    venue: VenueCase,
) -> None:
    """Polls within REFRESH_S reuse the chain (the same fetch object, no request);
    after it, the chain is read again."""
    adapter = alpaca(venue)
    first = adapter.fetch_option_chains(["AAPL"])
    asked = _chain_requests(venue)
    venue.clock.advance(REFRESH_S - 1)
    assert adapter.fetch_option_chains(["AAPL"]) is first
    assert _chain_requests(venue) == asked
    venue.clock.advance(1)
    again = adapter.fetch_option_chains(["AAPL"])
    assert again is not first and again.chains["AAPL"].contracts
    assert _chain_requests(venue) == 2 * asked


@on_alpaca
def test_fetch_option_chains_when_refresh_fails_then_last_chain_kept_and_said(
    venue: VenueCase,
) -> None:
    """A refresh the venue refuses keeps the last chain (its quotes keep their times)
    and says so; it is tried again after RETRY_S, not on every poll."""
    adapter = alpaca(venue)
    first = adapter.fetch_option_chains(["AAPL"])
    venue.clock.advance(REFRESH_S)
    venue.stub.fail(403, times=100)
    kept = adapter.fetch_option_chains(["AAPL"])
    assert kept.chains["AAPL"] == first.chains["AAPL"]
    ((what, why),) = [note for note in kept.left_out if "kept the chain read at" in note[1]]
    assert what == "option_chains['AAPL']" and "2024-01-02T14:30:00" in why
    asked = _chain_requests(venue)
    venue.clock.advance(RETRY_S - 1)
    adapter.fetch_option_chains(["AAPL"])
    assert _chain_requests(venue) == asked  # not asked again before RETRY_S
