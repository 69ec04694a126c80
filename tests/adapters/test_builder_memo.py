"""The builder's memos (bar metrics per symbol, known-valid texts) change no build.

`builder_market.from_bars` reuses what a symbol's record took from its bars while the
very same bar objects come again, and `typed.Checked` carries the texts already found
valid from poll to poll. Either way, a build equals a fresh builder's build of the same
poll: the same snapshot and the same fallbacks, in the same order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bastion.adapters import builder_market
from bastion.adapters.builder import BuilderConfig, BuilderState, BuildResult, Poll, SnapshotBuilder
from bastion.adapters.market_metrics import Windows
from bastion.adapters.sources.base import Quote
from bastion.adapters.venue import VenueAccount, VenuePosition
from bastion.engine.errors import SnapshotError
from bastion.engine.indicators.atr import AtrSpec
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot import Regime

T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CONFIG = BuilderConfig(
    atr=AtrSpec(period=2),
    atr_history_bars=3,
    windows=Windows(recent_bars=3, correlation_bars=3, baseline_bars=4, min_correlation_points=3),
    benchmark="SPY",
)
CALM = Regime("calm", "low", T0 - timedelta(days=1))


def _bars(closes: list[int], end: datetime = T0) -> tuple[Bar, ...]:
    start = end - MINUTE * len(closes)
    return tuple(
        Bar(start + MINUTE * n, Decimal(c), Decimal(c + 1), Decimal(c - 1), Decimal(c), Decimal(10))
        for n, c in enumerate(closes)
    )


def _poll(bars: dict[str, tuple[Bar, ...]], strategy: str = "s-1") -> Poll:
    quotes = {
        s: Quote(s, series[-1].close - 1, series[-1].close + 1, T0) for s, series in bars.items()
    }
    positions = tuple(
        VenuePosition(
            f"P-{s}",
            "acc-1",
            s,
            "equity",
            Decimal(2),
            "long",
            Decimal(90),
            Decimal(100),
            T0,
            strategy_id=strategy,
        )
        for s in bars
    )
    accounts = (VenueAccount("acc-1", "gen", Decimal(10_000), Decimal(500)),)
    return Poll(accounts, positions, bars, quotes)


def _build(builder: SnapshotBuilder, poll: Poll) -> BuildResult:
    return builder.build(poll, now=T0, state=BuilderState(), regime=CALM)


def _same(result: BuildResult, expected: BuildResult) -> None:
    assert result.snapshot == expected.snapshot
    assert result.fallbacks == expected.fallbacks
    assert result.unevaluable == expected.unevaluable


BARS = {
    "SPY": _bars([100, 101, 102, 101, 103, 104, 103, 105]),
    "AAA": _bars([50, 52, 51, 53, 52, 54, 55, 53]),
    "BBB": _bars([20, 21]),  # too few bars: ATR and every baseline fall back (listed)
}


def test_build_when_same_poll_built_again_then_same_result_as_a_fresh_builder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second build of one poll reuses every symbol's bar metrics: same snapshot,
    same fallbacks (those of the short BBB series included), as a fresh builder's."""
    worked_out: list[str] = []
    original = builder_market._from_bars

    def counted(context: Any, symbol: str, *args: Any) -> dict[str, Decimal]:
        worked_out.append(symbol)
        return original(context, symbol, *args)

    monkeypatch.setattr(builder_market, "_from_bars", counted)
    builder = SnapshotBuilder(CONFIG)
    first = _build(builder, _poll(BARS))
    assert any(f.where.startswith("market[BBB]") for f in first.fallbacks)
    assert sorted(worked_out) == sorted(BARS)
    _same(_build(builder, _poll(BARS)), first)
    assert len(worked_out) == len(BARS)  # the second build worked nothing out again
    _same(_build(builder, _poll(BARS)), _build(SnapshotBuilder(CONFIG), _poll(BARS)))


@pytest.mark.parametrize("change", ["moved on", "revised bar", "benchmark moved on"])
def test_build_when_bars_change_then_same_result_as_a_fresh_builder(change: str) -> None:
    """A window that lost its first bar, a bar revised in the middle (a new object with
    another close), or only the benchmark's window changed: the memo is not used."""
    builder = SnapshotBuilder(CONFIG)
    _build(builder, _poll(BARS))
    bars = dict(BARS)
    if change == "moved on":  # the same bar objects but the first: another window
        bars["AAA"] = BARS["AAA"][1:]
    elif change == "revised bar":
        middle = BARS["AAA"][4]
        revised = replace(middle, close=middle.close + 1, high=middle.high + 1)
        bars["AAA"] = (*BARS["AAA"][:4], revised, *BARS["AAA"][5:])
    else:
        bars["SPY"] = BARS["SPY"][1:]
    _same(_build(builder, _poll(bars)), _build(SnapshotBuilder(CONFIG), _poll(bars)))


def test_build_when_bad_text_follows_good_polls_then_still_refused() -> None:
    """Texts found valid are remembered, not texts seen: a control character in the next
    poll's strategy id refuses that snapshot as a fresh builder does."""
    builder = SnapshotBuilder(CONFIG)
    _build(builder, _poll(BARS))
    with pytest.raises(SnapshotError, match="strategy_id") as raised:
        _build(builder, _poll(BARS, strategy="s\x001"))
    with pytest.raises(SnapshotError) as fresh:
        _build(SnapshotBuilder(CONFIG), _poll(BARS, strategy="s\x001"))
    assert str(raised.value) == str(fresh.value)


def test_build_when_the_same_chain_fetch_comes_again_then_chains_reused_and_equal() -> None:
    """The sim's chain is read every five market minutes: the polls in between hand the
    builder the same fetch, whose chains it checked once; the snapshot equals a fresh
    builder's, chains and fallbacks alike. A new fetch is checked again."""
    from bastion.adapters.sim import SimAdapter  # noqa: PLC0415 - the sim's whole book
    from bastion.adapters.sources.clock import ManualClock  # noqa: PLC0415

    wall = ManualClock(T0)
    sim = SimAdapter(wall, speed=60, seed=7)
    builder, state = SnapshotBuilder(sim.builder_config()), BuilderState()

    def build(using: SnapshotBuilder, poll: Poll, now: datetime) -> BuildResult:
        return using.build(poll, now=now, state=state, regime=sim.regime(), health=sim.health())

    wall.advance(15)
    now = sim.hold()
    first_poll = builder.poll(sim, now=now, state=state)
    first = build(builder, first_poll, now)
    assert first.snapshot.option_chains  # the sim's option positions' underlyings
    wall.advance(1)  # one market minute: the chain cache hands back the same fetch
    now = sim.hold()
    poll = builder.poll(sim, now=now, state=state)
    assert poll.option_chains is first_poll.option_chains
    again = build(builder, poll, now)
    fresh = build(SnapshotBuilder(sim.builder_config()), poll, now)
    assert again.snapshot.option_chains is first.snapshot.option_chains
    assert again.snapshot == fresh.snapshot
    assert again.fallbacks == fresh.fallbacks
    wall.advance(5)  # past the refresh: a new fetch, checked again
    now = sim.hold()
    later = build(builder, builder.poll(sim, now=now, state=state), now)
    assert later.snapshot.option_chains is not first.snapshot.option_chains
