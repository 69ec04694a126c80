"""Per-symbol market metrics from bars and a quote — the numbers of a Snapshot's `market`.

Windows (counted in bars of the metric series, oldest first, completed bars only):

- *current*: the last ``recent_bars`` bars (volume, liquidity) or returns (volatility),
  and the last ``correlation_bars`` returns (correlation);
- *baseline* ("normal"): the ``baseline_bars`` bars just before the longest current
  window, so that a regime change is compared with what came before it, not diluted by
  itself. A series needs :attr:`Windows.required_bars` bars for every metric.

Formulas (each function below is small enough to check by hand):

- volatility: sample standard deviation (n − 1) of close-to-close log returns, annualised
  by √(seconds_per_year / interval_s); 365.25 × 86,400 s by default (24×7 markets;
  pass 252 × 23,400 for US equity session bars). Normal volatility: the same over the
  baseline returns.
- volume: the sum over the current window; avg_volume: the mean bar volume of the
  baseline × ``recent_bars`` — the volume of an average window of the same length, so
  that ``volume / avg_volume`` is a like-for-like multiple.
- liquidity_usd: Σ close × volume over the current window (recent dollar volume, a proxy
  for depth); normal_liquidity_usd: as avg_volume, in dollars. Exact Decimal sums.
- correlation: Pearson correlation of log returns with the benchmark's, on the bar
  timestamps both series have; needs ``min_correlation_points`` common returns.

Every function returns ``Unknown(reason)`` instead of a number when it cannot compute one
(too few bars, a missing volume, no variance); the builder decides what that becomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise

from bastion.engine.indicators.quality import Bar

SECONDS_PER_YEAR_24X7 = 365.25 * 86_400
SECONDS_PER_YEAR_US_EQUITY_SESSION = 252 * 23_400


@dataclass(frozen=True, slots=True)
class Unknown:
    """A metric that could not be computed, and why (shown in the build's fallbacks)."""

    reason: str


Metric = Decimal | Unknown


@dataclass(frozen=True, slots=True)
class Windows:
    recent_bars: int = 30
    correlation_bars: int = 60
    baseline_bars: int = 240
    min_correlation_points: int = 20

    def __post_init__(self) -> None:
        if min(self.recent_bars, self.correlation_bars, self.baseline_bars) < 2:
            raise ValueError(f"every window needs at least 2 bars: {self}")
        if not 3 <= self.min_correlation_points <= self.correlation_bars:
            raise ValueError(f"min_correlation_points must be from 3 to correlation_bars: {self}")

    @property
    def current_bars(self) -> int:
        """The longest current window, in bars (one more than its returns)."""
        return max(self.recent_bars, self.correlation_bars) + 1

    @property
    def required_bars(self) -> int:
        return self.baseline_bars + self.current_bars


def quantize(value: Decimal, places: int) -> Decimal:
    step = _STEPS.get(places)
    if step is None:
        step = Decimal(1).scaleb(-places)
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


_STEPS = {places: Decimal(1).scaleb(-places) for places in range(10)}  # 1, 0.1, ... 1E-9


def split(bars: Sequence[Bar], windows: Windows, current: int) -> tuple[list[Bar], list[Bar]]:
    """(the last ``current`` bars, the baseline bars before the longest current window)."""
    cut = len(bars) - windows.current_bars
    baseline = list(bars[max(0, cut - windows.baseline_bars) : max(0, cut)])
    return list(bars[-current:]) if current else [], baseline


def log_returns(bars: Sequence[Bar], memo: ReturnsMemo | None = None) -> dict[datetime, float]:
    """Close-to-close log return of each bar after the first, keyed by its open time;
    with a ``memo``, the same dict from returns worked out before."""
    if memo is not None:
        return memo.log_returns(bars)
    return {b.timestamp: math.log(float(b.close) / float(a.close)) for a, b in pairwise(bars)}


class ReturnsMemo:
    """The log return of every (bar, next bar) pair :meth:`log_returns` worked out, so that
    windows sliding over a series (each metric's window in a build, every build) reuse
    them: ``float(Decimal)`` and ``log`` cost about five times a look-up. Reused only for
    the very same two bar objects (frozen records); anything else is worked out again, so
    the returns are those without a memo (tests/adapters/test_returns_memo.py). Holds at
    most :attr:`LIMIT` pairs, then starts afresh. Not thread-safe: one per thread."""

    __slots__ = ("_pairs",)
    LIMIT = 20_000  # pairs; then it starts afresh (bars it alone kept are freed)

    def __init__(self) -> None:
        # id(bar) -> (the bar before, the bar, the return). The tuple keeps both bars
        # alive, so no other object can take a key's id while it is a key.
        self._pairs: dict[int, tuple[Bar, Bar, float]] = {}

    def log_returns(self, bars: Sequence[Bar]) -> dict[datetime, float]:
        pairs = self._pairs
        if len(pairs) > self.LIMIT:
            pairs.clear()
        returns: dict[datetime, float] = {}
        for before, bar in pairwise(bars):
            known = pairs.get(id(bar))
            if known is not None and known[0] is before and known[1] is bar:
                value = known[2]
            else:
                value = math.log(float(bar.close) / float(before.close))
                pairs[id(bar)] = (before, bar, value)
            returns[bar.timestamp] = value  # a repeated stamp: as the comprehension does
        return returns


def volatility(
    bars: Sequence[Bar],
    interval_s: int,
    seconds_per_year: float,
    *,
    need: int,
    memo: ReturnsMemo | None = None,
) -> Metric:
    """Annualised sample stdev of the log returns of ``bars`` (``need`` + 1 bars)."""
    if len(bars) < need + 1:
        return Unknown(f"{len(bars)} bars, volatility needs {need + 1}")
    returns = list(log_returns(bars[-(need + 1) :], memo).values())
    mean = math.fsum(returns) / len(returns)
    squares = math.fsum((r - mean) ** 2 for r in returns)
    return volatility_of(squares, len(returns), interval_s, seconds_per_year)


def volatility_of(squares: float, count: int, interval_s: int, seconds_per_year: float) -> Decimal:
    """The annualised volatility of ``count`` returns whose squared deviations from
    their mean sum to ``squares``, rounded; monotone in ``squares`` (column_metrics
    relies on it)."""
    variance = squares / (count - 1)
    annualised = math.sqrt(variance * seconds_per_year / interval_s)
    return quantize(Decimal(repr(annualised)), 6)


def window_volume(bars: Sequence[Bar], *, need: int, dollars: bool) -> Metric:
    """Σ volume (or Σ close × volume) of the last ``need`` bars."""
    if len(bars) < need:
        return Unknown(f"{len(bars)} bars, the window needs {need}")
    window = bars[-need:]
    if any(bar.volume is None for bar in window):
        return Unknown("a bar of the window has no volume")
    total = sum((_volume(bar, dollars) for bar in window), Decimal(0))
    return quantize(total, 2) if dollars else total


def average_window_volume(
    baseline: Sequence[Bar], *, window_bars: int, need: int, dollars: bool
) -> Metric:
    """Mean bar volume (or dollar volume) of the baseline × ``window_bars``."""
    if len(baseline) < need:
        return Unknown(f"{len(baseline)} baseline bars, the baseline needs {need}")
    if any(bar.volume is None for bar in baseline):
        return Unknown("a baseline bar has no volume")
    total = sum((_volume(bar, dollars) for bar in baseline), Decimal(0))
    return average_of(total, window_bars, len(baseline))


def average_of(total: Decimal, window_bars: int, count: int) -> Decimal:
    """The volume of an average ``window_bars`` window, from ``count`` bars' ``total``."""
    return quantize(total * window_bars / count, 2)


def _volume(bar: Bar, dollars: bool) -> Decimal:
    assert bar.volume is not None
    return bar.close * bar.volume if dollars else bar.volume


def correlation(
    bars: Sequence[Bar],
    benchmark: Sequence[Bar],
    *,
    need: int,
    min_points: int,
    benchmark_returns: Mapping[datetime, float] | None = None,
    memo: ReturnsMemo | None = None,
) -> Metric:
    """Pearson correlation of the last ``need`` returns of ``bars`` with the benchmark's
    returns over the same bar intervals (matched by the bar's open time).
    ``benchmark_returns``: ``log_returns(benchmark)`` when the caller has it already;
    ``memo``: see :class:`ReturnsMemo`."""
    if len(bars) < 2:
        return Unknown(f"{len(bars)} bars, correlation needs returns")
    own = log_returns(bars[-(need + 1) :], memo)
    theirs = log_returns(benchmark, memo) if benchmark_returns is None else benchmark_returns
    common = [stamp for stamp in own if stamp in theirs]
    if len(common) < min_points:
        return Unknown(f"{len(common)} returns in common with the benchmark, need {min_points}")
    xs, ys = [own[s] for s in common], [theirs[s] for s in common]
    mean_x, mean_y = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    cov = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = math.fsum((x - mean_x) ** 2 for x in xs)
    var_y = math.fsum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return Unknown("the returns do not vary, so correlation is undefined")
    return clamped_correlation(cov, var_x, var_y)


def clamped_correlation(cov: float, var_x: float, var_y: float) -> Decimal:
    """cov / √(var_x·var_y), clamped to ±1 and rounded; monotone in ``cov`` and, for a
    ``cov`` of one sign, in ``var_x·var_y`` (column_metrics relies on it)."""
    value = max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y)))
    return quantize(Decimal(repr(value)), 4)
