"""Market metrics of a series that moved on by a bar, from its columns (:mod:`market_columns`).

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
are worked out at once by :mod:`column_batch`: other orders of the same sums, within
the same bound, and the same decisions.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal, getcontext
from typing import cast

import numpy as np

from bastion.adapters.market_columns import (
    BAD_VOLUMES,
    DOLLAR_EXPONENT,
    DOLLAR_SHIFTS,
    DOLLARS,
    EXACT,
    VOLUME_EXPONENT,
    VOLUME_SHIFTS,
    VOLUMES,
    Prefix,
    SeriesColumns,
    unit_of,
)
from bastion.adapters.market_metrics import (
    Metric,
    average_of,
    clamped_correlation,
    quantize,
    volatility_of,
)

_UNDERFLOW = 2.0**-1070  # per term: what a square or product lost to underflow, at most


# -- Decimal sums ---------------------------------------------------------------------


def window_sum(columns: SeriesColumns, start: int, stop: int, *, dollars: bool) -> Decimal | None:
    """``sum(volume (or close × volume) of bars[start:stop], Decimal(0))`` as the
    reference computes it in the current context, or None (see the module's text)."""
    prefix, start, stop = columns.rows.prefix, columns.base + start, columns.base + stop
    if stop <= start or prefix[stop][BAD_VOLUMES] != prefix[start][BAD_VOLUMES]:
        return None
    if dollars:
        return _dollar_sum(prefix, start, stop, getcontext())
    return _volume_sum(prefix, start, stop, getcontext())


def window_sums(
    columns: SeriesColumns, start: int, stop: int
) -> tuple[Decimal | None, Decimal | None]:
    """(``window_sum(..., dollars=False)``, ``window_sum(..., dollars=True)``) at once."""
    prefix, start, stop = columns.rows.prefix, columns.base + start, columns.base + stop
    if stop <= start or prefix[stop][BAD_VOLUMES] != prefix[start][BAD_VOLUMES]:
        return None, None
    context = getcontext()
    return _volume_sum(prefix, start, stop, context), _dollar_sum(prefix, start, stop, context)


# Rows start to stop − 1 (a window without a missing or negative volume): the exact
# sum of prefix[stop] less prefix[start], with the smallest exponent of the rows' terms
# (row start's, read in prefix[start + 1], when no row after it has another).


def _volume_sum(prefix: list[Prefix], start: int, stop: int, context: Context) -> Decimal | None:
    return _prefix_sum(prefix, start, stop, context, (VOLUMES, VOLUME_SHIFTS, VOLUME_EXPONENT))


def _dollar_sum(prefix: list[Prefix], start: int, stop: int, context: Context) -> Decimal | None:
    return _prefix_sum(prefix, start, stop, context, (DOLLARS, DOLLAR_SHIFTS, DOLLAR_EXPONENT))


def _prefix_sum(
    prefix: list[Prefix], start: int, stop: int, context: Context, fields: tuple[int, int, int]
) -> Decimal | None:
    """One column's window sum; ``fields``: where its running sum, its count of exponent
    shifts and its row's exponent sit in a prefix row."""
    total_at, shifts_at, exponent_at = fields
    after, first = prefix[stop], prefix[start + 1]
    total = EXACT.subtract(after[total_at], prefix[start][total_at])
    exponent: int
    if after[shifts_at] == first[shifts_at]:  # one exponent throughout
        exponent = cast(int, first[exponent_at])
    else:
        exponent = min(cast(int, row[exponent_at]) for row in prefix[start + 1 : stop + 1])
    return _exact_sum(total, min(0, exponent), context)


def _exact_sum(total: Decimal, exponent: int, context: Context) -> Decimal | None:
    """The reference's sum in ``context`` of terms whose exact sum is ``total`` and
    whose smallest exponent (and 0's) is ``exponent``, or None."""
    # Each term (a product, for dollars) is at most the total and has an exponent at
    # least its: when the total fits, so does every term and every partial sum.
    unit = unit_of(exponent)
    if not total.same_quantum(unit):
        total = total.quantize(unit, context=EXACT)
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


def window_volumes(
    columns: SeriesColumns, start: int, stop: int
) -> tuple[Decimal | None, Decimal | None]:
    """(window_volume(..., dollars=False), window_volume(..., dollars=True)) at once."""
    volume, dollars = window_sums(columns, start, stop)
    return volume, None if dollars is None else quantize(dollars, 2)


def average_window_volume(
    columns: SeriesColumns, start: int, stop: int, *, window_bars: int, dollars: bool
) -> Metric | None:
    """market_metrics.average_window_volume of the baseline bars[start:stop], or None."""
    total = window_sum(columns, start, stop, dollars=dollars)
    return None if total is None else average_of(total, window_bars, stop - start)


def average_window_volumes(
    columns: SeriesColumns, start: int, stop: int, *, window_bars: int
) -> tuple[Decimal | None, Decimal | None]:
    """(average_window_volume(..., dollars=False), (..., dollars=True)) at once."""
    volume, dollars = window_sums(columns, start, stop)
    count = stop - start
    return (
        None if volume is None else average_of(volume, window_bars, count),
        None if dollars is None else average_of(dollars, window_bars, count),
    )


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
