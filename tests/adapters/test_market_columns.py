"""market_columns and column_metrics: every value is the reference's, bit for bit.

Seeded generated series — random walks with prices of 0 to 8 places, volumes of many
exponents (and -0, 0, none, negative ones), constant stretches, gaps, repeated and
out-of-order stamps, stamps on a zone with summer time — slid bar by bar through one
ColumnsMemo (and jumped, shrunk, revised); at each step every window the builder asks
for, and others, is compared with the reference: equal with the same digits and
exponent (repr), or None (the builder then asks the reference). A fast path given a
wrong bound is caught by the same comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from functools import partial
from itertools import pairwise
from random import Random
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bastion.adapters import column_batch
from bastion.adapters import column_metrics as columns
from bastion.adapters import market_metrics as metrics
from bastion.adapters.builder import BuilderConfig, BuilderState, Poll, SnapshotBuilder
from bastion.adapters.market_columns import (
    ColumnsMemo,
    Floats,
    Prepared,
    SeriesColumns,
    columns_of,
)
from bastion.adapters.market_metrics import Windows
from bastion.adapters.sources.base import Quote
from bastion.adapters.venue import VenueAccount, VenuePosition
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot import Regime

START = datetime(2024, 3, 8, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
YEAR_S = metrics.SECONDS_PER_YEAR_24X7
POINTS = 4


def _volume(rng: Random) -> Decimal | None:
    pick = rng.random()
    if pick < 0.02:
        return None
    if pick < 0.03:
        return Decimal(-rng.randint(1, 50))
    if pick < 0.05:
        return Decimal("-0")
    if pick < 0.08:
        return Decimal(0).scaleb(rng.randint(-3, 3))
    return Decimal(rng.randint(1, 10**6)).scaleb(rng.randint(-4, 3))


def _series(rng: Random, count: int, *, odd: bool) -> list[Bar]:
    """A random walk; ``odd``: with the stamp and volume faults as well."""
    zone = rng.choice([UTC, timezone(timedelta(hours=-5)), ZoneInfo("America/New_York")])
    stamp = START.astimezone(zone) if odd else START
    places = rng.randint(0, 8)
    close = Decimal(rng.randint(20, 900))
    bars = []
    flat = 0
    for _ in range(count):
        if flat:
            flat -= 1  # a constant stretch: returns of 0, no variance
        elif rng.random() < 0.02:
            flat = rng.randint(3, 40)
        else:
            close = max(Decimal(1), close * Decimal(1 + rng.uniform(-0.01, 0.01)))
        price = close.quantize(Decimal(1).scaleb(-places))
        volume = _volume(rng) if odd else Decimal(rng.randint(1, 10**5)).scaleb(-places % 3)
        bars.append(Bar(stamp, price, price, price, price, volume))
        step = MINUTE
        if odd and rng.random() < 0.05:
            step = rng.choice([0 * MINUTE, -MINUTE, 3 * MINUTE, 7 * MINUTE])
        stamp += step
    return bars


def _steps(bars: list[Bar], rng: Random, width: int) -> Iterator[list[Bar]]:
    """Windows of ``bars`` as polls see them: moved on by a bar or two, jumped, shrunk,
    grown, with a revised bar (a new object) now and then."""
    end = width
    while end <= len(bars):
        window = bars[max(0, end - width) : end]
        if rng.random() < 0.05 and window:
            row = rng.randrange(len(window))
            window[row] = replace(window[row], close=window[row].close + 1)
        yield window
        end += rng.choice([1, 1, 1, 2, 0, 17])
        width = max(2, width + rng.choice([0, 0, 0, 1, -1]))


def _windows(count: int, rng: Random) -> list[tuple[int, int]]:
    """(start, stop) of the builder's windows (small ones) and random others."""
    spans = [(count - 6, count), (count - 9, count), (count - 5, count), (0, count)]
    spans += [(count - 21, count - 9), (max(0, count - 20), max(0, count - 8))]
    for _ in range(4):
        start = rng.randrange(0, max(1, count - 1))
        spans.append((start, rng.randrange(start + 1, count + 1)))
    return [(start, stop) for start, stop in spans if 0 <= start < stop <= count]


