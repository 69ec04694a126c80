"""SnapshotBuilder: every metric on small hand-checked inputs, missing data, and the state."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.builder import (
    BuilderConfig,
    BuilderState,
    BuildResult,
    Poll,
    SnapshotBuilder,
    SourceHealth,
)
from bastion.adapters.builder_state import EquityMarks
from bastion.adapters.market_metrics import Windows
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.venue import Fill, OptionContract, VenueAccount, VenuePosition
from bastion.engine.errors import DataError
from bastion.engine.evaluation.facts import market_metrics
from bastion.engine.indicators.atr import AtrSpec
from bastion.engine.indicators.greeks import bsm_price
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot import Regime

T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
# Three-bar windows, a four-bar baseline: eight bars feed every metric.
TINY = BuilderConfig(
    bar_interval_s=60,
    atr_interval_s=60,
    atr=AtrSpec(period=2),
    atr_history_bars=3,
    windows=Windows(recent_bars=3, correlation_bars=3, baseline_bars=4, min_correlation_points=3),
    benchmark="SPY",
    seconds_per_year=180.0,  # 3 bars a "year": annualising multiplies by √3
)
CALM = Regime("calm", "low", T0 - timedelta(days=1))
ACCOUNT = VenueAccount("acc-1", "gen", Decimal(1000), Decimal(400))


def bars_from(
    closes: Sequence[float | str], volumes: Sequence[int | None] | None = None, spread: str = "1"
) -> list[Bar]:
    """Bars one minute apart, the last one closing at T0; high/low = close ± spread."""
    start = T0 - MINUTE * len(closes)
    volumes = volumes if volumes is not None else [10] * len(closes)
    out = []
    for index, (close, volume) in enumerate(zip(closes, volumes, strict=True)):
        price = Decimal(str(close))
        out.append(
            Bar(
                start + MINUTE * index,
                price,
                price + Decimal(spread),
                price - Decimal(spread),
                price,
                None if volume is None else Decimal(volume),
            )
        )
    return out


def quote(symbol: str, last: str | None = "100", at: datetime = T0) -> Quote:
    return Quote(
        symbol, Decimal("99.9"), Decimal("100.1"), at, None if last is None else Decimal(last)
    )


def build(
    bars: dict[str, list[Bar]],
    *,
    config: BuilderConfig = TINY,
    state: BuilderState | None = None,
    now: datetime = T0,
    accounts: Sequence[VenueAccount] = (ACCOUNT,),
    positions: Sequence[VenuePosition] = (),
    fills: Sequence[Fill] = (),
    quotes: dict[str, Quote] | None = None,
    health: Sequence[SourceHealth] = (),
) -> BuildResult:
    poll = Poll(
        tuple(accounts),
        tuple(positions),
        bars,
        quotes if quotes is not None else {symbol: quote(symbol) for symbol in bars},
        tuple(fills),
    )
    return SnapshotBuilder(config).build(
        poll, now=now, state=state or BuilderState(), regime=CALM, health=health
    )


def flat(count: int = 8) -> list[Bar]:
    return bars_from([100] * count)


def fallback_fields(result: BuildResult) -> set[str]:
    return {fallback.where for fallback in result.fallbacks}


# -- market metrics --------------------------------------------------------------------


def test_build_when_returns_alternate_then_volatility_is_their_annualised_stdev() -> None:
    """Log returns +a, −a, +a: sample stdev a·√(4/3), × √3 per "year" = 2a."""
    up = str(100 * math.exp(0.01))
    closes = [100, up, 100, up, 100, up, 100, up]  # baseline returns alternate too
    market = build({"SPY": bars_from(closes)}).snapshot.market["SPY"]
    assert market.volatility == Decimal("0.020000")
    # baseline: 4 bars, 3 returns (+a, −a, +a), the same stdev
    assert market.normal_volatility == Decimal("0.020000")


def test_build_when_volumes_differ_then_volume_and_liquidity_compare_like_windows() -> None:
    """volume = Σ last 3; avg_volume = mean of the 4 baseline bars × 3; dollars likewise."""
    volumes = [10, 20, 30, 40, 1, 2, 3, 4]
    market = build({"SPY": bars_from([100] * 8, volumes)}).snapshot.market["SPY"]
    assert (market.volume, market.avg_volume) == (Decimal(9), Decimal(75))
    assert (market.liquidity_usd, market.normal_liquidity_usd) == (Decimal(900), Decimal(7500))


def test_build_when_symbol_moves_with_benchmark_then_correlation_is_pearson_of_returns() -> None:
    """Returns (1, 2, 3) % against (1, 3, 2) %: Pearson 0.5; the benchmark itself is 1."""

    def prices(returns: list[float]) -> list[str]:
        out, level = [], 100.0
        for value in [0.0, *returns]:
            level *= math.exp(value)
            out.append(str(level))
        return out

    own = prices([0.01, -0.01, 0.01, 0.02, 0.01, 0.02, 0.03])
    benchmark = prices([0.01, -0.01, 0.01, 0.02, 0.01, 0.03, 0.02])
    result = build({"AAPL": bars_from(own), "SPY": bars_from(benchmark)})
    assert result.snapshot.market["AAPL"].correlation == Decimal("0.5")
    assert result.snapshot.market["AAPL"].normal_correlation == Decimal(1)
    assert result.snapshot.market["SPY"].correlation == Decimal(1)


def test_build_when_every_true_range_is_two_then_atr_is_two() -> None:
    """High − low = 2 and no gaps: every true range, and so the Wilder ATR, is 2."""
    market = build({"SPY": flat()}).snapshot.market["SPY"]
    assert market.atr_usd == Decimal(2)


def test_build_when_quote_is_newer_than_bars_then_age_bid_ask_and_price_come_from_it() -> None:
    """Bars closed at T0; a quote at T0 + 3 s, polled at T0 + 12.5 s: age 9.5 s."""
    now = T0 + timedelta(seconds=12.5)
    quotes = {"SPY": quote("SPY", "100.05", T0 + timedelta(seconds=3))}
    market = build({"SPY": flat()}, now=now, quotes=quotes).snapshot.market["SPY"]
    assert market.data_age_s == Decimal("9.5")
    assert (market.bid_usd, market.ask_usd, market.price_usd) == (
        Decimal("99.9"),
        Decimal("100.1"),
        Decimal("100.05"),
    )


def test_build_when_quote_has_no_last_then_price_is_the_mid() -> None:
    """Without a last trade the price is the mid of bid and ask."""
    market = build({"SPY": flat()}, quotes={"SPY": quote("SPY", None)}).snapshot.market["SPY"]
    assert market.price_usd == Decimal(100)


def test_build_when_one_bar_is_missing_then_quality_drops_by_completeness() -> None:
    """Eight clean bars score 1; one missing bar leaves 8 of 9 expected: 0.8888 (floored)."""
    assert build({"SPY": flat()}).snapshot.market["SPY"].quality_score_ratio == Decimal(1)
    gapped = flat(9)
    del gapped[4]
    market = build({"SPY": gapped}).snapshot.market["SPY"]
    assert market.quality_score_ratio == Decimal("0.8888")


# -- missing data -----------------------------------------------------------------------


def test_build_when_history_too_short_then_baselines_zero_and_engine_cannot_compare() -> None:
    """Five bars: no baseline; normal values are 0, listed, and the ratios drop out."""
    result = build({"SPY": flat(5)})
    market = result.snapshot.market["SPY"]
    assert market.normal_volatility == market.avg_volume == market.normal_liquidity_usd == 0
    assert market.volatility == 0  # a flat series: stdev 0, a real value
    assert {"market[SPY].normal_volatility", "market[SPY].avg_volume"} <= fallback_fields(result)
    facts = market_metrics(market)
    assert "volatility_multiple" not in facts and "volume_multiple" not in facts


def test_build_when_bars_lack_volume_then_volume_fallback_is_listed() -> None:
    """A bar without volume: volume and avg_volume unknown, written 0, never a zero ratio."""
    result = build({"SPY": bars_from([100] * 8, [10, 10, 10, 10, 10, 10, 10, None])})
    market = result.snapshot.market["SPY"]
    assert market.volume == market.avg_volume == 0
    assert "market[SPY].volume" in fallback_fields(result)
    assert "volume_multiple" not in market_metrics(market)


def test_build_when_too_few_atr_bars_then_atr_zero_and_fallback_listed() -> None:
    """Two bars cannot seed ATR(2): 0, which the escalation pass reports as unevaluable."""
    result = build({"SPY": flat(2)})
    assert result.snapshot.market["SPY"].atr_usd == 0
    assert "market[SPY].atr_usd" in fallback_fields(result)


def test_build_when_benchmark_has_no_bars_then_correlations_fall_back() -> None:
    """No SPY bars in the poll: AAPL's correlation and its baseline are unknown."""
    result = build({"AAPL": flat()})
    assert result.snapshot.market["AAPL"].normal_correlation == 0
    assert "market[AAPL].correlation" in fallback_fields(result)


