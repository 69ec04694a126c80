"""Market metrics of a series that moved on by a bar, from columns kept between builds.

:mod:`market_metrics` is the reference: each function there reads its window bar by bar.
A poll a bar interval after the last sees each series moved on by a bar, so the builder
keeps, per symbol, what every bar gives (:class:`SeriesColumns`: log returns, their
stamps, exact running sums) and works a window out of those. Every value returned here
is the reference's, bit for bit, or None — and then the caller asks the reference
(tests/adapters/test_market_columns.py checks both against it on generated series).
How each kind of value keeps that promise:

- **Decimal sums** (volume, liquidity and their baselines): running sums kept exactly
  (a context that never rounds); a window's sum is the difference of two. The
  reference's own running sum, ``sum(..., Decimal(0))`` in the caller's context, is
  exact too when the terms are non-negative and the total fits the context's precision
  at the smallest exponent of the terms (each partial sum then fits as well), so the
  two are the same number; it is given the reference's exponent (the smallest of the
  terms' and 0's). A missing or negative volume, or a total that does not fit: None.
- **Means** (of returns): ``math.fsum`` is the correctly rounded sum, so the mean is
  ``(exact integer sum of the returns in units of 2**-k) / 2**k`` (int / int is
  correctly rounded too) divided by the count, as the reference divides it.
- **Sums of squares and products** (volatility, correlation): the deviations from the
  mean are the reference's floats (one IEEE subtraction each); their dot products are
  taken by numpy (BLAS), whose error is at most ``γ_n·Σ|x_i·y_i|`` in any order, with
  or without FMA (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1); the
  reference's ``fsum`` of ``(x − mean) ** 2`` (libm ``pow``, within 1 ulp of the
  square in glibc and musl) lies within :func:`_relative_error` of the dot product.
  The reference's result is a monotone function of these sums (``/``, ``*``, ``sqrt``,
  ``repr`` and rounding half-even all are), so the rounded result at both ends of the
  interval decides: equal, it is the reference's; not (a rounding boundary, a
  correlation about 0 or a variance about 0 within reach), None.

Series whose stamps do not strictly increase, or are not on a fixed UTC offset (a dict
keyed by such stamps, as the reference's, does not follow their order), have no fast
windows over those bars: None again. The windows of many symbols (one length each call)
are worked out at once by :func:`volatilities` and :func:`correlations`: other orders of
the same sums, within the same bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, getcontext
from operator import is_

import numpy as np
import numpy.typing as npt

from bastion.adapters.market_metrics import (
    Metric,
    average_of,
    clamped_correlation,
    quantize,
    volatility_of,
)
from bastion.engine.indicators.quality import Bar

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # never rounds a sum
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_REUSE_WITHIN = 64  # look this many bars into the last series for the new first bar
_UNDERFLOW = 2.0**-1070  # per term: what a square or product lost to underflow, at most

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class _Rows:
    """What each bar gives, by row, for the series of one symbol as it moves on: new
    bars are appended, the bars that left stay until a compaction copies the rest.

    ``returns[i]``: ``log(close[i] / close[i − 1])`` as the reference computes it (NaN
    when there is none); ``stamps[i]``: bar i's open time in µs since the epoch;
    ``bad_pairs[i]``: how many rows before i have no usable return (the first row; a
    stamp not after the one before or not on a fixed offset; no finite return);
    ``return_units[i]``: the exact sum of the returns of the rows before i, in units of
    ``2**-unit_bits`` (the finest any return so far needs: every finite float is an
    integer number of 2**-1074, and most need far fewer bits). ``volumes[i]`` /
    ``dollars[i]``: the exact sums of volume / close × volume of the rows before i;
    ``bad_volumes[i]``: how many rows before i have no volume or a negative one. Per
    row, the exponent of the volume and of the dollar volume;
    ``volume_shifts[i]`` / ``dollar_shifts[i]``: how many rows before i have another
    exponent than the row before them (a window without one has a single exponent)."""

    __slots__ = (
        "bad_pairs",
        "bad_volumes",
        "dollar_exponents",
        "dollar_shifts",
        "dollars",
        "return_units",
        "returns",
        "size",
        "stamps",
        "unit_bits",
        "volume_exponents",
        "volume_shifts",
        "volumes",
    )

    def __init__(self, capacity: int = 512) -> None:
        self.size = 0
        self.returns: Floats = np.empty(capacity)
        self.stamps: Ints = np.empty(capacity, dtype=np.int64)
        self.volume_exponents: Ints = np.empty(capacity, dtype=np.int64)
        self.dollar_exponents: Ints = np.empty(capacity, dtype=np.int64)
        self.bad_pairs, self.return_units, self.bad_volumes = [0], [0], [0]
        self.unit_bits = 0
        self.volumes, self.dollars = [Decimal(0)], [Decimal(0)]
        self.volume_shifts, self.dollar_shifts = [0], [0]

    def cut(self, start: int, end: int) -> _Rows:
        """Rows ``start`` to ``end`` (exclusive) only: in place when ``start`` is near
        the beginning, else copied to new buffers."""
        if start < _COMPACT_AFTER or start < self.size // 2:
            self.size = end
            for running in (self.bad_pairs, self.return_units, self.volumes, self.dollars):
                del running[end + 1 :]
            for shifts in (self.bad_volumes, self.volume_shifts, self.dollar_shifts):
                del shifts[end + 1 :]
            return self
        rows = _Rows(max(512, 2 * (end - start)))
        rows.size = end - start
        for name in ("returns", "stamps", "volume_exponents", "dollar_exponents"):
            getattr(rows, name)[: rows.size] = getattr(self, name)[start:end]
        rows.bad_pairs = self.bad_pairs[start : end + 1]
        rows.return_units = self.return_units[start : end + 1]
        rows.unit_bits = self.unit_bits
        rows.volumes, rows.dollars = self.volumes[start : end + 1], self.dollars[start : end + 1]
        rows.bad_volumes = self.bad_volumes[start : end + 1]
        rows.volume_shifts = self.volume_shifts[start : end + 1]
        rows.dollar_shifts = self.dollar_shifts[start : end + 1]
        return rows

    def extend(self, bars: Sequence[Bar], before: Bar | None) -> None:
        """Rows for ``bars``, which follow ``before`` (the last row's bar, if any)."""
        if self.size + len(bars) > len(self.returns):
            self._grow(self.size + len(bars))
        bad_pairs, units = self.bad_pairs, self.return_units
        volumes, dollars, bad_volumes = self.volumes, self.dollars, self.bad_volumes
        row = self.size
        for bar in bars:
            stamp, move = _stamp(bar.timestamp), None
            if before is not None and stamp is not None:
                previous = before.timestamp
                if type(previous.tzinfo) is timezone and bar.timestamp > previous:
                    move = _log_return(before, bar)
            self.returns[row] = math.nan if move is None else move
            self.stamps[row] = 0 if stamp is None else stamp
            bad_pairs.append(bad_pairs[-1] + (move is None))
            step = 0 if move is None else self._units(move)  # may rescale the sums first
            units.append(units[-1] + step)
            volume, exponent, dollar_exponent = bar.volume, 0, 0
            if volume is None or volume < 0:
                bad_volumes.append(bad_volumes[-1] + 1)
                volumes.append(volumes[-1])
                dollars.append(dollars[-1])
            else:
                dollar = _EXACT.multiply(bar.close, volume)
                exponent, dollar_exponent = _exponent(volume), _exponent(dollar)
                bad_volumes.append(bad_volumes[-1])
                volumes.append(_EXACT.add(volumes[-1], volume))
                dollars.append(_EXACT.add(dollars[-1], dollar))
            if row:
                volume_shift = exponent != self.volume_exponents[row - 1]
                dollar_shift = dollar_exponent != self.dollar_exponents[row - 1]
            else:
                volume_shift = dollar_shift = False
            self.volume_shifts.append(self.volume_shifts[-1] + volume_shift)
            self.dollar_shifts.append(self.dollar_shifts[-1] + dollar_shift)
            self.volume_exponents[row] = exponent
            self.dollar_exponents[row] = dollar_exponent
            before, row = bar, row + 1
        self.size = row

    def _units(self, value: float) -> int:
        """``value`` in units of 2**-unit_bits, the unit made finer first if it needs."""
        numerator, denominator = value.as_integer_ratio()  # a power of 2
        bits = denominator.bit_length() - 1
        if bits > self.unit_bits:  # finer: every running sum so far scaled up, exactly
            scale = bits - self.unit_bits
            self.return_units[:] = [units << scale for units in self.return_units]
            self.unit_bits = bits
        return numerator << (self.unit_bits - bits)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self.returns))
        for name in ("returns", "stamps", "volume_exponents", "dollar_exponents"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)