def _same(fast: object, reference: object) -> bool:
    """None, or the reference's value; where the reference raises (repeated stamps can
    leave a window one return: its volatility divides by 0), None."""
    if isinstance(reference, Exception):
        return fast is None or type(fast) is type(reference)
    return fast is None or repr(fast) == repr(reference)


def _or_error(work: Callable[[], object]) -> object:
    try:
        return work()
    except ArithmeticError as error:
        return error


def _mismatches(
    own: SeriesColumns, bars: list[Bar], bench: SeriesColumns, benchmark: list[Bar], rng: Random
) -> tuple[list[str], int]:
    """(the windows where the fast value is not the reference's, how many had one)."""
    wrong, answered = [], 0
    returns = metrics.log_returns(benchmark) if len(benchmark) > 1 else {}
    for start, stop in _windows(len(bars), rng):
        window = bars[start:stop]
        need = stop - start - 1
        checks: list[tuple[str, object, object]] = []
        if need >= 2:
            checks.append(
                (
                    "volatility",
                    columns.volatility(own, start, stop, 60, YEAR_S),
                    _or_error(partial(metrics.volatility, window, 60, YEAR_S, need=need)),
                )
            )
        for dollars in (False, True):
            checks.append(
                (
                    f"window_volume dollars={dollars}",
                    _or_error(partial(columns.window_volume, own, start, stop, dollars=dollars)),
                    _or_error(
                        partial(metrics.window_volume, window, need=stop - start, dollars=dollars)
                    ),
                )
            )
            checks.append(
                (
                    f"average dollars={dollars}",
                    _or_error(
                        partial(
                            columns.average_window_volume,
                            own,
                            start,
                            stop,
                            window_bars=5,
                            dollars=dollars,
                        )
                    ),
                    _or_error(
                        partial(
                            metrics.average_window_volume,
                            window,
                            window_bars=5,
                            need=stop - start,
                            dollars=dollars,
                        )
                    ),
                )
            )
        if need >= 1 and returns:
            checks.append(
                (
                    "correlation",
                    columns.correlation(own, start, stop, bench, min_points=POINTS),
                    _or_error(
                        partial(
                            metrics.correlation,
                            window,
                            benchmark,
                            need=need,
                            min_points=POINTS,
                            benchmark_returns=returns,
                        )
                    ),
                )
            )
        for name, fast, reference in checks:
            answered += fast is not None and not isinstance(fast, Exception)
            if not _same(fast, reference):
                wrong.append(f"{name} [{start}:{stop}] fast {fast!r}, reference {reference!r}")
    return wrong, answered


def _run(seed: int, *, odd: bool, precision: int | None = None) -> tuple[list[str], int, int]:
    """(mismatches, fast answers, checks) over one generated symbol and benchmark slid
    through a memo."""
    rng = Random(seed)
    bars, benchmark = _series(rng, 160, odd=odd), _series(rng, 160, odd=odd)
    if rng.random() < 0.5:  # the symbol misses a bar or two the benchmark has
        bars = [bar for bar in bars if rng.random() > 0.03]
    memo = ColumnsMemo()
    wrong: list[str] = []
    answered = checks = 0
    with localcontext() as context:
        if precision is not None:
            context.prec = precision
        for window, theirs in zip(
            _steps(bars, Random(seed), 40), _steps(benchmark, Random(seed), 45), strict=False
        ):
            own = memo.of("S", window)
            bench = memo.of("SPY", theirs)
            if own is None or bench is None:  # a series not yet seen moving on
                continue
            found, fast = _mismatches(own, window, bench, theirs, rng)
            wrong += found
            answered += fast
            checks += 1
    return wrong, answered, checks


@pytest.mark.parametrize("seed", range(12))
def test_fast_values_when_regular_series_slide_then_the_reference_values(seed: int) -> None:
    """Regular series (UTC, increasing, volumes of many exponents): every fast value is
    the reference's repr for repr, and most windows have one."""
    wrong, answered, checks = _run(seed, odd=False)
    assert not wrong, wrong[:5]
    assert answered > 10 * checks  # the fast path answers, it does not only step aside


