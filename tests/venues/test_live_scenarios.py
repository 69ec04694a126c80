"""Issue #12: what a real venue answers, through the real SDK, the adapter and the builder.

One body per scenario, run for every venue: a dust position, a position in an asset the
venue does not list, a malformed position row among good ones, the venue's benchmark
and an unknown symbol. One bad record is one unevaluable subject, never a blank snapshot.
"""

from __future__ import annotations

import pytest

from bastion.adapters.binance import BinanceAdapter
from bastion.adapters.builder import BuilderConfig, BuilderState, BuildResult, SnapshotBuilder
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.venue import UnknownSymbolError
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Regime
from bastion.engine.state import State
from tests.conftest import POLICIES
from tests.venues.conftest import FILLS_SINCE, NOW, VenueCase

CALM = Regime("calm", "low", NOW)
COMPILED = compile_policy_set(load_policy_set([POLICIES]))  # the shipped policies


def poll_and_build(venue: VenueCase) -> BuildResult:
    """One poll of the venue as the service does it, built into a snapshot."""
    config = BuilderConfig(benchmark=venue.facts.benchmark)
    builder = SnapshotBuilder(config)
    poll = builder.poll(venue.adapter, now=NOW, state=BuilderState())
    return builder.build(poll, now=NOW, state=BuilderState(), regime=CALM)


def test_poll_when_venue_answers_documented_payloads_then_snapshot_holds_positions(
    venue: VenueCase,
) -> None:
    """The documented payloads, benchmark included, give a snapshot with no unevaluable."""
    result = poll_and_build(venue)
    assert result.snapshot.positions
    assert result.unevaluable == ()
    assert venue.facts.benchmark in result.snapshot.market  # polled: the venue lists it


def test_fetch_fills_when_kraken_omits_count_then_pages_until_a_short_page(
    venue: VenueCase,
) -> None:
    """TradesHistory's `count` is optional: without it the trades are still read."""
    if venue.name != "kraken":
        pytest.skip("Kraken's TradesHistory only")
    venue.stub.payloads["trades_history"]["result"].pop("count")
    with_count = [fill.id for fill in venue.make().fetch_fills(FILLS_SINCE)]
    assert with_count == list(venue.facts.fill_ids)


def test_poll_when_dust_position_held_then_it_is_evaluated_at_a_positive_price(
    venue: VenueCase,
) -> None:
    """A position whose value rounds to 0 is priced from the quote, not refused."""
    assert venue.facts.add_dust is not None
    dust_id = venue.facts.add_dust(venue.stub)
    result = poll_and_build(venue)
    (dust,) = [p for p in result.snapshot.positions if p.id == dust_id]
    assert dust.price_usd > 0
    assert result.unevaluable == ()


@pytest.mark.parametrize("scenario", ["unlisted", "malformed"])
def test_poll_when_one_position_unusable_then_it_alone_is_unevaluable(
    venue: VenueCase, scenario: str
) -> None:
    """An unlisted asset or a malformed row is listed as unevaluable, with its reason;
    every other position is still in the snapshot."""
    good = {p.id for p in poll_and_build(venue).snapshot.positions}
    if scenario == "unlisted":
        assert venue.facts.add_unlisted is not None
        bad_id = venue.facts.add_unlisted(venue.stub)
        says = ""
    else:
        broken = venue.facts.malformed["positions"]
        venue.stub.delete_field(broken.path)
        says = broken.missing_says
        bad_id = next(
            p.id for p in venue.make().fetch_positions() if p.problem and says in p.problem
        )
    result = poll_and_build(venue)
    assert [u.id for u in result.unevaluable] == [bad_id]
    assert says in result.unevaluable[0].reason
    assert {p.id for p in result.snapshot.positions} == good - {bad_id}
    # ...and the engine fails safe on it: one decision naming it, its account REDUCING.
    decisions, state = evaluate(
        COMPILED, result.snapshot, State(), NOW, left_out=result.unevaluable
    )
    (left_out,) = [d for d in decisions if d.kind == "snapshot"]
    assert left_out.subject.id == bad_id
    assert left_out.outcome == "unevaluable"
    assert state.trading_state(result.unevaluable[0].account_id) in ("REDUCING", "HALTED")


def test_check_symbol_when_benchmark_listed_then_accepted(venue: VenueCase) -> None:
    """The venue's default benchmark is one the venue lists."""
    venue.adapter.check_symbol(venue.facts.benchmark)


def test_check_symbol_when_not_listed_then_unknown_symbol_names_symbol_and_venue(
    venue: VenueCase,
) -> None:
    """A symbol the venue does not list is an UnknownSymbolError naming it and the venue."""
    with pytest.raises(UnknownSymbolError) as caught:
        venue.adapter.check_symbol(venue.facts.unknown_symbol)
    assert caught.value.symbol == venue.facts.unknown_symbol
    assert caught.value.venue == venue.name
    assert venue.facts.unknown_symbol in str(caught.value)


def test_fetch_quote_when_symbol_unknown_then_error_names_request_and_symbol(
    venue: VenueCase,
) -> None:
    """The venue's own unknown-symbol answer becomes an error naming endpoint and symbol."""
    with pytest.raises(UnknownSymbolError) as caught:
        venue.adapter.fetch_quote(venue.facts.unknown_symbol)
    message = str(caught.value)
    assert message.startswith(f"{venue.name} ")
    assert venue.facts.unknown_symbol in message


def test_fetch_bars_when_symbol_unknown_on_binance_or_kraken_then_unknown_symbol(
    venue: VenueCase,
) -> None:
    """Binance's -1121 and Kraken's EQuery:Unknown asset pair name the pair asked for."""
    if venue.name == "alpaca":
        pytest.skip("Alpaca answers bars for an unknown symbol with an empty series")
    with pytest.raises(UnknownSymbolError, match=venue.facts.unknown_symbol):
        venue.adapter.fetch_bars(BarRequest(venue.facts.unknown_symbol, 60, limit=3))


def test_check_symbol_when_binance_answers_then_rate_limits_come_from_exchange_info(
    venue: VenueCase,
) -> None:
    """Binance's request-weight budget is read from exchangeInfo.rateLimits at start."""
    if not isinstance(venue.adapter, BinanceAdapter):
        pytest.skip("only Binance publishes its limits")
    assert "published defaults" in venue.adapter.request_weight_limit().published
    venue.stub.payloads["exchange_info"]["rateLimits"][0]["limit"] = 3000
    venue.adapter.check_symbol("BTCUSDT")
    limit = venue.adapter.request_weight_limit()
    assert limit.rate_per_s == pytest.approx(3000 * 0.9 / 60)
    assert "exchangeInfo" in limit.published