_COMPACT_AFTER = 256  # rows left behind (and half the rows) before the rest is copied


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """One series' rows: ``bars[i]`` is row ``base + i`` of ``rows``. Valid until the
    memo is asked for the same symbol's columns again (the rows move on)."""

    bars: tuple[Bar, ...]
    base: int
    rows: _Rows

    def pairs_ok(self, start: int, stop: int) -> bool:
        """Every return of bars[start:stop] (rows start + 1 to stop − 1) usable."""
        bad, base = self.rows.bad_pairs, self.base
        return bad[base + stop] == bad[base + start + 1]

    def returns(self, start: int, stop: int) -> Floats:
        """The returns of bars[start:stop]: from bars[start] to bars[start + 1] on."""
        return self.rows.returns[self.base + start + 1 : self.base + stop]

    def stamps(self, start: int, stop: int) -> Ints:
        return self.rows.stamps[self.base + start : self.base + stop]

    def mean(self, start: int, stop: int) -> float:
        """``math.fsum(returns) / count`` of bars[start:stop], from the exact sums."""
        rows, base = self.rows, self.base
        units = rows.return_units[base + stop] - rows.return_units[base + start + 1]
        return (units / (1 << rows.unit_bits)) / (stop - start - 1)


class ColumnsMemo:
    """Per symbol, the columns of the series seen last; a series that is the last one
    moved on (its first bar is one of the last series' bars and the very same objects
    follow it) gets the new bars' rows only. Columns are made only for a series seen
    moving on so (a first series, or one of new bar objects every poll, as a venue that
    parses its bars afresh gives, is only remembered: None, the reference is cheaper
    for one use). A cache: every value is the same without it. Not thread-safe: one
    per builder and thread."""

    __slots__ = ("_seen", "_series")
    LIMIT = 10_000  # symbols; then it starts afresh

    def __init__(self) -> None:
        self._series: dict[str, SeriesColumns] = {}
        self._seen: dict[str, tuple[Bar, ...]] = {}  # series without columns (yet)

    def of(self, symbol: str, bars: Sequence[Bar]) -> SeriesColumns | None:
        held = self._series.get(symbol)
        if held is not None and held.bars is bars:
            return held
        found = _overlap(held.bars, bars) if held is not None else None
        if held is not None and found is not None:
            start, kept = found
            base = held.base + start
            rows = held.rows.cut(base, base + kept)
            base = base if rows is held.rows else 0
        else:
            self._series.pop(symbol, None)
            seen = self._seen.get(symbol)
            if seen is None or seen is bars or _overlap(seen, bars) is None:
                if len(self._seen) >= self.LIMIT:
                    self._seen.clear()
                self._seen[symbol] = tuple(bars)
                return None
            del self._seen[symbol]  # it moves on: worth columns from now on
            columns = columns_of(bars)
            self._keep(symbol, columns)
            return columns
        rows.extend(bars[kept:], bars[kept - 1] if kept else None)
        columns = SeriesColumns(tuple(bars), base, rows)
        self._keep(symbol, columns)
        return columns

    def _keep(self, symbol: str, columns: SeriesColumns) -> None:
        if len(self._series) >= self.LIMIT:
            self._series.clear()
        self._series[symbol] = columns


