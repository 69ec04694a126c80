"""The `market` part of a snapshot: one record per symbol from its bars and quote.

Formulas are in :mod:`market_metrics`, the reference; a series that moved on by a bar
gets its metrics out of the columns :mod:`market_columns` keeps per symbol — the poll's
symbols at once (:mod:`market_batch`, :mod:`column_batch`), one by one where that
gives none (:mod:`column_metrics`): the very same values, or none and then the
reference's. The fallback rule (an unknown value becomes a zero baseline, listed in the
build's fallbacks) is in :mod:`bastion.adapters.builder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from bastion.adapters import column_metrics as columns
from bastion.adapters import market_metrics as metrics
from bastion.adapters.builder_parts import BarMetrics, Context, Poll
from bastion.adapters.market_batch import (
    NONE_BATCHED,
    baseline_window,
    batch,
    batched_values,
    unchanged,
)
from bastion.adapters.market_calendar import Restamped, SessionClock
from bastion.adapters.market_metrics import Metric, Unknown, Windows, quantize
from bastion.adapters.sources.base import Quote
from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import AtrMemo
from bastion.engine.indicators.quality import Bar, Calendar, assess_score
from bastion.engine.indicators.quality_memo import QualityMemo


def market(context: Context, symbol: str, poll: Poll) -> dict[str, Any]:
    quote = poll.quotes.get(symbol)
    if quote is None:
        raise DataError(f"{symbol}: no quote, so bid_usd / ask_usd are unknown; poll a quote")
    _check_quote(symbol, quote)
    bars = context.series(poll.bars.get(symbol, ()))
    separate = poll.atr_bars is not None
    atr_series = bars if poll.atr_bars is None else context.series(poll.atr_bars.get(symbol, ()))
    benchmark_symbol = context.config.benchmark_of(symbol)
    benchmark = context.series(poll.bars.get(benchmark_symbol, ())) if benchmark_symbol else ()
    record: dict[str, Any] = {
        "price_usd": quote.last if quote.last is not None else quote.mid,
        "bid_usd": quote.bid,
        "ask_usd": quote.ask,
        "data_age_s": _data_age(context, symbol, quote, bars),
        "quality_score_ratio": _quality(context, symbol, bars, atr_series if separate else None),
    }
    record.update(from_bars(context, symbol, bars, atr_series, benchmark))
    return record


def from_bars(
    context: Context,
    symbol: str,
    bars: Sequence[Bar],
    atr_series: Sequence[Bar],
    benchmark: Sequence[Bar],
) -> dict[str, Decimal]:
    """ATR and the metric pairs of ``symbol``: what its record takes from its bars alone
    (and its benchmark's bars), with their fallbacks listed. Worked out again only when
    a series is not the very same bars as the last build's (the memo, per builder and
    thread: the record is the same without it, tests/adapters/test_builder_memo.py)."""
    memo = context.memos.bar_metrics
    held = memo.get(symbol)
    if held is not None and unchanged(held, bars, atr_series, benchmark):
        context.fallbacks.extend(held.fallbacks)
        return dict(held.values)
    start = len(context.fallbacks)
    values = _from_bars(context, symbol, bars, list(atr_series), benchmark)
    if len(memo) >= _MEMO_SYMBOLS:  # symbols come and go: start afresh, now and then
        memo.clear()
    memo[symbol] = BarMetrics(
        tuple(bars),
        tuple(atr_series),
        tuple(benchmark),
        tuple(values.items()),
        tuple(context.fallbacks[start:]),
    )
    return values


_MEMO_SYMBOLS = 10_000


def _from_bars(
    context: Context,
    symbol: str,
    bars: Sequence[Bar],
    atr_series: Sequence[Bar],
    benchmark: Sequence[Bar],
) -> dict[str, Decimal]:
    config = context.config
    benchmark_symbol = config.benchmark_of(symbol)
    where = f"market[{symbol}]"
    values = {"atr_usd": _atr(context, symbol, where, atr_series)}
    known = batched_values(batch(context).get(symbol), own_benchmark=benchmark_symbol == symbol)
    if known is not None:  # every pair known: no fallback, nothing more to work out
        values.update(known)
        return values
    series = _Series(context, symbol, bars)
    volume, liquidity = series.volumes()
    avg_volume, normal_liquidity = series.averages()
    pairs: list[tuple[str, Metric, str, Metric]] = [
        ("volatility", series.volatility(), "normal_volatility", series.normal_volatility()),
        ("volume", volume, "avg_volume", avg_volume),
        ("liquidity_usd", liquidity, "normal_liquidity_usd", normal_liquidity),
    ]
    if benchmark_symbol == symbol:
        pairs.append(("correlation", Decimal(1), "normal_correlation", Decimal(1)))
    elif benchmark_symbol is None:
        missing = Unknown("no benchmark is configured for this feed (benchmark: none)")
        pairs.append(("correlation", missing, "normal_correlation", missing))
    elif not benchmark:
        missing = Unknown(f"no bars for the benchmark {benchmark_symbol}")
        pairs.append(("correlation", missing, "normal_correlation", missing))
    else:
        current, normal = series.correlations(benchmark_symbol, benchmark)
        pairs.append(("correlation", current, "normal_correlation", normal))
    for current_name, current_value, normal_name, normal_value in pairs:
        values[current_name], values[normal_name] = _pair(
            context, where, (current_name, current_value), (normal_name, normal_value)
        )
    return values


class _Series:
    """One symbol's metric bars and their windows: each metric from the series' columns
    (column_metrics: the reference's value, bit for bit) where they give it, else from
    market_metrics, the reference."""

    def __init__(self, context: Context, symbol: str, bars: Sequence[Bar]) -> None:
        config, windows = context.config, context.config.windows
        self.context, self.windows, self.symbol = context, windows, symbol
        self.bars = bars
        self.year_s = config.seconds_per_year_by_symbol.get(symbol, config.seconds_per_year)
        self.interval = config.bar_interval_s
        self.memo = context.memos.returns
        self.columns = context.memos.columns.of(symbol, bars, context.overlaps)
        self.batched = batch(context).get(symbol, NONE_BATCHED)
        self.count = len(bars)
        self.first, self.cut, self.full = baseline_window(windows, self.count)

    @cached_property
    def _split(self) -> tuple[list[Bar], list[Bar]]:
        """(recent, baseline) bars: the reference's windows, made only when it is asked."""
        return metrics.split(self.bars, self.windows, self.windows.recent_bars)

    @property
    def recent(self) -> list[Bar]:
        return self._split[0]

    @property
    def baseline(self) -> list[Bar]:
        return self._split[1]

    def volatility(self) -> Metric:
        need, count = self.windows.recent_bars, self.count
        fast = self.batched.get("volatility")
        own = self.columns
        if fast is None and own is not None and count >= need + 1:
            fast = columns.volatility(own, count - need - 1, count, *self._year())
        if fast is None:
            return metrics.volatility(self.bars, *self._year(), need=need, memo=self.memo)
        return fast

    def normal_volatility(self) -> Metric:
        fast, own = self.batched.get("normal_volatility"), self.columns
        if fast is None and own is not None and self.full:
            fast = columns.volatility(own, self.first, self.cut, *self._year())
        if fast is None:
            need = self.windows.baseline_bars - 1
            return metrics.volatility(self.baseline, *self._year(), need=need, memo=self.memo)
        return fast

    def _year(self) -> tuple[int, float]:
        return self.interval, self.year_s

    def volumes(self) -> tuple[Metric, Metric]:
        """(volume, liquidity_usd): the current window's volume and dollar volume."""
        need, count, own = self.windows.recent_bars, self.count, self.columns
        fast: tuple[Metric | None, ...] = (None, None)
        if "volume" in self.batched:
            fast = self.batched["volume"], self.batched["liquidity_usd"]
        elif own is not None and count >= need:
            fast = columns.window_volumes(own, count - need, count)
        volume, liquidity = fast
        if volume is None:
            volume = metrics.window_volume(self.recent, need=need, dollars=False)
        if liquidity is None:
            liquidity = metrics.window_volume(self.recent, need=need, dollars=True)
        return volume, liquidity

    def averages(self) -> tuple[Metric, Metric]:
        """(avg_volume, normal_liquidity_usd): the baseline's, per current window."""
        fast: tuple[Metric | None, ...] = (None, None)
        own = self.columns
        if "avg_volume" in self.batched:
            fast = self.batched["avg_volume"], self.batched["normal_liquidity_usd"]
        elif own is not None and self.full:
            window_bars = self.windows.recent_bars
            fast = columns.average_window_volumes(
                own, self.first, self.cut, window_bars=window_bars
            )
        volume, liquidity = fast
        if volume is None:
            volume = _average(self.baseline, self.windows, dollars=False)
        if liquidity is None:
            liquidity = _average(self.baseline, self.windows, dollars=True)
        return volume, liquidity

    def correlations(self, symbol: str, bars: Sequence[Bar]) -> tuple[Metric, Metric]:
        """(correlation, normal correlation) with the benchmark ``symbol``'s ``bars``."""
        context, windows, count = self.context, self.windows, self.count
        theirs = context.memos.columns.of(symbol, bars, context.overlaps)
        points = windows.min_correlation_points
        start = max(0, count - windows.correlation_bars - 1)
        own = self.columns
        current: Metric | None = self.batched.get("correlation")
        if current is None and own is not None and theirs is not None:
            current = columns.correlation(own, start, count, theirs, min_points=points)
        normal: Metric | None = self.batched.get("normal_correlation")
        if normal is None and own is not None and theirs is not None and self.full:
            normal = columns.correlation(own, self.first, self.cut, theirs, min_points=points)
        if current is None or normal is None:
            returns = context.benchmark_returns.get(symbol)
            if returns is None:  # once per build, not once per symbol and window
                returns = metrics.log_returns(bars, self.memo)
                context.benchmark_returns[symbol] = returns
            reference = _correlations(self.bars, self.baseline, bars, returns, windows, self.memo)
            current = reference[1] if current is None else current
            normal = reference[3] if normal is None else normal
        return current, normal


def _check_quote(symbol: str, quote: Quote) -> None:
    for name, value in (("bid_usd", quote.bid), ("ask_usd", quote.ask), ("price_usd", quote.last)):
        if value is not None and not (value.is_finite() and value > 0):
            raise DataError(f"{symbol}: {name} {value} from the quote is not a positive price")
    if quote.bid > quote.ask:
        raise DataError(f"{symbol}: crossed quote, bid_usd {quote.bid} > ask_usd {quote.ask}")


def _atr(context: Context, symbol: str, where: str, bars: Sequence[Bar]) -> Decimal:
    """``atr_bars(bars)[-1]``; incremental: the memo of (symbol, interval) holds the true
    ranges earlier builds worked out."""
    spec, key = context.config.atr, (symbol, context.config.atr_interval_s)
    memo = context.memos.atr.get(key)
    if memo is None:
        memo = context.memos.atr[key] = AtrMemo()
    value = memo.latest(bars, spec)
    if value is not None:
        return quantize(value, 6)
    context.fallback(
        f"{where}.atr_usd",
        0,
        f"{len(bars)} ATR bars, ATR({spec.period}, {spec.method}) needs "
        f"{spec.first_index + 1}; 0 makes the escalation pass report these positions as "
        "unevaluable (fail safe)",
    )
    return Decimal(0)


def _data_age(context: Context, symbol: str, quote: Quote, bars: Sequence[Bar]) -> Decimal:
    newest = quote.timestamp
    if bars:
        closed = bars[-1].timestamp + timedelta(seconds=context.config.bar_interval_s)
        newest = max(newest, closed)
    age = context.age_s(newest, f"the newest {symbol} data")  # checks the clock skew too
    clock = _session_clock(context)
    if clock is None:
        return age
    # Equity: only open-market time ages data; a Friday close read on Sunday is fresh.
    return quantize(Decimal(repr(clock.open_seconds(newest, context.now))), 3)


def _session_clock(context: Context) -> SessionClock | None:
    name = context.config.market_calendar
    return None if name is None else SessionClock(name)


def _assess(context: Context, symbol: str, bars: Sequence[Bar], interval_s: int) -> Decimal:
    """The quality score; on an equity calendar, with the closures taken out of the clock.
    Incremental: the memo of (symbol, interval) holds what earlier builds checked."""
    config, now = context.config, context.now
    clock = _session_clock(context)
    calendar = None  # inferred from the bars, as without an exchange calendar
    key = (symbol, interval_s)
    if clock is not None:
        held = context.memos.restamped.get(key)
        if held is None:
            held = context.memos.restamped[key] = Restamped()
        restamped, now = clock.session_time(bars, interval_s, now, held, context.overlaps)
        if not restamped:
            return Decimal(0)
        bars, calendar = restamped, Calendar.ALWAYS  # the closures are out of the clock
    memo = context.quality_memos.get(key)
    if memo is None:
        memo = context.quality_memos[key] = QualityMemo()
    # The report's score_ratio, without the report (the builder reads nothing else).
    return assess_score(
        bars,
        interval_s=interval_s,
        calendar=calendar,
        now=now,
        config=config.quality,
        memo=memo,
        overlaps=context.overlaps,
    )


def _quality(
    context: Context, symbol: str, bars: Sequence[Bar], atr_series: Sequence[Bar] | None
) -> Decimal:
    config = context.config
    if not bars or (atr_series is not None and not atr_series):
        return Decimal(0)
    score = _assess(context, symbol, bars, config.bar_interval_s)
    if atr_series is not None:
        score = min(score, _assess(context, symbol, atr_series, config.atr_interval_s))
    return score


def _average(baseline: Sequence[Bar], windows: Windows, *, dollars: bool) -> Metric:
    return metrics.average_window_volume(
        baseline, window_bars=windows.recent_bars, need=windows.baseline_bars, dollars=dollars
    )


def _correlations(
    bars: Sequence[Bar],
    baseline: Sequence[Bar],
    benchmark: Sequence[Bar],
    benchmark_returns: Mapping[datetime, float],
    windows: Windows,
    memo: metrics.ReturnsMemo,
) -> tuple[str, Metric, str, Metric]:
    current = metrics.correlation(
        bars,
        benchmark,
        need=windows.correlation_bars,
        min_points=windows.min_correlation_points,
        benchmark_returns=benchmark_returns,
        memo=memo,
    )
    normal: Metric = Unknown(f"{len(baseline)} baseline bars, need {windows.baseline_bars}")
    if len(baseline) >= windows.baseline_bars:
        normal = metrics.correlation(
            baseline,
            benchmark,
            need=len(baseline) - 1,
            min_points=windows.min_correlation_points,
            benchmark_returns=benchmark_returns,
            memo=memo,
        )
    return "correlation", current, "normal_correlation", normal


def _pair(
    context: Context, where: str, current: tuple[str, Metric], normal: tuple[str, Metric]
) -> tuple[Decimal, Decimal]:
    """Both values, or the zero-baseline fallback when either is unknown."""
    (current_name, current_value), (normal_name, normal_value) = current, normal
    if isinstance(current_value, Decimal) and isinstance(normal_value, Decimal):
        return current_value, normal_value
    for name, value in (current, normal):
        if isinstance(value, Unknown):
            context.fallback(
                f"{where}.{name}",
                0,
                f"{value.reason}; {normal_name} is written as 0 so the engine reports the "
                f"comparison of {current_name} with it as unevaluable (fail safe)",
            )
    kept = current_value if isinstance(current_value, Decimal) else Decimal(0)
    return kept, Decimal(0)