@pytest.mark.parametrize(
    ("bad_quote", "named"),
    [
        (Quote("SPY", Decimal(101), Decimal(100), T0), "bid_usd 101 > ask_usd 100"),
        (Quote("SPY", Decimal(0), Decimal(100), T0), "bid_usd 0"),
        (Quote("SPY", Decimal(99), Decimal(100), T0 + timedelta(seconds=30)), "after now"),
    ],
)
def test_build_when_quote_is_unusable_then_data_error_names_symbol(
    bad_quote: Quote, named: str
) -> None:
    """Crossed, non-positive or future quotes are refused, never repaired."""
    with pytest.raises(DataError, match=named) as caught:
        build({"SPY": flat()}, quotes={"SPY": bad_quote})
    assert "SPY" in str(caught.value)


def test_build_when_symbol_has_bars_but_no_quote_then_data_error() -> None:
    """bid and ask come only from a quote."""
    with pytest.raises(DataError, match="AAPL: no quote"):
        build({"AAPL": flat(), "SPY": flat()}, quotes={"SPY": quote("SPY")})


def test_build_when_no_health_given_then_system_fallback_listed() -> None:
    """Without health the system part says so; with it, rates come from the counts."""
    assert "system" in fallback_fields(build({"SPY": flat()}))
    health = [
        SourceHealth("venue", 40, 3, T0 - timedelta(seconds=20)),
        SourceHealth("backup", 10, 2, T0 - timedelta(seconds=900)),
    ]
    system = build({"SPY": flat()}, health=health).snapshot.system
    assert system.error_rate_pct == Decimal(10)  # 5 of 50
    assert system.connectivity_ratio == Decimal("0.5")  # backup last answered 15 min ago
    assert system.data_age_s == Decimal(900)


