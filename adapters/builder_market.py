"""The `market` part of a snapshot: one record per symbol from its bars and quote.

Formulas are in :mod:`market_metrics`, the reference; a series that moved on by a bar
gets its metrics from :mod:`column_metrics`, out of the columns :mod:`market_columns`
keeps per symbol (the very same values, or none and then the reference's). The fallback
rule (an unknown value becomes a zero baseline, listed in the build's fallbacks) is in
:mod:`bastion.adapters.builder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from operator import is_
from typing import Any

from bastion.adapters import column_metrics as columns
from bastion.adapters import market_metrics as metrics
from bastion.adapters.builder_parts import BarMetrics, Context, Poll
from bastion.adapters.market_calendar import SessionClock
from bastion.adapters.market_metrics import Metric, Unknown, Windows, quantize
from bastion.adapters.sources.base import Quote
from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import AtrMemo
from bastion.engine.indicators.quality import Bar, Calendar, assess_bars
from bastion.engine.indicators.quality_memo import QualityMemo


def market(context: Context, symbol: str, poll: Poll) -> dict[str, Any]:
    quote = poll.quotes.get(symbol)
    if quote is None:
        raise DataError(f"{symbol}: no quote, so bid_usd / ask_usd are unknown; poll a quote")
    _check_quote(symbol, quote)
    bars = poll.bars.get(symbol, ())
    separate = poll.atr_bars is not None
    atr_series = poll.atr_bars.get(symbol, ()) if poll.atr_bars is not None else bars
    benchmark_symbol = context.config.benchmark_of(symbol)
    benchmark = poll.bars.get(benchmark_symbol, ()) if benchmark_symbol else ()
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
    if held is not None and _unchanged(held, bars, atr_series, benchmark):
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


def _unchanged(
    held: BarMetrics | None,
    bars: Sequence[Bar],
    atr_series: Sequence[Bar],
    benchmark: Sequence[Bar],
) -> bool:
    """The very same series as when ``held`` was worked out."""
    return (
        held is not None
        and _same(held.bars, bars)
        and _same(held.atr_bars, atr_series)
        and _same(held.benchmark, benchmark)
    )


def _same(held: tuple[Bar, ...], bars: Sequence[Bar]) -> bool:
    """The very same bar objects (frozen), in the same order."""
    return len(held) == len(bars) and all(map(is_, held, bars))


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
    series = _Series(context, symbol, bars)
    values = {"atr_usd": _atr(context, symbol, where, atr_series)}
    pairs: list[tuple[str, Metric, str, Metric]] = [
        ("volatility", series.volatility(), "normal_volatility", series.normal_volatility()),
        ("volume", series.volume(False), "avg_volume", series.average(False)),
        ("liquidity_usd", series.volume(True), "normal_liquidity_usd", series.average(True)),
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
        self.columns = context.memos.columns.of(symbol, bars)
        self.count = len(bars)
        self.first, self.cut, self.full = _baseline(windows, self.count)

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

    def _batched(self, name: str) -> Decimal | None:
        """The value the poll's batch (:func:`_batch`) worked out, if it did."""
        return _batch(self.context).get(self.symbol, {}).get(name)

    def volatility(self) -> Metric:
        need, count = self.windows.recent_bars, self.count
        fast = self._batched("volatility")
        own = self.columns
        if fast is None and own is not None and count >= need + 1:
            fast = columns.volatility(own, count - need - 1, count, *self._year())
        if fast is None:
            return metrics.volatility(self.bars, *self._year(), need=need, memo=self.memo)
        return fast

    def normal_volatility(self) -> Metric:
        fast, own = self._batched("normal_volatility"), self.columns
        if fast is None and own is not None and self.full:
            fast = columns.volatility(own, self.first, self.cut, *self._year())
        if fast is None:
            need = self.windows.baseline_bars - 1
            return metrics.volatility(self.baseline, *self._year(), need=need, memo=self.memo)
        return fast

    def _year(self) -> tuple[int, float]:
        return self.interval, self.year_s

    def volume(self, dollars: bool) -> Metric:
        need, count, own = self.windows.recent_bars, self.count, self.columns
        fast = None
        if own is not None and count >= need:
            fast = columns.window_volume(own, count - need, count, dollars=dollars)
        if fast is None:
            return metrics.window_volume(self.recent, need=need, dollars=dollars)
        return fast

    def average(self, dollars: bool) -> Metric:
        fast, own = None, self.columns
        if own is not None and self.full:
            window_bars = self.windows.recent_bars
            fast = columns.average_window_volume(
                own, self.first, self.cut, window_bars=window_bars, dollars=dollars
            )
        return _average(self.baseline, self.windows, dollars=dollars) if fast is None else fast

    def correlations(self, symbol: str, bars: Sequence[Bar]) -> tuple[Metric, Metric]:
        """(correlation, normal correlation) with the benchmark ``symbol``'s ``bars``."""
        context, windows, count = self.context, self.windows, self.count
        theirs = context.memos.columns.of(symbol, bars)
        points = windows.min_correlation_points
        start = max(0, count - windows.correlation_bars - 1)
        own = self.columns
        current: Metric | None = self._batched("correlation")
        if current is None and own is not None and theirs is not None:
            current = columns.correlation(own, start, count, theirs, min_points=points)
        normal: Metric | None = self._batched("normal_correlation")
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