def columns_of(bars: Sequence[Bar]) -> SeriesColumns:
    """The columns of ``bars`` afresh (a memo makes them only for a series moving on)."""
    rows = _Rows(max(512, len(bars)))
    rows.extend(bars, None)
    return SeriesColumns(tuple(bars), 0, rows)


def _overlap(old: tuple[Bar, ...], bars: Sequence[Bar]) -> tuple[int, int] | None:
    """(the row of ``old`` holding ``bars[0]``, how many bars from there on are the very
    same objects as ``bars``'), or None."""
    if not bars:
        return None
    first = bars[0]
    start = next((row for row in range(min(len(old), _REUSE_WITHIN)) if old[row] is first), -1)
    if start < 0:
        return None
    kept = min(len(old) - start, len(bars))
    if not all(map(is_, old[start : start + kept], bars[:kept])):
        return None
    return start, kept


def _stamp(moment: datetime) -> int | None:
    """µs since the epoch; None off a fixed offset (zone rules make equality and order of
    stamps differ from their instants')."""
    if type(moment.tzinfo) is not timezone:
        return None
    return (moment - _EPOCH) // _MICROSECOND


def _log_return(before: Bar, bar: Bar) -> float | None:
    """The reference's return (market_metrics.log_returns); None when it raises or is
    not finite (the reference, asked instead, says what is wrong)."""
    try:
        move = math.log(float(bar.close) / float(before.close))
    except (ArithmeticError, ValueError):
        return None
    return move if math.isfinite(move) else None


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: Bar refuses the others
    return exponent