# -- order flow -------------------------------------------------------------------------


def fill(
    fill_id: str,
    seconds_ago: float,
    *,
    side: str = "buy",
    price: str = "100",
    expected: str | None = "100",
    pnl: str | None = None,
    strategy: str = "s1",
) -> Fill:
    return Fill(
        fill_id,
        "acc-1",
        "SPY",
        side,
        Decimal(1),
        Decimal(price),
        T0 - timedelta(seconds=seconds_ago),
        expected_price_usd=None if expected is None else Decimal(expected),
        strategy_id=strategy,
        realized_pnl_usd=None if pnl is None else Decimal(pnl),
    )


def test_build_when_fills_recent_then_orders_slippage_and_losses_per_strategy() -> None:
    """3 fills inside 60 s; slippage +10 and −5 bps averages 2.5; losses −,−,+,−,− → 2."""
    fills = [
        fill("a", 200, expected=None, pnl="-1"),
        fill("b", 150, expected=None, pnl="-2"),
        fill("c", 100, expected=None, pnl="3"),
        fill("d", 50, price="100.10", pnl="-1"),  # bought 10 bps above the expected price
        fill("e", 30, side="sell", price="100.05", pnl="-1"),  # sold 5 bps better
        fill("f", 10, expected=None),
    ]
    flow = build({"SPY": flat()}, fills=fills).snapshot.order_flow
    assert len(flow) == 1
    assert flow[0].orders_last_minute == 3
    assert flow[0].slippage_bps == Decimal("2.5")  # only d and e carry an expected price
    assert flow[0].consecutive_losses == 2


def test_build_when_same_fill_polled_twice_then_loss_counted_once() -> None:
    """Overlapping polls return a fill again: the watermark keeps the streak honest."""
    first = build({"SPY": flat()}, fills=[fill("x", 5, pnl="-1")])
    second = build({"SPY": flat()}, fills=[fill("x", 5, pnl="-1")], state=first.state)
    assert second.snapshot.order_flow[0].consecutive_losses == 1
    third = build(
        {"SPY": flat()},
        fills=[fill("x", 5, pnl="-1"), fill("y", 1, pnl="-4")],
        state=second.state,
    )
    assert third.snapshot.order_flow[0].consecutive_losses == 2