def _baseline(windows: Windows, count: int) -> tuple[int, int, bool]:
    """(first, cut, full): the baseline of ``count`` bars is bars[first:cut]
    (metrics.split); a full one holds ``windows.baseline_bars``."""
    cut = max(0, count - windows.current_bars)
    first = max(0, cut - windows.baseline_bars)
    return first, cut, cut - first >= windows.baseline_bars


def _batch(context: Context) -> dict[str, dict[str, Decimal | None]]:
    """Volatility and correlation of every symbol of the poll whose bars are not the last
    build's (the ones from_bars works out), each kind of window of all of them at once
    (column_metrics.volatilities / correlations); worked out on the first ask of a build."""
    if context.batch is not None:
        return context.batch
    batch: dict[str, dict[str, Decimal | None]] = {}
    context.batch = batch
    poll, config, windows = context.poll, context.config, context.config.windows
    if poll is None:
        return batch
    spread: dict[int, list[tuple[str, str, columns.Window, float]]] = {}
    paired: dict[tuple[str, int], list[tuple[str, str, columns.Window]]] = {}
    memo, recent = context.memos.bar_metrics, windows.recent_bars
    for symbol, bars in poll.bars.items():
        atr_series = poll.atr_bars.get(symbol, ()) if poll.atr_bars is not None else bars
        benchmark_symbol = config.benchmark_of(symbol)
        benchmark = poll.bars.get(benchmark_symbol, ()) if benchmark_symbol else ()
        if _unchanged(memo.get(symbol), bars, atr_series, benchmark):
            continue  # from_bars reuses what it worked out last time
        own, count = context.memos.columns.of(symbol, bars), len(bars)
        if own is None:
            continue  # no columns (yet) for this series: from_bars asks the reference
        first, cut, full = _baseline(windows, count)
        year_s = config.seconds_per_year_by_symbol.get(symbol, config.seconds_per_year)
        if count >= recent + 1:
            window = (own, count - recent - 1, count)
            spread.setdefault(recent, []).append((symbol, "volatility", window, year_s))
        if full:
            normal = (own, first, cut)
            spread.setdefault(cut - first - 1, []).append(
                (symbol, "normal_volatility", normal, year_s)
            )
        if benchmark_symbol and benchmark_symbol != symbol and benchmark:
            start = max(0, count - windows.correlation_bars - 1)
            named = [("correlation", (own, start, count))]
            if full:
                named.append(("normal_correlation", (own, first, cut)))
            for name, window in named:
                key = (benchmark_symbol, window[2] - window[1] - 1)
                paired.setdefault(key, []).append((symbol, name, window))
    interval = config.bar_interval_s
    for length, asked in spread.items():
        if length < 2:
            continue
        found = columns.volatilities([a[2] for a in asked], interval, [a[3] for a in asked])
        for (symbol, name, _, _), value in zip(asked, found, strict=True):
            batch.setdefault(symbol, {})[name] = value
    for (benchmark_symbol, _), pairs in paired.items():
        theirs = context.memos.columns.of(benchmark_symbol, poll.bars[benchmark_symbol])
        if theirs is None:
            continue
        found = columns.correlations(
            [p[2] for p in pairs], theirs, min_points=windows.min_correlation_points
        )
        for (symbol, name, _), value in zip(pairs, found, strict=True):
            batch.setdefault(symbol, {})[name] = value
    return batch


def _check_quote(symbol: str, quote: Quote) -> None:
    for name, value in (("bid_usd", quote.bid), ("ask_usd", quote.ask), ("price_usd", quote.last)):
        if value is not None and not (value.is_finite() and value > 0):
            raise DataError(f"{symbol}: {name} {value} from the quote is not a positive price")
    if quote.bid > quote.ask:
        raise DataError(f"{symbol}: crossed quote, bid_usd {quote.bid} > ask_usd {quote.ask}")


def _atr(context: Context, symbol: str, where: str, bars: Sequence[Bar]) -> Decimal:
    """``atr_bars(bars)[-1]``; incremental: the memo of (symbol, interval) holds the true
    ranges earlier builds worked out."""
    spec = context.config.atr
    memo = context.memos.atr.setdefault((symbol, context.config.atr_interval_s), AtrMemo())
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
    if clock is not None:
        restamped, now = clock.session_time(bars, interval_s, now)
        if not restamped:
            return Decimal(0)
        bars, calendar = restamped, Calendar.ALWAYS  # the closures are out of the clock
    memo = context.quality_memos.setdefault((symbol, interval_s), QualityMemo())
    report = assess_bars(
        bars, interval_s=interval_s, calendar=calendar, now=now, config=config.quality, memo=memo
    )
    return report.score_ratio


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
