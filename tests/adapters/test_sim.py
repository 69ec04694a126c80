"""The sim adapter: determinism, speed, the portfolio, and the "within a minute" tour."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.sim import SimAdapter
from bastion.adapters.sim_market import DEFAULT_SYMBOLS, SyntheticMarket
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.decision import Decision
from bastion.engine.errors import DataError
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate, polling_interval_s
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.state import State
from tests.conftest import POLICIES

SPEED = 60.0  # one market minute per wall second
MINUTE_BARS = BarRequest("SPY", 60, limit=500)


def sim(seed: int = 7, speed: float = SPEED) -> tuple[SimAdapter, ManualClock]:
    wall = ManualClock()
    return SimAdapter(wall, speed=speed, seed=seed), wall


def observe(adapter: SimAdapter) -> tuple[object, ...]:
    """Everything the adapter answers right now."""
    return (
        tuple(adapter.fetch_bars(MINUTE_BARS)),
        tuple(adapter.fetch_bars(BarRequest("BTC-USD", 86_400, limit=20))),
        tuple(adapter.fetch_quote(symbol) for symbol in adapter.symbols),
        tuple(adapter.fetch_accounts()),
        tuple(adapter.fetch_positions()),
        tuple(adapter.fetch_fills(adapter.clock.start - timedelta(days=1))),
        adapter.regime(),
    )


def test_fetch_when_same_seed_then_every_answer_is_identical() -> None:
    """Two sims with one seed answer alike, poll after poll, through the sell-off."""
    first, first_wall = sim()
    second, second_wall = sim()
    for _ in range(4):
        assert observe(first) == observe(second)
        first_wall.advance(12)
        second_wall.advance(12)


def test_fetch_bars_when_seeds_differ_then_markets_differ() -> None:
    """Another seed draws another market."""
    assert sim(7)[0].fetch_bars(MINUTE_BARS) != sim(8)[0].fetch_bars(MINUTE_BARS)


def test_fetch_when_polled_often_or_once_then_market_is_the_same() -> None:
    """The market does not depend on when it is asked: minute by minute or all at once."""
    often, often_wall = sim()
    once, once_wall = sim()
    for _ in range(30):
        often_wall.advance(1)
        often.fetch_quote("SPY")
    once_wall.advance(30)
    assert observe(often) == observe(once)


def test_now_when_wall_clock_advances_then_market_runs_speed_times_faster() -> None:
    """At speed 60, 2.5 wall seconds are 150 market seconds: two more minute bars."""
    adapter, wall = sim()
    before = adapter.fetch_bars(MINUTE_BARS)
    wall.advance(2.5)
    assert adapter.now() - adapter.clock.start == timedelta(seconds=150)
    after = adapter.fetch_bars(MINUTE_BARS)
    assert after[-1].timestamp - before[-1].timestamp == timedelta(minutes=2)


def test_fetch_positions_when_started_then_three_account_types_and_a_short_put() -> None:
    """gen, rev and com accounts; equity, crypto and option positions; fills with slippage."""
    adapter, wall = sim()
    accounts = adapter.fetch_accounts()
    assert sorted(a.type for a in accounts) == ["com", "gen", "rev"]
    positions = adapter.fetch_positions()
    assert {p.asset_class for p in positions} == {"equity", "crypto", "option"}
    puts = [p for p in positions if p.option is not None and p.option.option_type == "put"]
    assert puts and all(p.side == "short" for p in puts)
    wall.advance(30)
    fills = adapter.fetch_fills(adapter.clock.start)
    assert fills and all(f.expected_price_usd is not None for f in fills)
    assert any(f.price_usd != f.expected_price_usd for f in fills)


def test_fetch_when_unknown_symbol_or_interval_then_data_error() -> None:
    """The sim names what it trades and which intervals it serves."""
    adapter, _ = sim()
    with pytest.raises(DataError, match="sim has no symbol 'TSLA'"):
        adapter.fetch_quote("TSLA")
    with pytest.raises(DataError, match="intervals that divide a day"):
        adapter.fetch_bars(BarRequest("SPY", 7 * 60))


def test_regime_when_switching_without_script_then_calm_and_volatile_both_occur() -> None:
    """After the first hour a Markov chain flips regimes: two days show both."""
    start = datetime(2024, 1, 2, tzinfo=UTC)
    market = SyntheticMarket(start, symbols=DEFAULT_SYMBOLS[:1], script=(), switching=True)
    seen = set()
    for hour in range(48):
        regime, _ = market.regime(start + timedelta(hours=hour))
        seen.add(regime.name)
    assert seen == {"calm", "volatile"}


# -- the tour: what a newcomer sees in the first minute of `make run` -------------------


@dataclass(frozen=True)
class Seen:
    wall_s: float  # wall seconds since the start, at speed 60
    market_s: float
    decision: Decision


@dataclass(frozen=True)
class Tour:
    seen: tuple[Seen, ...]
    intervals_s: tuple[float, ...]  # market seconds to the next poll, as the engine said

    def first(self, kind: str, *outcomes: str) -> Seen | None:
        return next(
            (s for s in self.seen if s.decision.kind == kind and s.decision.outcome in outcomes),
            None,
        )


def run_tour(policies: CompiledPolicySet, seed: int = 7, wall_limit_s: float = 60) -> Tour:
    """Poll, build, evaluate at the cadence the engine asks for, on a fake wall clock."""
    adapter, wall = sim(seed)
    builder = SnapshotBuilder(adapter.builder_config())
    builder_state, state = BuilderState(), State()
    seen: list[Seen] = []
    intervals: list[float] = []
    wall_s = 0.0
    while wall_s <= wall_limit_s:
        now = adapter.now()
        poll = builder.poll(adapter, now=now, state=builder_state)
        built = builder.build(
            poll, now=now, state=builder_state, regime=adapter.regime(), health=adapter.health()
        )
        builder_state = built.state
        decisions, state = evaluate(policies, built.snapshot, state, now)
        market_s = (now - adapter.clock.start).total_seconds()
        seen += [Seen(wall_s, market_s, decision) for decision in decisions]
        interval_s = float(polling_interval_s(policies, state))
        intervals.append(interval_s)
        wall.advance(interval_s / SPEED)
        wall_s += interval_s / SPEED
    return Tour(tuple(seen), tuple(intervals))


@pytest.fixture(scope="module")
def policies() -> Iterator[CompiledPolicySet]:
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    yield compiled
    compiled.close()


@pytest.fixture(scope="module")
def tour(policies: CompiledPolicySet) -> Tour:
    return run_tour(policies)


def test_run_tour_when_speed_60_then_trip_roll_and_escalation_within_a_minute(
    tour: Tour,
) -> None:
    """The default policies trip a breaker, decide a roll and escalate within 60 wall s."""
    trip = tour.first("breaker", "trip")
    roll = tour.first("roll", "roll", "no_economic_roll")
    escalation = tour.first("escalation", "escalate")
    assert trip is not None and roll is not None and escalation is not None
    assert max(trip.wall_s, roll.wall_s, escalation.wall_s) <= 60


def test_run_tour_when_market_calm_then_first_ten_seconds_are_quiet(tour: Tour) -> None:
    """The ten calm minutes before the sell-off produce no decision at all."""
    assert all(s.market_s > 600 for s in tour.seen)


def test_run_tour_when_position_escalates_then_polling_speeds_up(tour: Tour) -> None:
    """Normal level polls every 300 market s; an escalated position brings it to 60 or 30."""
    assert tour.intervals_s[0] == 300
    assert min(tour.intervals_s) <= 60


def test_run_tour_when_repeated_then_decisions_are_identical(
    tour: Tour, policies: CompiledPolicySet
) -> None:
    """Same seed, same policies: the same decisions at the same moments."""
    again = run_tour(policies, wall_limit_s=30)
    prefix = [s for s in tour.seen if s.wall_s <= 30]
    assert [(s.wall_s, s.decision.to_dict()) for s in again.seen] == [
        (s.wall_s, s.decision.to_dict()) for s in prefix
    ]
