"""The venues' order rules (tick, lot, min / max quantity and notional) reach the
snapshot's ``instruments``: each real SDK against its loopback stub, through the builder.

Rules are cached an hour on the injected clock; a failing or garbled read never fails
the poll (last known rules kept, else none) and is listed in the builder's fallbacks.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.adapters.alpaca import AlpacaAdapter
from bastion.adapters.builder import BuilderConfig, BuilderState, BuildResult, SnapshotBuilder
from bastion.adapters.instrument_rules import InstrumentRuleSource
from bastion.adapters.kraken import KrakenAdapter
from bastion.engine.authority import OrderRequest, can_execute
from bastion.engine.snapshot import Regime
from bastion.engine.state import State
from tests.authority.conftest import PolicyFactory, policies  # noqa: F401 (the fixture)
from tests.venues.conftest import NOW, Adapter, VenueCase

CALM = Regime("calm", "low", NOW)
on_binance = pytest.mark.parametrize("venue", ["binance"], indirect=True)
on_kraken = pytest.mark.parametrize("venue", ["kraken"], indirect=True)
on_alpaca = pytest.mark.parametrize("venue", ["alpaca"], indirect=True)
D = Decimal


def poll_and_build(venue: VenueCase, adapter: Adapter | None = None) -> BuildResult:
    """One poll as the service does it, built into a snapshot."""
    builder = SnapshotBuilder(BuilderConfig(benchmark=venue.facts.benchmark))
    now = venue.clock.now()
    poll = builder.poll(adapter or venue.adapter, now=now, state=BuilderState())
    return builder.build(poll, now=now, state=BuilderState(), regime=CALM)


def rules_of(result: BuildResult, symbol: str) -> dict[str, Decimal | None]:
    instrument = result.snapshot.instruments[symbol]
    names = ("tick_size", "lot_size", "min_quantity", "max_quantity")
    return {name: getattr(instrument, name) for name in (*names, "min_notional", "max_notional")}


def requests_to(venue: VenueCase, path: str) -> int:
    return sum(1 for seen in venue.stub.requests if seen.path.startswith(path))


def test_every_venue_adapter_when_built_then_reads_instrument_rules(venue: VenueCase) -> None:
    """Alpaca, Binance and Kraken all give the builder their venue's order rules."""
    assert isinstance(venue.adapter, InstrumentRuleSource)


# -- Binance -----------------------------------------------------------------------------


@on_binance
def test_binance_poll_when_exchange_info_has_filters_then_instruments_carry_them(
    venue: VenueCase,
) -> None:
    """PRICE_FILTER / LOT_SIZE / NOTIONAL of exchangeInfo land on the instrument; Binance's
    zero maxNotional means no rule (None)."""
    result = poll_and_build(venue)
    assert rules_of(result, "BTCUSDT") == {
        "tick_size": D("0.01"),
        "lot_size": D("0.00001"),
        "min_quantity": D("0.00001"),
        "max_quantity": D(9000),
        "min_notional": D(5),
        "max_notional": None,
    }
    assert rules_of(result, "ETHUSDT")["lot_size"] == D("0.0001")
    assert not [f for f in result.fallbacks if f.where.startswith("instruments")]


@on_binance
def test_binance_poll_when_polled_again_within_the_hour_then_rules_not_read_again(
    venue: VenueCase,
) -> None:
    """exchangeInfo is read once per symbol an hour; after the hour it is read again."""
    poll_and_build(venue)
    first = requests_to(venue, "/api/v3/exchangeInfo")
    assert first > 0
    venue.clock.advance(59 * 60)
    poll_and_build(venue)
    assert requests_to(venue, "/api/v3/exchangeInfo") == first
    venue.clock.advance(2 * 60)
    poll_and_build(venue)
    assert requests_to(venue, "/api/v3/exchangeInfo") == 2 * first


@on_binance
def test_binance_poll_when_exchange_info_refuses_then_poll_succeeds_with_last_known_rules(
    venue: VenueCase,
) -> None:
    """A -1121 error answer for exchangeInfo does not fail the poll: the last known rules
    stay (a fallback says so); a symbol never read has none (a fallback says so too)."""
    poll_and_build(venue)
    venue.clock.advance(2 * 3600)
    venue.stub.payloads["exchange_info"]["symbols"] = []  # every symbol: -1121 Invalid symbol
    result = poll_and_build(venue)
    assert rules_of(result, "BTCUSDT")["lot_size"] == D("0.00001")
    notes = [str(f) for f in result.fallbacks if f.where == "instruments['BTCUSDT']"]
    assert len(notes) == 1 and "kept the last known" in notes[0] and "-1121" in notes[0]
    fresh = poll_and_build(venue, venue.make())
    assert rules_of(fresh, "BTCUSDT")["lot_size"] is None
    assert any(f.value == "no venue rules" for f in fresh.fallbacks)


@on_binance
def test_binance_poll_when_filters_are_garbage_then_those_fields_none_and_noted(
    venue: VenueCase,
) -> None:
    """A non-numeric tick and a negative step are left out (None) with a fallback each;
    the other rules still arrive, nothing crashes."""
    btc = venue.stub.payloads["exchange_info"]["symbols"][0]
    btc["filters"][0]["tickSize"] = "abc"
    btc["filters"][1]["stepSize"] = "-0.001"
    result = poll_and_build(venue)
    rules = rules_of(result, "BTCUSDT")
    assert rules["tick_size"] is None and rules["lot_size"] is None
    assert rules["min_quantity"] == D("0.00001")
    wheres = {f.where for f in result.fallbacks}
    assert {"instruments['BTCUSDT'].tick_size", "instruments['BTCUSDT'].lot_size"} <= wheres