def test_build_when_streak_but_no_recent_fills_then_pair_still_listed() -> None:
    """A losing streak stays visible to the breaker after the fills leave the window."""
    first = build({"SPY": flat()}, fills=[fill("x", 5, pnl="-1")])
    later = build({"SPY": flat()}, state=first.state, now=T0 + timedelta(hours=1))
    (flow,) = later.snapshot.order_flow
    assert (flow.orders_last_minute, flow.slippage_bps, flow.consecutive_losses) == (0, 0, 1)


def test_build_when_fill_names_unknown_account_then_data_error_names_fill() -> None:
    """A fill for an account the poll does not hold is refused."""
    stray = replace(fill("z", 1), account_id="ghost")
    with pytest.raises(DataError, match="fill z: account_id 'ghost'"):
        build({"SPY": flat()}, fills=[stray])


# -- accounts and positions -------------------------------------------------------------


def test_build_when_venue_gives_no_marks_then_day_start_and_peak_tracked_across_polls() -> None:
    """Day start = first equity of the day; peak only rises; a new day starts afresh."""
    state = BuilderState()
    seen = []
    for hours, equity in ((0, 1000), (1, 1100), (2, 900), (24, 950)):
        account = replace(ACCOUNT, equity_usd=Decimal(equity))
        now = T0 + timedelta(hours=hours)
        result = build({"SPY": flat()}, accounts=[account], state=state, now=now)
        state = result.state
        (snapshot_account,) = result.snapshot.accounts
        seen.append((snapshot_account.day_start_equity_usd, snapshot_account.peak_equity_usd))
    assert seen == [(1000, 1000), (1000, 1100), (1000, 1100), (950, 1100)]


def test_build_when_venue_reports_marks_then_they_win_over_tracking() -> None:
    """Alpaca's last_equity is the day start: the builder does not second-guess it."""
    account = replace(ACCOUNT, day_start_equity_usd=Decimal(1200), peak_equity_usd=Decimal(1500))
    result = build({"SPY": flat()}, accounts=[account])
    (snapshot_account,) = result.snapshot.accounts
    assert (snapshot_account.day_start_equity_usd, snapshot_account.peak_equity_usd) == (1200, 1500)
    assert not any(f.where.startswith("accounts") for f in result.fallbacks)