# -- Decimal sums ---------------------------------------------------------------------


def window_sum(columns: SeriesColumns, start: int, stop: int, *, dollars: bool) -> Decimal | None:
    """``sum(volume (or close × volume) of bars[start:stop], Decimal(0))`` as the
    reference computes it in the current context, or None (see the module's text)."""
    rows, start, stop = columns.rows, columns.base + start, columns.base + stop
    if stop <= start or rows.bad_volumes[stop] != rows.bad_volumes[start]:
        return None
    context = getcontext()
    # Each term (a product, for dollars) is at most the total and has an exponent at
    # least its: when the total fits, so does every term and every partial sum.
    if dollars:
        sums, exponents, shifts = rows.dollars, rows.dollar_exponents, rows.dollar_shifts
    else:
        sums, exponents, shifts = rows.volumes, rows.volume_exponents, rows.volume_shifts
    total = _EXACT.subtract(sums[stop], sums[start])
    if shifts[stop] == shifts[start + 1]:  # one exponent throughout
        exponent = min(0, int(exponents[start]))
    else:
        exponent = min(0, int(exponents[start:stop].min()))
    if _exponent(total) != exponent:
        total = total.quantize(Decimal((0, (1,), exponent)), context=_EXACT)
    top = total.adjusted() if total else exponent
    if top - exponent + 1 > context.prec or exponent < context.Emin:
        return None
    if top > context.Emax - context.prec:
        return None
    return total


def window_volume(columns: SeriesColumns, start: int, stop: int, *, dollars: bool) -> Metric | None:
    """market_metrics.window_volume of bars[start:stop] (a full window), or None."""
    total = window_sum(columns, start, stop, dollars=dollars)
    if total is None:
        return None
    return quantize(total, 2) if dollars else total


def average_window_volume(
    columns: SeriesColumns, start: int, stop: int, *, window_bars: int, dollars: bool
) -> Metric | None:
    """market_metrics.average_window_volume of the baseline bars[start:stop], or None."""
    total = window_sum(columns, start, stop, dollars=dollars)
    return None if total is None else average_of(total, window_bars, stop - start)


# -- float statistics -----------------------------------------------------------------


def _relative_error(count: int) -> float:
    """A bound, relative to Σx², on |the dot product − the reference's fsum of pow
    squares| for ``count`` terms: γ_n (the dot product) + 4 ulp (pow, fsum, and the
    rounding of the bounds themselves) ≈ (count / 2 + 4)·2**-52; doubled and more."""
    return (2 * count + 32) * 2.0**-52