@pytest.mark.parametrize("seed", range(12))
def test_fast_values_when_series_have_faults_then_the_reference_values_or_none(seed: int) -> None:
    """Gaps, repeated and earlier stamps, zones with summer time, missing, -0 and negative
    volumes, constant stretches: a fast value is the reference's, or there is none."""
    wrong, _, _ = _run(100 + seed, odd=True)
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("precision", [6, 9, 12])
def test_fast_sums_when_context_precision_is_low_then_the_reference_sums(
    precision: int, odd: bool
) -> None:
    """Under a context too narrow for some sums and products, the Decimal sums are the
    reference's (which rounds) or None: never an exact sum where the reference rounded."""
    wrong, _, _ = _run(7, odd=odd, precision=precision)
    assert not wrong, wrong[:5]


def test_fast_sum_when_a_negative_volume_follows_a_wide_partial_sum_then_none() -> None:
    """A negative volume can make a partial sum wider than the total: the reference rounds
    it (999999 + 2 is 1.00000E+6 at 6 digits) and ends at 999998, the exact sum is
    999999. The fast path gives none there."""
    volumes = [Decimal(999_999), Decimal(2), Decimal(-2)]
    bars = [
        Bar(START + n * MINUTE, Decimal(1), Decimal(1), Decimal(1), Decimal(1), volume)
        for n, volume in enumerate(volumes)
    ]
    own = columns_of(bars)
    with localcontext() as context:
        context.prec = 6
        reference = metrics.window_volume(bars, need=3, dollars=False)
        assert reference == Decimal(999_998)
        assert columns.window_volume(own, 0, 3, dollars=False) is None


def _near_ties(count: int) -> Iterator[float]:
    """Sums of squares whose volatility lies at a rounding tie (k + ½)·1e-6, and a few
    ulps either side: g(S) = √(S / (count − 1) · YEAR_S / 60)."""
    for tie in (0.1234565, 0.5000005, 0.0000005, 1.9999995):
        squares = tie**2 * 60 / YEAR_S * (count - 1)
        for ulps in range(-8, 9):
            yield squares + ulps * math.ulp(squares)


def test_volatility_decision_when_squares_near_a_tie_then_none_or_the_value_of_every_sum() -> None:
    """At a rounding tie and a few ulps either side, the value given (if any) is the one
    that every sum within the bound rounds to, and some are refused (None)."""
    count = 239
    refused = 0
    for squares in _near_ties(count):
        decided = columns.volatility_within(squares, count, 60, YEAR_S)
        if decided is None:
            refused += 1
            continue
        error = squares * columns._relative_error(count)
        for step in range(-10, 11):
            nearby = max(0.0, squares + error * step / 10)
            assert repr(metrics.volatility_of(nearby, count, 60, YEAR_S)) == repr(decided)
    assert refused  # the ties themselves are within every bound


def test_fast_path_when_its_sums_are_off_and_the_bound_wrong_then_the_comparison_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fast path whose returns are off by up to 2e-4 (relative) and whose bound is 0
    (a wrong bound) is caught: the same comparison finds windows where its volatility
    and its correlation are not the reference's."""
    monkeypatch.setattr(columns, "_relative_error", lambda count: 0.0)
    monkeypatch.setattr(columns, "_UNDERFLOW", 0.0)
    real_returns = SeriesColumns.returns

    def off(self: SeriesColumns, start: int, stop: int) -> Floats:
        values = real_returns(self, start, stop)
        return values * (1 + 1e-4 * (np.arange(len(values)) % 3))

    monkeypatch.setattr(SeriesColumns, "returns", off)
    found = []
    for seed in range(3):
        wrong, _, _ = _run(seed, odd=False)
        found += wrong
    assert any(text.startswith("volatility") for text in found)
    assert any(text.startswith("correlation") for text in found)


def test_memo_when_bars_revised_or_reordered_then_rows_afresh() -> None:
    """Columns come once a series is seen moving on; then each poll adds its new rows. A
    series that is not the last one moved on (a revised first bar) is only remembered
    until it moves on in turn; the same bars again get the very same columns."""
    rng = Random(5)
    bars = _series(rng, 60, odd=False)
    memo = ColumnsMemo()
    assert memo.of("S", tuple(bars[:50])) is None  # seen, not moving on yet
    first = memo.of("S", tuple(bars[1:51]))
    moved = memo.of("S", tuple(bars[2:52]))
    assert first is not None and moved is not None
    assert moved.rows is first.rows and moved.base == first.base + 1
    again = tuple(bars[2:52])
    assert memo.of("S", again) is not moved  # equal, not the very same tuple: re-checked
    assert memo.of("S", again) is memo.of("S", again)
    revised = [replace(bars[2], close=bars[2].close + 1), *bars[3:52]]
    assert memo.of("S", revised) is None
    fresh = memo.of("S", [*revised[1:], bars[52]])
    assert fresh is not None and fresh.rows is not first.rows and fresh.base == 0
    total = columns.window_volume(fresh, 0, 50, dollars=True)
    assert repr(total) == repr(
        metrics.window_volume([*revised[1:], bars[52]], need=50, dollars=True)
    )


