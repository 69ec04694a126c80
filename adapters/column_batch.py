"""The windows of many series at once: :mod:`column_metrics`' float statistics for the
symbols of a poll, each kind of window of all of them in a few numpy operations.

The same values as :func:`column_metrics.volatility` / :func:`column_metrics.correlation`
window by window (so the reference's, bit for bit, or None): the rows are stacked and
their dot products taken together — other orders of the same products, within the same
bound — and the decisions of :func:`column_metrics.volatility_within` /
:func:`column_metrics.correlation_within` are taken for all the sums at once: the same
float operations in the same order, element by element (IEEE: +, −, ×, ÷ and sqrt are
correctly rounded in numpy as in Python, and numpy fuses none of them), then each end
rounded as the reference rounds its float. tests/adapters/test_column_batch.py compares
both, on generated windows and on edge sums (zero, tiny, huge, inf, NaN; narrow contexts).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import cast

import numpy as np
import numpy.typing as npt

from bastion.adapters import column_metrics
from bastion.adapters.market_columns import Floats, Prepared, SeriesColumns

BoolArray = npt.NDArray[np.bool_]

Window = tuple[SeriesColumns, int, int]  # the columns, start, stop
Values = list[Decimal | None]


def volatilities(
    windows: Sequence[Window], interval_s: int, seconds_per_year: Sequence[float]
) -> Values:
    """:func:`column_metrics.volatility` of each window (all of one length), or None."""
    prepared = [c.window(start, stop) for c, start, stop in windows]
    return volatilities_of(prepared, interval_s, seconds_per_year)


def correlations(windows: Sequence[Window], benchmark: SeriesColumns, *, min_points: int) -> Values:
    """:func:`column_metrics.correlation` of each window (all of one length) with
    ``benchmark``, for the windows whose stamps are a run of the benchmark's; None for
    the others."""
    prepared = [c.window(start, stop) for c, start, stop in windows]
    return correlations_of(prepared, _length(windows), benchmark, min_points=min_points)


def volatilities_and_correlations(
    windows: Sequence[Window],
    interval_s: int,
    seconds_per_year: Sequence[float],
    benchmarks: Sequence[SeriesColumns | None],
    *,
    min_points: int,
) -> tuple[Values, Values]:
    """(:func:`volatilities` — None for all when the windows are shorter —, each
    window's :func:`correlations` with its benchmark — None without one —) of the same
    windows (a baseline's two metrics), their deviations worked out once."""
    prepared = [c.window(start, stop) for c, start, stop in windows]
    return volatilities_and_correlations_of(
        prepared, _length(windows), interval_s, seconds_per_year, benchmarks, min_points=min_points
    )


def _length(windows: Sequence[Window]) -> int:
    """The windows' count of returns; ValueError when they are not all of one length."""
    if not windows:
        return 0
    _, start, stop = windows[0]
    count = stop - start - 1
    if any(b - a - 1 != count for _, a, b in windows):
        raise ValueError("every window of one length")
    return count


# The same, from the windows as SeriesColumns.window gives them — (their returns, the
# mean of those, their stamps), or None when a return is not usable — worked out by the
# caller where it has the series' rows at hand (the builder: as it extends them).


def volatilities_of(
    prepared: Sequence[Prepared | None], interval_s: int, seconds_per_year: Sequence[float]
) -> Values:
    """:func:`volatilities` of the windows ``prepared``."""
    values: Values = [None] * len(prepared)
    usable = [n for n, window in enumerate(prepared) if window is not None]
    if not usable:
        return values
    deviations, squares = _spread(prepared, usable)
    count = deviations.shape[1]
    if count < 2:
        raise ValueError("volatilities: every window of one length, of 3 bars or more")
    _volatilities_into(values, usable, squares, count, interval_s, seconds_per_year)
    return values


def correlations_of(
    prepared: Sequence[Prepared | None], count: int, benchmark: SeriesColumns, *, min_points: int
) -> Values:
    """:func:`correlations` of the windows ``prepared``, of ``count`` returns each."""
    usable = [n for n, window in enumerate(prepared) if window is not None]
    return _correlations(prepared, count, benchmark, min_points, usable, None)


def volatilities_and_correlations_of(
    prepared: Sequence[Prepared | None],
    count: int,
    interval_s: int,
    seconds_per_year: Sequence[float],
    benchmarks: Sequence[SeriesColumns | None],
    *,
    min_points: int,
) -> tuple[Values, Values]:
    """:func:`volatilities_and_correlations` of the windows ``prepared``, of ``count``
    returns each."""
    values: Values = [None] * len(prepared)
    ties: Values = [None] * len(prepared)
    usable = [n for n, window in enumerate(prepared) if window is not None]
    if not usable:
        return values, ties
    deviations, squares = _spread(prepared, usable)
    if count >= 2:
        _volatilities_into(values, usable, squares, count, interval_s, seconds_per_year)
    for benchmark in {id(b): b for b in benchmarks if b is not None}.values():
        positions = [k for k, n in enumerate(usable) if benchmarks[n] is benchmark]
        if not positions:
            continue
        own = [usable[k] for k in positions]
        rows = np.array(positions)
        spread = (deviations[rows], squares[rows])
        found = _correlations(prepared, count, benchmark, min_points, own, spread)
        for n in own:
            ties[n] = found[n]
    return values, ties


def _spread(prepared: Sequence[Prepared | None], usable: list[int]) -> tuple[Floats, Floats]:
    """(the deviations of the ``usable`` windows' returns from their means, one row
    each, and their sums of squares)."""
    chosen = [cast("Prepared", prepared[n]) for n in usable]
    count = len(chosen[0][0])
    if any(len(window[0]) != count for window in chosen):
        raise ValueError("every window of one length")
    rows = np.concatenate([window[0] for window in chosen]).reshape(len(chosen), count)
    deviations = rows - np.array([window[1] for window in chosen])[:, None]
    return deviations, np.einsum("ij,ij->i", deviations, deviations)


def _volatilities_into(
    values: Values,
    usable: list[int],
    squares: Floats,
    count: int,
    interval_s: int,
    years: Sequence[float],
) -> None:
    per_window = np.array([years[n] for n in usable], dtype=np.float64)
    found = volatilities_within(squares, count, interval_s, per_window)
    for n, value in zip(usable, found, strict=True):
        values[n] = value


def _correlations(
    prepared: Sequence[Prepared | None],
    count: int,
    benchmark: SeriesColumns,
    min_points: int,
    usable: list[int],
    spread: tuple[Floats, Floats] | None,
) -> Values:
    """correlations of the ``usable`` windows (the others: None); with ``spread``,
    their deviations and squares, one row each (as their volatility worked them out)."""
    values: Values = [None] * len(prepared)
    width = len(benchmark.bars)
    if not prepared or width < 2 or not benchmark.pairs_ok(0, width):
        return values
    if count < max(1, min_points) or not usable or count > width - 1:
        return values
    chosen = [cast("Prepared", prepared[n]) for n in usable]
    theirs = benchmark.stamps(1, width)
    stacked = np.concatenate([window[2] for window in chosen]).reshape(len(chosen), count)
    firsts = np.minimum(np.searchsorted(theirs, stacked[:, 0]), width - 1 - count)
    runs = firsts[:, None] + np.arange(count)
    aligned = (theirs[runs] == stacked).all(axis=1)
    rows = np.flatnonzero(aligned)  # of the usable windows, those aligned
    if not len(rows):
        return values
    kept = [usable[row] for row in rows.tolist()]
    starts = firsts[rows]
    ys = benchmark.returns(0, width)[starts[:, None] + np.arange(count)]
    means = {first: benchmark.mean(first, first + 1 + count) for first in set(starts.tolist())}
    dy = ys - np.array([means[first] for first in starts.tolist()])[:, None]
    if spread is None:
        dx, vars_x = _spread(prepared, kept)
    else:
        dx, vars_x = spread[0][rows], spread[1][rows]
    covs = np.einsum("ij,ij->i", dx, dy)
    vars_y = np.einsum("ij,ij->i", dy, dy)
    found = correlations_within(covs, vars_x, vars_y, count)
    for n, value in zip(kept, found, strict=True):
        values[n] = value
    return values


def volatilities_within(
    squares: Floats, count: int, interval_s: int, seconds_per_year: Floats
) -> Values:
    """:func:`column_metrics.volatility_within` of each sum of squares (with its seconds
    per year): its float operations, in its order, on all of them."""
    with np.errstate(all="ignore"):  # inf and nan go on as in Python, then to None
        # column_metrics' bound, read at each call as column_metrics reads it
        bound, underflow = column_metrics._relative_error(count), column_metrics._UNDERFLOW
        error = squares * bound + count * underflow
        lower = squares - error
        low = np.where(lower > 0.0, lower, 0.0)  # max(0.0, lower)
        high = squares + error
        low_args = low / (count - 1) * seconds_per_year / interval_s
        high_args = high / (count - 1) * seconds_per_year / interval_s
        low_ends, high_ends = np.sqrt(low_args), np.sqrt(high_args)
        finite = np.isfinite(squares)
        # Where Python raises instead (÷ 0, √ of a negative), the one-window function.
        odd = finite & ~((low_args >= 0) & (high_args >= 0))
    values = _rounded(low_ends, high_ends, finite & ~odd, _PLACES_VOLATILITY)
    if interval_s == 0 or odd.any():
        for n in range(len(values)) if interval_s == 0 else np.flatnonzero(odd).tolist():
            values[n] = column_metrics.volatility_within(
                float(squares[n]), count, interval_s, float(seconds_per_year[n])
            )
    return values


def correlations_within(covs: Floats, vars_x: Floats, vars_y: Floats, count: int) -> Values:
    """:func:`column_metrics.correlation_within` of each (cov, var_x, var_y)."""
    relative = column_metrics._relative_error(count)
    underflow = count * column_metrics._UNDERFLOW
    with np.errstate(all="ignore"):
        low_x, high_x = vars_x * (1 - relative) - underflow, vars_x * (1 + relative) + underflow
        low_y, high_y = vars_y * (1 - relative) - underflow, vars_y * (1 + relative) + underflow
        spread = np.sqrt(high_x * high_y) * relative * (1 + relative) + underflow
        low_cov, high_cov = covs - spread, covs + spread
        rising = low_cov > 0  # else falling (high_cov < 0) or about 0 (None)
        lowest, low_roots = _clamped(
            low_cov, np.where(rising, high_x, low_x), np.where(rising, high_y, low_y)
        )
        highest, high_roots = _clamped(
            high_cov, np.where(rising, low_x, high_x), np.where(rising, low_y, high_y)
        )
        decided = (
            np.isfinite(covs)
            & np.isfinite(vars_x)
            & np.isfinite(vars_y)
            & (low_x > 0)
            & (low_y > 0)
            & (rising | (high_cov < 0))
        )
        # Where Python raises instead (÷ 0: a product of variances that underflows).
        odd = decided & ((low_roots == 0) | (high_roots == 0))
    values = _rounded(lowest, highest, decided & ~odd, _PLACES_CORRELATION)
    for n in np.flatnonzero(odd).tolist():
        values[n] = column_metrics.correlation_within(
            float(covs[n]), float(vars_x[n]), float(vars_y[n]), count
        )
    return values


def _clamped(covs: Floats, vars_x: Floats, vars_y: Floats) -> tuple[Floats, Floats]:
    """(max(-1.0, min(1.0, cov / sqrt(var_x·var_y))), as Python's min and max pick,
    and the roots: where one is 0, Python raises)."""
    roots = np.sqrt(vars_x * vars_y)
    values = covs / roots
    values = np.where(values < 1.0, values, 1.0)  # min(1.0, v): v only when below
    return np.where(values > -1.0, values, -1.0), roots  # max(-1.0, v): v only when above


_PLACES_VOLATILITY = 6  # market_metrics.volatility_of's places
_PLACES_CORRELATION = 4  # market_metrics.clamped_correlation's places


def _rounded(lows: Floats, highs: Floats, decided: BoolArray, places: int) -> Values:
    """Per window, each end rounded as the reference rounds its float (quantize of its
    repr to ``places``, half even, in the caller's context): the value when both ends
    round alike, else None — and None where ``decided`` is False or a rounding raises.
    The second end is rounded only where :func:`_alike` cannot tell that it rounds as
    the first."""
    step = Decimal(1).scaleb(-places)
    alike = _alike(lows, highs, places).tolist()
    values: Values = []
    for low, high, keep, same_cell in zip(
        lows.tolist(), highs.tolist(), decided.tolist(), alike, strict=True
    ):
        if not keep:
            values.append(None)
            continue
        try:
            value = Decimal(repr(low)).quantize(step, ROUND_HALF_EVEN)
            if same_cell or (high == low and high != 0.0):  # (the very same float, not ±0)
                values.append(value)
                continue
            other = Decimal(repr(high)).quantize(step, ROUND_HALF_EVEN)
        except ArithmeticError:  # a context too narrow: the reference decides
            values.append(None)
            continue
        # Both have the step's exponent: equal non-zero numbers are the same digits.
        same = (value == other and value != 0) or value.as_tuple() == other.as_tuple()
        values.append(value if same else None)
    return values


_CELL_MARGIN = 2.0**-12  # of a rounding cell (scaled: 1 wide); far beyond 2**-16
_CELL_RANGE = 2.0**36  # scaled values below it: repr and scaling err by under 2**-16


def _alike(lows: Floats, highs: Floats, places: int) -> BoolArray:
    """Where both ends surely round alike: scaled by 10**places (t = fl(x·10**places)),
    both in one rounding cell — the same floor, on the same side of its middle — and
    at least _CELL_MARGIN from its edges and middle. Why that suffices: for |t| <
    2**36, ulp(t) ≤ 2**-16 and 10**places·ulp(x) ≤ |t|·2**-52·(1 + 2**-53) < 2**-16,
    so repr(x)·10**places (repr within ulp(x)/2 of x) lies within 2**-16 of t: in the
    same open half of the same cell, no tie, so it rounds (half even or not) to the
    same end of that cell — and with the same sign (one floor: one sign, and t = ±0
    has a fraction 0, below the margin). t − floor(t) is exact there. NaN and inf
    fail every comparison: not alike."""
    with np.errstate(all="ignore"):
        scaled_lows, scaled_highs = lows * 10.0**places, highs * 10.0**places
        floor_lows, floor_highs = np.floor(scaled_lows), np.floor(scaled_highs)
        low_parts, high_parts = scaled_lows - floor_lows, scaled_highs - floor_highs
        alike: BoolArray = (
            (np.abs(scaled_lows) < _CELL_RANGE)
            & (np.abs(scaled_highs) < _CELL_RANGE)
            & (floor_lows == floor_highs)
            & _clear(low_parts)
            & _clear(high_parts)
            & ((low_parts < 0.5) == (high_parts < 0.5))
        )
    return alike


def _clear(parts: Floats) -> BoolArray:
    """Fractions at least _CELL_MARGIN from 0, ½ and 1."""
    margin = _CELL_MARGIN
    below: BoolArray = (parts >= margin) & (parts <= 0.5 - margin)
    above: BoolArray = (parts >= 0.5 + margin) & (parts <= 1.0 - margin)
    return below | above