def volatility(
    columns: SeriesColumns, start: int, stop: int, interval_s: int, seconds_per_year: float
) -> Decimal | None:
    """market_metrics.volatility of bars[start:stop] (exactly its window), or None."""
    count = stop - start - 1
    if count < 2 or not columns.pairs_ok(start, stop):
        return None
    mean = columns.mean(start, stop)
    deviations = columns.returns(start, stop) - mean
    squares = float(deviations @ deviations)
    return volatility_within(squares, count, interval_s, seconds_per_year)


def volatility_within(
    squares: float, count: int, interval_s: int, seconds_per_year: float
) -> Decimal | None:
    """The rounded volatility every sum of squares within the bound of ``squares`` (a
    dot product of ``count`` deviations) gives, or None when they do not all give one:
    the rounded value is monotone in the sum, so its two ends decide."""
    if not math.isfinite(squares):
        return None
    error = squares * _relative_error(count) + count * _UNDERFLOW
    try:
        low = volatility_of(max(0.0, squares - error), count, interval_s, seconds_per_year)
        high = volatility_of(squares + error, count, interval_s, seconds_per_year)
    except ArithmeticError:  # a context too narrow for an end: the reference decides
        return None
    return low if low.as_tuple() == high.as_tuple() else None


def correlation(
    columns: SeriesColumns,
    start: int,
    stop: int,
    benchmark: SeriesColumns,
    *,
    min_points: int,
) -> Decimal | None:
    """market_metrics.correlation of the returns of bars[start:stop] with all of the
    benchmark's returns (matched by stamp), or None."""
    count = stop - start - 1
    width = len(benchmark.bars)
    if count < 1 or width < 2 or not columns.pairs_ok(start, stop):
        return None
    if not benchmark.pairs_ok(0, width):
        return None
    stamps = columns.stamps(start + 1, stop)
    theirs = benchmark.stamps(1, width)
    first = int(np.searchsorted(theirs, stamps[0]))
    if first + count <= len(theirs) and np.array_equal(theirs[first : first + count], stamps):
        if count < min_points:
            return None
        xs = columns.returns(start, stop)
        ys = benchmark.returns(first, first + 1 + count)
        mean_x = columns.mean(start, stop)
        mean_y = benchmark.mean(first, first + 1 + count)
    else:  # gaps: the stamps both have, in the series' order (both strictly increase)
        rows = np.minimum(np.searchsorted(theirs, stamps), len(theirs) - 1)
        common = theirs[rows] == stamps
        count = int(common.sum())
        if count < min_points:
            return None
        xs = columns.returns(start, stop)[common]
        ys = benchmark.returns(0, width)[rows[common]]
        mean_x = math.fsum(xs.tolist()) / count
        mean_y = math.fsum(ys.tolist()) / count
    dx, dy = xs - mean_x, ys - mean_y
    return correlation_within(float(dx @ dy), float(dx @ dx), float(dy @ dy), count)


def correlation_within(cov: float, var_x: float, var_y: float, count: int) -> Decimal | None:
    """The rounded correlation every (cov, var_x, var_y) within the bound of these dot
    products of ``count`` deviations gives, or None when they do not all give one."""
    if not (math.isfinite(var_x) and math.isfinite(var_y) and math.isfinite(cov)):
        return None
    relative, underflow = _relative_error(count), count * _UNDERFLOW
    low_x, high_x = var_x * (1 - relative) - underflow, var_x * (1 + relative) + underflow
    low_y, high_y = var_y * (1 - relative) - underflow, var_y * (1 + relative) + underflow
    if low_x <= 0 or low_y <= 0:
        return None  # a zero variance within reach: the reference says whether it is one
    # Σ|dx·dy| ≤ √(Σdx²·Σdy²) (Cauchy–Schwarz): the products' error is bounded by it.
    spread = math.sqrt(high_x * high_y) * relative * (1 + relative) + underflow
    low_cov, high_cov = cov - spread, cov + spread
    # The reference's value, clamped and rounded, is monotone in cov and, for a cov of
    # one sign, in var_x·var_y: its extremes are at two corners of the box.
    if low_cov > 0:  # the value falls as var_x·var_y grows: the extremes are these
        lowest, highest = (low_cov, high_x, high_y), (high_cov, low_x, low_y)
    elif high_cov < 0:  # the value rises as var_x·var_y grows
        lowest, highest = (low_cov, low_x, low_y), (high_cov, high_x, high_y)
    else:  # about 0: -0.0000 or 0.0000, the reference says which
        return None
    try:
        value = clamped_correlation(*lowest)
        other = clamped_correlation(*highest)
    except ArithmeticError:  # a context too narrow for an end: the reference decides
        return None
    return value if value.as_tuple() == other.as_tuple() else None