def position(**changes: object) -> VenuePosition:
    base = VenuePosition(
        "p-1", "acc-1", "SPY", "equity", Decimal(10), "long", Decimal(95), Decimal(100)
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_build_when_entry_time_unknown_then_first_seen_time_is_kept() -> None:
    """A position without entered_at keeps the time it was first seen, poll after poll."""
    first = build({"SPY": flat()}, positions=[position()])
    now = T0 + timedelta(minutes=5)
    later = build({"SPY": flat()}, positions=[position()], state=first.state, now=now)
    assert later.snapshot.positions[0].entered_at == T0
    assert "positions[*].entered_at" in fallback_fields(later)  # one line for them all


PUT = OptionContract(
    "put", Decimal(95), T0 + timedelta(days=30), "SPY", implied_volatility=Decimal("0.2")
)


def test_build_when_option_held_then_leg_has_underlying_price_and_no_delta() -> None:
    """The leg carries the contract, the underlying's price and IV; delta is the engine's."""
    option = position(
        id="put-1",
        symbol="SPY240403P00095000",
        asset_class="option",
        side="short",
        entry_price_usd=Decimal(2),
        price_usd=Decimal(2),
        option=PUT,
    )
    leg = build({"SPY": flat()}, positions=[option]).snapshot.positions[0].option
    assert leg is not None
    assert (leg.strike_usd, leg.underlying_price_usd, leg.implied_volatility) == (
        95,
        100,
        Decimal("0.2"),
    )
    assert leg.delta is None


def test_build_when_option_lacks_iv_then_iv_implied_from_its_mark() -> None:
    """No IV from the venue: the IV that reproduces the mark is used, and listed."""
    mark = bsm_price("put", spot=100, strike=95, time_years=30 / 365, rate=0.04, volatility=0.3)
    contract = replace(PUT, implied_volatility=None)
    option = position(
        id="put-1",
        symbol="SPY240403P00095000",
        asset_class="option",
        price_usd=Decimal(repr(mark)),
        option=contract,
    )
    result = build({"SPY": flat()}, positions=[option])
    leg = result.snapshot.positions[0].option
    assert leg is not None and leg.implied_volatility == Decimal("0.3")
    assert "positions[put-1].option.implied_volatility" in fallback_fields(result)


def test_build_when_option_mark_impossible_and_no_iv_then_position_unevaluable() -> None:
    """A put marked above its strike implies no volatility: left out, naming the position."""
    contract = replace(PUT, implied_volatility=None)
    option = position(id="put-1", asset_class="option", price_usd=Decimal(500), option=contract)
    result = build({"SPY": flat()}, positions=[option, position(id="p-ok")])
    assert [p.id for p in result.snapshot.positions] == ["p-ok"]
    (left_out,) = result.unevaluable
    assert left_out.id == "put-1"
    assert "position put-1: the venue gives no implied_volatility" in left_out.reason


def test_build_when_option_underlying_not_polled_then_position_unevaluable() -> None:
    """Without the underlying's market the leg has no underlying price: that leg alone."""
    option = position(
        id="put-1", asset_class="option", option=replace(PUT, underlying_symbol="QQQ")
    )
    result = build({"SPY": flat()}, positions=[option, position(id="p-ok")])
    assert [p.id for p in result.snapshot.positions] == ["p-ok"]
    assert "put-1: no market data for the underlying QQQ" in result.unevaluable[0].reason


# -- state ------------------------------------------------------------------------------


def test_from_dict_when_state_round_tripped_through_json_then_equal() -> None:
    """to_dict → JSON → from_dict gives the same state, version included."""
    state = BuilderState(
        equity={"acc-1": EquityMarks(T0.date(), Decimal("1000.50"), Decimal(1100))},
        losing_streaks={("acc-1", "s1"): 3},
        fills_seen_until=T0,
        fill_ids_at_watermark=frozenset({"a", "b"}),
        first_seen={"p-1": T0 - MINUTE},
        polled_until=T0,
    )
    data = json.loads(json.dumps(state.to_dict()))
    assert data["version"] == 1
    assert BuilderState.from_dict(data) == state


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 99}, "version 99 is not supported"),
        ({"version": 1, "equity": {"a": {"day": "x"}}}, "malformed"),
    ],
)
def test_from_dict_when_state_unreadable_then_data_error_says_start_afresh(
    data: dict[str, object], message: str
) -> None:
    """A state from another version or a damaged file is refused with the fix."""
    with pytest.raises(DataError, match=message) as caught:
        BuilderState.from_dict(data)
    assert "start afresh" in str(caught.value)


# -- poll -------------------------------------------------------------------------------


class RecordingAdapter:
    """Answers with flat bars and remembers what was asked."""

    name = "recording"

    def __init__(self) -> None:
        self.bar_requests: list[BarRequest] = []
        self.fills_since: list[datetime] = []

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        return (ACCOUNT,)

    def fetch_positions(self) -> Sequence[VenuePosition]:
        return (position(symbol="AAPL"), position(id="o-1", asset_class="option", option=PUT))

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        self.fills_since.append(since)
        return ()

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        self.bar_requests.append(request)
        return flat()

    def fetch_quote(self, symbol: str) -> Quote:
        return quote(symbol)


def test_poll_when_positions_held_then_fetches_their_symbols_benchmarks_and_fills() -> None:
    """Positions, option underlyings and benchmarks are polled with the bars each needs."""
    adapter = RecordingAdapter()
    builder = SnapshotBuilder(replace(TINY, atr_interval_s=86_400))
    poll = builder.poll(adapter, now=T0, state=BuilderState())
    assert sorted(poll.quotes) == ["AAPL", "SPY"]
    asked = {(r.symbol, r.interval_s, r.limit) for r in adapter.bar_requests}
    assert asked == {
        ("AAPL", 60, 8), ("SPY", 60, 8), ("AAPL", 86_400, 3), ("SPY", 86_400, 3)
    }  # fmt: skip
    result = builder.build(poll, now=T0, state=BuilderState(), regime=CALM)
    builder.poll(adapter, now=T0 + timedelta(hours=1), state=result.state)
    assert adapter.fills_since == [T0 - timedelta(seconds=300), T0]  # back to the last poll
