"""The `market` part of a snapshot: one record per symbol from its bars and quote.

Formulas are in :mod:`market_metrics`; the fallback rule (an unknown value becomes a zero
baseline, listed in the build's fallbacks) is in :mod:`bastion.adapters.builder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from operator import is_
from typing import Any

from bastion.adapters import market_metrics as metrics
from bastion.adapters.builder_parts import BarMetrics, Context, Poll
from bastion.adapters.market_calendar import SessionClock
from bastion.adapters.market_metrics import Metric, Unknown, Windows, quantize
from bastion.adapters.sources.base import Quote
from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import AtrMemo
from bastion.engine.indicators.quality import Bar, Calendar, QualityMemo, assess_bars


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
    if (
        held is not None
        and _same(held.bars, bars)
        and _same(held.atr_bars, atr_series)
        and _same(held.benchmark, benchmark)
    ):
        context.fallbacks.extend(held.fallbacks)
        return dict(held.values)
    start = len(context.fallbacks)
    values = _from_bars(context, symbol, list(bars), list(atr_series), benchmark)
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


def _same(held: tuple[Bar, ...], bars: Sequence[Bar]) -> bool:
    """The very same bar objects (frozen), in the same order."""
    return len(held) == len(bars) and all(map(is_, held, bars))


def _from_bars(
    context: Context,
    symbol: str,
    bars: list[Bar],
    atr_series: list[Bar],
    benchmark: Sequence[Bar],
) -> dict[str, Decimal]:
    config, windows = context.config, context.config.windows
    recent, baseline = metrics.split(bars, windows, windows.recent_bars)
    benchmark_symbol = config.benchmark_of(symbol)
    year_s = config.seconds_per_year_by_symbol.get(symbol, config.seconds_per_year)
    interval = config.bar_interval_s
    where = f"market[{symbol}]"
    memo = context.memos.returns
    values = {"atr_usd": _atr(context, symbol, where, atr_series)}
    pairs: list[tuple[str, Metric, str, Metric]] = [
        (
            "volatility",
            metrics.volatility(bars, interval, year_s, need=windows.recent_bars, memo=memo),
            "normal_volatility",
            metrics.volatility(
                baseline, interval, year_s, need=windows.baseline_bars - 1, memo=memo
            ),
        ),
        (
            "volume",
            metrics.window_volume(recent, need=windows.recent_bars, dollars=False),
            "avg_volume",
            _average(baseline, windows, dollars=False),
        ),
        (
            "liquidity_usd",
            metrics.window_volume(recent, need=windows.recent_bars, dollars=True),
            "normal_liquidity_usd",
            _average(baseline, windows, dollars=True),
        ),
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
        returns = context.benchmark_returns.get(benchmark_symbol)
        if returns is None:  # once per build, not once per symbol and window
            returns = metrics.log_returns(benchmark, memo)
            context.benchmark_returns[benchmark_symbol] = returns
        pairs.append(_correlations(bars, baseline, benchmark, returns, windows, memo))
    for current_name, current, normal_name, normal in pairs:
        values[current_name], values[normal_name] = _pair(
            context, where, (current_name, current), (normal_name, normal)
        )
    return values


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
