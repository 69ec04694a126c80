"""What the symbols of a poll whose bars moved on get from their columns, all at once.

:func:`batch` runs on the first ask of a build (builder_market's from_bars for a symbol
whose bars are not the last build's): for every such symbol with columns
(:mod:`market_columns`), its volume sums, and its volatility and correlation windows —
each kind of window of all the symbols together (:mod:`column_batch`; the baseline's
volatility and correlation, over one window, share its deviations). Everything read of
a symbol's rows is read as they are extended (:class:`_Asked`). A symbol whose pairs
are all known takes them as they are (:func:`batched_values`); the others go through
builder_market's one-by-one path, the reference's functions where a value is missing.
The values are the reference's either way (tests/adapters/test_market_columns.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import cast

from bastion.adapters import column_batch
from bastion.adapters import column_metrics as columns
from bastion.adapters.builder_parts import BarMetrics, Context, Poll
from bastion.adapters.market_columns import Prepared
from bastion.adapters.market_metrics import Windows
from bastion.engine.indicators.overlap import same
from bastion.engine.indicators.quality import Bar

NONE_BATCHED: dict[str, Decimal | None] = {}  # read only: a symbol the batch left out


def batch(context: Context) -> dict[str, dict[str, Decimal | None]]:
    """What every symbol of the poll whose bars are not the last build's (the ones
    from_bars works out) gets from its columns: volume sums, and the volatility and
    correlation windows of all of them at once, each kind of window together
    (column_batch; the baseline's two metrics, over one window, share its deviations);
    worked out on the first ask of a build. Per symbol, metric name -> value, or None
    (or no entry): ask the reference."""
    if context.batch is not None:
        return context.batch
    worked: dict[str, dict[str, Decimal | None]] = {}
    context.batch = worked
    poll = context.poll
    if poll is None:
        return worked
    asked = _Asked()
    for symbol, bars in poll.bars.items():
        asked.add(context, poll, symbol, context.series(bars), worked)
    interval, points = context.config.bar_interval_s, context.config.windows.min_correlation_points
    for length, recent in asked.recent.items():
        if length < 2:
            continue
        found = column_batch.volatilities_of(
            [a[1] for a in recent], interval, [a[2] for a in recent]
        )
        for (symbol, _, _), value in zip(recent, found, strict=True):
            worked[symbol]["volatility"] = value
    for (benchmark_symbol, length), pairs in asked.paired.items():
        theirs = context.memos.columns.of(
            benchmark_symbol, context.series(poll.bars[benchmark_symbol]), context.overlaps
        )
        if theirs is None:
            continue
        found = column_batch.correlations_of(
            [p[1] for p in pairs], length, theirs, min_points=points
        )
        for (symbol, _), value in zip(pairs, found, strict=True):
            worked[symbol]["correlation"] = value
    for length, baselines in asked.baselines.items():
        benchmarks = {a[3] for a in baselines} - {None}
        of, overlaps = context.memos.columns.of, context.overlaps
        known = {b: of(b, context.series(poll.bars[b]), overlaps) for b in benchmarks if b}
        marks = [known.get(a[3]) if a[3] else None for a in baselines]
        spreads, ties = column_batch.volatilities_and_correlations_of(
            [a[1] for a in baselines],
            length,
            interval,
            [a[2] for a in baselines],
            marks,
            min_points=points,
        )
        for (symbol, _, _, _), mark, spread, tie in zip(
            baselines, marks, spreads, ties, strict=True
        ):
            worked[symbol]["normal_volatility"] = spread
            if mark is not None:
                worked[symbol]["normal_correlation"] = tie
    return worked


class _Asked:
    """The windows a poll's batch works out, by kind and length: the current
    volatility's (by length), the baseline's (by length, with its benchmark or None:
    its volatility and its correlation over the same window) and the current
    correlation's (by benchmark and length)."""

    __slots__ = ("baselines", "paired", "recent")

    def __init__(self) -> None:
        self.recent: dict[int, list[tuple[str, Prepared | None, float]]] = {}
        self.baselines: dict[int, list[tuple[str, Prepared | None, float, str | None]]] = {}
        self.paired: dict[tuple[str, int], list[tuple[str, Prepared | None]]] = {}

    def add(
        self,
        context: Context,
        poll: Poll,
        symbol: str,
        bars: Sequence[Bar],
        worked: dict[str, dict[str, Decimal | None]],
    ) -> None:
        """``symbol``'s windows, and its volume sums into ``worked``, unless from_bars
        reuses what it worked out last time or there are no columns (yet) for it. All
        that is read of its rows is read here, just after they were extended: the
        windows go on prepared (SeriesColumns.window)."""
        config, windows = context.config, context.config.windows
        atr_series = poll.atr_bars.get(symbol, ()) if poll.atr_bars is not None else bars
        benchmark_symbol = config.benchmark_of(symbol)
        benchmark = poll.bars.get(benchmark_symbol, ()) if benchmark_symbol else ()
        if unchanged(context.memos.bar_metrics.get(symbol), bars, atr_series, benchmark):
            return
        own, count = context.memos.columns.of(symbol, bars, context.overlaps), len(bars)
        if own is None:
            return
        values = worked[symbol] = {}
        first, cut, full = baseline_window(windows, count)
        year_s = config.seconds_per_year_by_symbol.get(symbol, config.seconds_per_year)
        recent = windows.recent_bars
        if count >= recent:
            values["volume"], values["liquidity_usd"] = columns.window_volumes(
                own, count - recent, count
            )
        if count >= recent + 1:
            window = own.window(count - recent - 1, count)
            self.recent.setdefault(recent, []).append((symbol, window, year_s))
        correlated = benchmark_symbol if benchmark_symbol != symbol and benchmark else None
        if full:
            values["avg_volume"], values["normal_liquidity_usd"] = columns.average_window_volumes(
                own, first, cut, window_bars=recent
            )
            self.baselines.setdefault(cut - first - 1, []).append(
                (symbol, own.window(first, cut), year_s, correlated)
            )
        if correlated:
            start = max(0, count - windows.correlation_bars - 1)
            self.paired.setdefault((correlated, count - start - 1), []).append(
                (symbol, own.window(start, count))
            )


def unchanged(
    held: BarMetrics | None,
    bars: Sequence[Bar],
    atr_series: Sequence[Bar],
    benchmark: Sequence[Bar],
) -> bool:
    """The very same series as when ``held`` was worked out."""
    return (
        held is not None
        and same(held.bars, bars)
        and same(held.atr_bars, atr_series)
        and same(held.benchmark, benchmark)
    )


def baseline_window(windows: Windows, count: int) -> tuple[int, int, bool]:
    """(first, cut, full): the baseline of ``count`` bars is bars[first:cut]
    (metrics.split); a full one holds ``windows.baseline_bars``."""
    cut = max(0, count - windows.current_bars)
    first = max(0, cut - windows.baseline_bars)
    return first, cut, cut - first >= windows.baseline_bars


def batched_values(
    found: Mapping[str, Decimal | None] | None, *, own_benchmark: bool
) -> dict[str, Decimal] | None:
    """The metric pairs, in the record's order, when the batch worked every one out (a
    benchmark's correlation with itself is 1); else None (then _Series: the ones it did
    not, from the reference, and the fallbacks)."""
    if found is None:
        return None
    get = found.get
    values = {
        "volatility": get("volatility"),
        "normal_volatility": get("normal_volatility"),
        "volume": get("volume"),
        "avg_volume": get("avg_volume"),
        "liquidity_usd": get("liquidity_usd"),
        "normal_liquidity_usd": get("normal_liquidity_usd"),
        "correlation": _ONE if own_benchmark else get("correlation"),
        "normal_correlation": _ONE if own_benchmark else get("normal_correlation"),
    }
    return None if None in values.values() else cast("dict[str, Decimal]", values)


_ONE = Decimal(1)  # a benchmark's correlation with itself
