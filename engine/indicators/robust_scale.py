"""Order statistics of a sorted sample, for the bar-quality outlier screen.

:func:`bastion.engine.indicators.quality._robust_z` scores each value against the
sample's median and a scale, max(1.4826·MAD, 1.2533·mean absolute deviation). A bar
series that slides by a bar keeps its returns and ranges sorted (a few insertions and
removals), and :func:`none_beyond` tells from the sorted sample alone — without a
deviation per value — that no value would be scored beyond the limit, in which case
``_robust_z`` would return ``{}``. It answers True only when that is certain with the
very floats ``_robust_z`` computes:

- the median is the same order statistic ``statistics.median`` takes (the mean of the
  two middle ones for an even count);
- the deviations below the median, ``c − s[i]``, fall as ``i`` rises and those above,
  ``s[i] − c``, rise (IEEE subtraction is monotone and ``|x − c| == |c − x|`` exactly),
  so their median is found by bisection over two sorted runs: the same values
  ``sorted(deviations)`` would hold at the same places;
- ``d / scale`` rises with ``d`` and falls with ``scale`` (correctly rounded division is
  monotone): the largest deviation is at either end of the sample, and a scale that is
  at least 1.4826·MAD gives no larger a quotient than 1.4826·MAD itself. When that bound
  is not enough, the exact scale is computed (``math.fsum`` of the deviations, as
  ``statistics.fmean``) and the largest deviation tried against it.

Anything else (a non-finite value, a zero scale, a value that may be beyond) answers
False and the caller scores the sample value by value, as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import repeat
from math import fsum, isfinite
from operator import sub

MAD_TO_SIGMA = 1.4826  # MAD of a normal sample × this ≈ its standard deviation
MEAN_AD_TO_SIGMA = 1.2533  # mean absolute deviation × this ≈ σ, likewise


def median(ordered: Sequence[float]) -> float:
    """``statistics.median`` of a non-empty sample already sorted."""
    count = len(ordered)
    middle = count // 2
    if count % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def median_deviation(ordered: Sequence[float], center: float) -> float:
    """``statistics.median(abs(v - center) for v in ordered)`` of a sorted, finite,
    non-empty sample, found by bisection (no deviation list)."""
    count = len(ordered)
    middle = count // 2
    if count % 2:
        return _kth_deviation(ordered, center, middle)
    return (
        _kth_deviation(ordered, center, middle - 1) + _kth_deviation(ordered, center, middle)
    ) / 2


def _kth_deviation(ordered: Sequence[float], center: float, k: int) -> float:
    """The ``k``-th smallest (0-based) of ``abs(v - center)`` over ``ordered``: a merge of
    the run below the center (deviations rising as the values fall) and the run from the
    center up (deviations rising with the values)."""
    count = len(ordered)
    below = bisect_left(ordered, center)  # ordered[:below] < center <= ordered[below:]
    above = count - below
    # The j-th smallest deviation below the center is center - ordered[below - 1 - j],
    # from the center up ordered[below + j] - center. Of the k + 1 smallest deviations,
    # i come from below: the least i with low(i) >= high(k - i), searched in [first, last].
    first, last = max(0, k + 1 - above), min(k + 1, below)
    top = below - 1
    upper = below + k
    while first < last:
        i = (first + last) // 2
        if center - ordered[top - i] < ordered[upper - i] - center:
            first = i + 1
        else:
            last = i
    taken = first
    if taken == 0:
        return ordered[upper] - center
    low = center - ordered[below - taken]
    if taken > k:
        return low
    return max(low, ordered[upper - taken] - center)


def none_beyond(ordered: Sequence[float], beyond: float) -> bool:
    """True when ``quality._robust_z`` of this sample (sorted) would find no value with
    ``deviation / scale > beyond`` and a scale above 0 — it would return ``{}``. False
    means "not certain": score the values one by one."""
    if not ordered or not (isfinite(ordered[0]) and isfinite(ordered[-1])):
        return False
    center = median(ordered)
    widest = max(center - ordered[0], ordered[-1] - center)
    if not widest > 0:  # every value equal: the scale is 0
        return False
    mad_scale = MAD_TO_SIGMA * median_deviation(ordered, center)
    if mad_scale > 0 and widest / mad_scale <= beyond:
        return True  # the scale is at least mad_scale
    mean = fsum(map(abs, map(sub, ordered, repeat(center)))) / len(ordered)
    scale = max(mad_scale, MEAN_AD_TO_SIGMA * mean)
    return scale > 0 and widest / scale <= beyond