def test_memo_when_every_poll_has_new_bar_objects_then_no_columns_are_made() -> None:
    """A venue that parses its bars afresh every poll (equal bars, new objects): nothing
    is ever the last series moved on, so no columns are made (the reference is asked,
    at its own cost, not more)."""
    bars = _series(Random(6), 80, odd=False)
    memo = ColumnsMemo()
    for end in range(30, 80):
        window = [replace(bar) for bar in bars[end - 30 : end]]  # equal, new objects
        assert memo.of("S", window) is None


def test_memo_when_rows_pile_up_then_compacted_and_values_unchanged() -> None:
    """Thousands of polls, each a bar on: the rows left behind are dropped now and then
    (a copy), and the values stay the reference's."""
    rng = Random(9)
    bars = _series(rng, 5_000, odd=False)
    memo = ColumnsMemo()
    bases = []
    for end in range(30, len(bars), 1):
        own = memo.of("S", tuple(bars[end - 30 : end]))
        if own is not None:
            bases.append(own.base)
    assert own is not None
    assert any(later < earlier for earlier, later in pairwise(bases))  # compacted
    window = bars[len(bars) - 31 : len(bars) - 1]
    reference = metrics.volatility(window, 60, YEAR_S, need=29)
    assert repr(columns.volatility(own, 0, 30, 60, YEAR_S) or reference) == repr(reference)
    for dollars in (False, True):
        total = columns.window_volume(own, 0, 30, dollars=dollars)
        assert repr(total) == repr(metrics.window_volume(window, need=30, dollars=dollars))


def _poll(bars: dict[str, list[Bar]], now: datetime) -> Poll:
    quotes = {
        s: Quote(s, series[-1].close, series[-1].close + 1, now) for s, series in bars.items()
    }
    positions = tuple(
        VenuePosition(
            f"P-{s}", "acc-1", s, "equity", Decimal(2), "long", Decimal(90), Decimal(100), now
        )
        for s in bars
    )
    accounts = (VenueAccount("acc-1", "gen", Decimal(10_000), Decimal(500)),)
    return Poll(accounts, positions, {s: tuple(b) for s, b in bars.items()}, quotes)