@on_binance
def test_binance_poll_when_lot_step_is_0_001_then_can_execute_floors_quantity_to_step(
    venue: VenueCase,
    policies: PolicyFactory,  # noqa: F811
) -> None:
    """End to end: Binance says LOT_SIZE stepSize 0.001 for BTCUSDT; an order to hold
    0.6015 BTC is downsized to 0.601, the step below."""
    btc = venue.stub.payloads["exchange_info"]["symbols"][0]
    btc["filters"][1].update(stepSize="0.00100000", minQty="0.00100000")
    result = poll_and_build(venue)
    assert result.snapshot.instruments["BTCUSDT"].lot_size == D("0.001")
    (account,) = result.snapshot.accounts
    order = OrderRequest(
        symbol="BTCUSDT",
        action="increase",
        account_id=account.id,
        current_size=D("0.6"),
        target_size=D("0.6015"),
    )
    # The stub's klines trade little: the liquidity floor is opened so only the lot binds.
    compiled = policies(limits={"liquidity": {"min_liquidity_24h_usd": 0}})
    decision = can_execute(compiled, order, result.snapshot, State(), NOW)
    assert decision.approved_size == D("0.601"), decision.reasons


# -- Kraken ------------------------------------------------------------------------------


@on_kraken
def test_kraken_poll_when_asset_pairs_has_rules_then_instruments_carry_them(
    venue: VenueCase,
) -> None:
    """tick_size, lot_decimals (→ 10^-8), ordermin and costmin (ZUSD) of AssetPairs."""
    result = poll_and_build(venue)
    assert rules_of(result, "XXBTZUSD") == {
        "tick_size": D("0.1"),
        "lot_size": D("1E-8"),
        "min_quantity": D("0.0001"),
        "max_quantity": None,
        "min_notional": D("0.5"),
        "max_notional": None,
    }


@on_kraken
def test_kraken_fetch_instruments_when_asset_pairs_answers_an_error_then_none_and_noted(
    venue: VenueCase,
) -> None:
    """Kraken's error envelope for AssetPairs: no rules and a note, no exception."""
    adapter = venue.adapter
    assert isinstance(adapter, KrakenAdapter)
    positions = adapter.fetch_positions()
    venue.stub.payloads["asset_pairs"] = {"error": ["EQuery:Unknown asset pair"], "result": {}}
    fetched = adapter.fetch_instruments(positions, ["XBTUSD"])
    assert fetched.instruments["XBTUSD"].lot_size is None
    assert any("EQuery:Unknown asset pair" in note[2] for note in fetched.notes)


@on_kraken
def test_kraken_fetch_instruments_when_lot_decimals_garbage_then_lot_none_and_noted(
    venue: VenueCase,
) -> None:
    """A lot_decimals that is not a whole number leaves lot_size None, with a note."""
    adapter = venue.adapter
    assert isinstance(adapter, KrakenAdapter)
    venue.stub.payloads["asset_pairs"]["result"]["XXBTZUSD"]["lot_decimals"] = "eight"
    fetched = adapter.fetch_instruments([], ["XXBTZUSD"])
    assert fetched.instruments["XXBTZUSD"].lot_size is None
    assert fetched.instruments["XXBTZUSD"].min_quantity == D("0.0001")
    assert [note[0] for note in fetched.notes] == ["instruments['XXBTZUSD'].lot_size"]


# -- Alpaca ------------------------------------------------------------------------------


@on_alpaca
def test_alpaca_fetch_instruments_when_crypto_asset_then_increments_and_minimum(
    venue: VenueCase,
) -> None:
    """alpaca-py Asset's price_increment, min_trade_increment and min_order_size."""
    adapter = venue.adapter
    assert isinstance(adapter, AlpacaAdapter)
    fetched = adapter.fetch_instruments([], ["BTCUSD"])
    btc = fetched.instruments["BTCUSD"]
    assert (btc.tick_size, btc.lot_size, btc.min_quantity) == (
        D(1),
        D("0.000000001"),
        D("0.0001"),
    )
    assert fetched.notes == ()


@on_alpaca
def test_alpaca_poll_when_equity_not_fractionable_then_lot_size_one(venue: VenueCase) -> None:
    """A whole-share equity (fractionable false) has lot 1; a fractionable one none; the
    option position is not asked about."""
    venue.stub.payloads["assets"]["TSLA"]["fractionable"] = False
    result = poll_and_build(venue)
    assert result.snapshot.instruments["TSLA"].lot_size == 1
    assert result.snapshot.instruments["AAPL"].lot_size is None
    assert not [s for s in venue.stub.requests if s.path.endswith("AAPL240119C00190000")]


@on_alpaca
def test_alpaca_poll_when_asset_endpoint_fails_then_poll_succeeds_without_rules(
    venue: VenueCase,
) -> None:
    """An error answer (404) for an asset leaves that symbol without rules, with a
    fallback naming the request; the poll still builds."""
    del venue.stub.payloads["assets"]["TSLA"]
    venue.stub.payloads["assets"]["AAPL"]["fractionable"] = False
    result = poll_and_build(venue)
    assert result.snapshot.instruments["TSLA"].lot_size is None
    assert result.snapshot.instruments["AAPL"].lot_size == 1
    (note,) = [f for f in result.fallbacks if f.where == "instruments['TSLA']"]
    assert "GET /v2/assets/TSLA" in note.reason and "404" in note.reason