# -- many series at once --------------------------------------------------------------
#
# The same values for many windows of one length (the symbols of a poll): the rows
# stacked, one numpy operation for all. The sums are other roundings of the same
# products (any order is within the bound), so what is kept is still the reference's.

Window = tuple[SeriesColumns, int, int]  # the columns, start, stop


def volatilities(
    windows: Sequence[Window], interval_s: int, seconds_per_year: Sequence[float]
) -> list[Decimal | None]:
    """:func:`volatility` of each window (all of one length), or None for it."""
    values: list[Decimal | None] = [None] * len(windows)
    usable = [n for n, (c, start, stop) in enumerate(windows) if c.pairs_ok(start, stop)]
    if not usable:
        return values
    _, start, stop = windows[usable[0]]
    count = stop - start - 1
    if count < 2 or any(b - a - 1 != count for _, a, b in (windows[n] for n in usable)):
        raise ValueError("volatilities: every window of one length, of 3 bars or more")
    rows = np.stack([c.returns(a, b) for c, a, b in (windows[n] for n in usable)])
    means = np.array([c.mean(a, b) for c, a, b in (windows[n] for n in usable)])
    deviations = rows - means[:, None]
    squares = np.einsum("ij,ij->i", deviations, deviations).tolist()
    for n, value in zip(usable, squares, strict=True):
        values[n] = volatility_within(value, count, interval_s, seconds_per_year[n])
    return values


def correlations(
    windows: Sequence[Window], benchmark: SeriesColumns, *, min_points: int
) -> list[Decimal | None]:
    """:func:`correlation` of each window (all of one length) with ``benchmark``, for the
    windows whose stamps are a run of the benchmark's; None for the others."""
    values: list[Decimal | None] = [None] * len(windows)
    width = len(benchmark.bars)
    if not windows or width < 2 or not benchmark.pairs_ok(0, width):
        return values
    _, start, stop = windows[0]
    count = stop - start - 1
    if any(b - a - 1 != count for _, a, b in windows):
        raise ValueError("correlations: every window of one length")
    usable = [n for n, (c, a, b) in enumerate(windows) if c.pairs_ok(a, b)]
    if count < max(1, min_points) or not usable or count > width - 1:
        return values
    theirs = benchmark.stamps(1, width)
    stamps = np.stack([c.stamps(a + 1, b) for c, a, b in (windows[n] for n in usable)])
    firsts = np.minimum(np.searchsorted(theirs, stamps[:, 0]), width - 1 - count)
    runs = firsts[:, None] + np.arange(count)
    aligned = (theirs[runs] == stamps).all(axis=1).tolist()
    kept = [n for n, same in zip(usable, aligned, strict=True) if same]
    if not kept:
        return values
    starts = [int(first) for first, same in zip(firsts.tolist(), aligned, strict=True) if same]
    xs = np.stack([c.returns(a, b) for c, a, b in (windows[n] for n in kept)])
    ys = benchmark.returns(0, width)[np.array(starts)[:, None] + np.arange(count)]
    mean_x = np.array([c.mean(a, b) for c, a, b in (windows[n] for n in kept)])
    mean_y = np.array([benchmark.mean(first, first + 1 + count) for first in starts])
    dx, dy = xs - mean_x[:, None], ys - mean_y[:, None]
    covs = np.einsum("ij,ij->i", dx, dy).tolist()
    vars_x = np.einsum("ij,ij->i", dx, dx).tolist()
    vars_y = np.einsum("ij,ij->i", dy, dy).tolist()
    for n, cov, var_x, var_y in zip(kept, covs, vars_x, vars_y, strict=True):
        values[n] = correlation_within(cov, var_x, var_y, count)
    return values