@pytest.mark.parametrize("seed", range(4))
def test_builds_when_bars_move_on_then_the_same_as_without_columns(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls a bar apart (regular and faulty series, a benchmark among them): each build's
    snapshot and fallbacks, repr for repr, are those of a builder that asks the
    reference for every metric."""
    config = BuilderConfig(
        windows=Windows(
            recent_bars=5, correlation_bars=8, baseline_bars=12, min_correlation_points=4
        ),
        benchmark="SPY",
        max_clock_skew_s=10**9,
    )
    rng = Random(seed)
    series = {name: _series(rng, 80, odd=name == "ODD") for name in ("SPY", "AAA", "BBB", "ODD")}
    polls = []
    for end in range(30, 80, 1):
        now = series["SPY"][end - 1].timestamp + MINUTE
        polls.append((_poll({s: b[end - 26 : end] for s, b in series.items()}, now), now))
    builder = SnapshotBuilder(config)
    calm = Regime("calm", "low", START - timedelta(days=1))
    built = [builder.build(p, now=now, state=BuilderState(), regime=calm) for p, now in polls]
    # The reference builder: no series ever has columns, so no fast value is asked for.
    monkeypatch.setattr(ColumnsMemo, "of", lambda self, symbol, bars, overlaps=None: None)
    for (poll, now), result in zip(polls, built, strict=True):
        reference = SnapshotBuilder(config).build(poll, now=now, state=BuilderState(), regime=calm)
        assert repr(result.snapshot.market) == repr(reference.snapshot.market)
        assert result.fallbacks == reference.fallbacks


@pytest.mark.parametrize("seed", range(6))
def test_many_windows_at_once_when_symbols_slide_then_the_reference_values(seed: int) -> None:
    """column_batch's volatilities / correlations (and both at once) over the windows of
    many symbols (one length per call, as the builder asks): each value is the
    reference's, or None — for a symbol that misses bars of the benchmark's, among
    others — and most have one."""
    wrong, answered = _many_windows(seed)
    assert wrong == []
    assert answered > 100


def test_many_windows_when_their_returns_are_off_and_the_bound_wrong_then_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch's windows (SeriesColumns.window) with returns off by up to 2e-4 and a
    bound of 0: the same comparison finds volatilities and correlations that are not
    the reference's."""
    monkeypatch.setattr(columns, "_relative_error", lambda count: 0.0)
    monkeypatch.setattr(columns, "_UNDERFLOW", 0.0)
    real_window = SeriesColumns.window

    def off(self: SeriesColumns, start: int, stop: int) -> Prepared | None:
        found = real_window(self, start, stop)
        if found is None:
            return None
        values, mean, stamps = found
        return values * (1 + 1e-4 * (np.arange(len(values)) % 3)), mean, stamps

    monkeypatch.setattr(SeriesColumns, "window", off)
    wrong = [text for seed in range(3) for text in _many_windows(seed)[0]]
    assert any(text.startswith("volatility") for text in wrong)
    assert any(text.startswith("correlation") for text in wrong)


def _many_windows(seed: int) -> tuple[list[str], int]:
    """(the windows where a batch value is not the reference's, how many had one) over
    generated symbols slid through one memo."""
    rng = Random(seed)
    benchmark = _series(rng, 120, odd=False)
    symbols = {f"S{n}": _series(rng, 120, odd=n == 5) for n in range(6)}
    # S1: five minutes earlier, so its windows are a run of the benchmark's further in.
    symbols["S1"] = [replace(bar, timestamp=bar.timestamp - 5 * MINUTE) for bar in symbols["S1"]]
    symbols["S3"] = [bar for n, bar in enumerate(symbols["S3"]) if n % 17]  # gaps
    memo = ColumnsMemo()
    answered, wrong = 0, []
    for end in range(40, 120, 3):
        theirs = benchmark[end - 40 : end]
        bench = memo.of("SPY", theirs)
        windows, bars = [], []
        for name, series in symbols.items():
            window = series[max(0, end - 40) : end][-30:]
            own = memo.of(name, window)
            if own is None:  # not yet seen moving on
                continue
            for start in (0, len(window) - 9):
                windows.append((own, start, len(window)))
                bars.append((window[start:], len(window) - start - 1))
        if bench is None:
            continue
        for length in {stop - start for _, start, stop in windows}:
            group = [n for n, (_, start, stop) in enumerate(windows) if stop - start == length]
            asked = [windows[n] for n in group]
            spreads = column_batch.volatilities(asked, 60, [YEAR_S] * len(asked))
            tied = column_batch.correlations(asked, bench, min_points=POINTS)
            shared = column_batch.volatilities_and_correlations(
                asked, 60, [YEAR_S] * len(asked), [bench] * len(asked), min_points=POINTS
            )  # a baseline's two metrics, their deviations shared: the same values
            assert repr(shared) == repr((spreads, tied))
            some = [bench if n % 2 else None for n in range(len(asked))]  # some without
            shared = column_batch.volatilities_and_correlations(
                asked, 60, [YEAR_S] * len(asked), some, min_points=POINTS
            )
            assert repr(shared[0]) == repr(spreads)
            assert repr(shared[1]) == repr([t if n % 2 else None for n, t in enumerate(tied)])
            returns = metrics.log_returns(theirs)
            for n, spread, tie in zip(group, spreads, tied, strict=True):
                window, need = bars[n]
                checks = [
                    (
                        "volatility",
                        spread,
                        _or_error(partial(metrics.volatility, window, 60, YEAR_S, need=need)),
                    ),
                    (
                        "correlation",
                        tie,
                        _or_error(
                            partial(
                                metrics.correlation,
                                window,
                                theirs,
                                need=need,
                                min_points=POINTS,
                                benchmark_returns=returns,
                            )
                        ),
                    ),
                ]
                for name, fast, reference in checks:
                    answered += fast is not None
                    if not _same(fast, reference):
                        wrong.append(f"{name} [{n}] fast {fast!r}, reference {reference!r}")
    return wrong, answered
