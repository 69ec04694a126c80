"""Order statistics of a sorted sample, for the bar-quality outlier screen.

:func:`bastion.engine.indicators.quality_checks._robust_z` scores each value against the
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
  at least 1.4826·MAD gives no larger a quotient than 1.4826·MAD itself — nor does
  1.4826 times a float the MAD is not below (:func:`mad_at_least`, read off two values
  of the sample, tried first: a sample with no outlier is far from the limit, so the
  search for the MAD itself is most often not needed). When that bound
  is not enough, the exact scale is computed (``math.fsum`` of the deviations, as
  ``statistics.fmean``) and the largest deviation tried against it.

Anything else (a non-finite value, a zero scale, a value that may be beyond) answers
False and the caller scores the sample value by value, as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import repeat
from math import fsum, inf, isfinite
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
    non-empty sample, found by bisection (no deviation list): one search, for the two
    middle ones of an even count too."""
    count = len(ordered)
    middle = count // 2
    if count % 2:
        return _kth_deviation(ordered, center, middle)[0]
    lower, upper = _kth_deviation(ordered, center, middle - 1)
    return (lower + upper) / 2


def _kth_deviation(ordered: Sequence[float], center: float, k: int) -> tuple[float, float]:
    """The ``k``-th smallest (0-based) of ``abs(v - center)`` over ``ordered`` and the
    next one (the ``k``-th again when there is none): a merge of the run below the center
    (deviations rising as the values fall) and the run from the center up (deviations
    rising with the values)."""
    count = len(ordered)
    below = bisect_left(ordered, center)  # ordered[:below] < center <= ordered[below:]
    above = count - below
    # The j-th smallest deviation below the center is center - ordered[below - 1 - j],
    # from the center up ordered[below + j] - center. Of the k + 1 smallest deviations,
    # i come from below: the least i with low(i) >= high(k - i), searched in [first, last]
    # (low(i) >= high(k - i) holds from some i on: low rises with i, high(k - i) falls).
    first, last = max(0, k + 1 - above), min(k + 1, below)
    top = below - 1
    upper = below + k
    while first < last:
        i = (first + last) // 2
        if center - ordered[top - i] < ordered[upper - i] - center:
            first = i + 1
        else:
            last = i
    taken = first  # from below; k + 1 - taken from the center up
    if taken == 0:
        kth = ordered[upper] - center
    elif taken > k:
        kth = center - ordered[below - taken]
    else:
        kth = max(center - ordered[below - taken], ordered[upper - taken] - center)
    # The next in the merge is the smaller of the next one of each run: the split is
    # valid (every deviation taken is at most both).
    following = []
    if taken < below:
        following.append(center - ordered[top - taken])
    if k + 1 - taken < above:
        following.append(ordered[upper + 1 - taken] - center)
    return kth, min(following, default=kth)


def mad_at_least(ordered: Sequence[float], center: float) -> float:
    """A float that :func:`median_deviation` of this sorted, finite sample is not below,
    read off two values (no search): often close to it.

    With k = (count − 1) // 2, the median deviation is at least the k-th smallest
    deviation (0-based; for an even count, the mean of it and the next one, each at
    least the bound, in floats too). Take indices a < below <= b (below: the first value
    not below the center) with b − a − 1 = k. A value whose deviation is less than
    ``d = min(center − s[a], s[b] − center)`` lies strictly between s[a] and s[b]
    (float subtraction is monotone): it is one of the k values between the two indices.
    So at most k deviations are below d, and the k-th smallest is not."""
    count = len(ordered)
    k = (count - 1) // 2
    below = bisect_left(ordered, center)
    low, high = below - 1 - k // 2, below + k - k // 2  # high - low - 1 == k
    bound = inf
    if low >= 0:
        bound = center - ordered[low]
    if high < count:
        bound = min(bound, ordered[high] - center)
    return bound


def none_beyond(ordered: Sequence[float], beyond: float) -> bool:
    """True when ``quality_checks._robust_z`` of this sample (sorted) would find no value with
    ``deviation / scale > beyond`` and a scale above 0 — it would return ``{}``. False
    means "not certain": score the values one by one."""
    if not ordered or not (isfinite(ordered[0]) and isfinite(ordered[-1])):
        return False
    center = median(ordered)
    widest = max(center - ordered[0], ordered[-1] - center)
    if not widest > 0:  # every value equal: the scale is 0
        return False
    least = mad_at_least(ordered, center)
    if least > 0 and widest / (MAD_TO_SIGMA * least) <= beyond:
        return True  # the scale is at least MAD_TO_SIGMA * least: as below, without the MAD
    mad_scale = MAD_TO_SIGMA * median_deviation(ordered, center)
    if mad_scale > 0 and widest / mad_scale <= beyond:
        return True  # the scale is at least mad_scale
    mean = fsum(map(abs, map(sub, ordered, repeat(center)))) / len(ordered)
    scale = max(mad_scale, MEAN_AD_TO_SIGMA * mean)
    return scale > 0 and widest / scale <= beyond
