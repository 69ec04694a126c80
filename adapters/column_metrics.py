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
are worked out at once by :func:`volatilities` and :func:`correlations`: other orders of
the same sums, within the same bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, getcontext

import numpy as np

from bastion.adapters.market_columns import (
    EXACT,
    SeriesColumns,
    exponent_of,
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
    total = EXACT.subtract(sums[stop], sums[start])
    if shifts[stop] == shifts[start + 1]:  # one exponent throughout
        exponent = min(0, int(exponents[start]))
    else:
        exponent = min(0, int(exponents[start:stop].min()))
    if exponent_of(total) != exponent:
        total = total.quantize(Decimal((0, (1,), exponent)), context=EXACT)
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
