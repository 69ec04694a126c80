"""robust_scale: the sorted-sample shortcut of the bar-quality outlier screen.

``none_beyond(sorted(values))`` must never say "nothing beyond the limit" when
``quality._robust_z`` would score a value beyond it (or find no spread), and the order
statistics it reads must be the very floats ``statistics`` computes. Samples are
generated with ties, values equal to the median, both signs, tiny and huge spreads, and
— the cases that decide — an extreme value placed exactly at, and one float step
either side of, the limit of the scale. A deliberately wrong scale constant is caught.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.indicators import robust_scale
from bastion.engine.indicators.quality import _robust_z
from bastion.engine.indicators.robust_scale import (
    MAD_TO_SIGMA,
    mad_at_least,
    median,
    median_deviation,
    none_beyond,
)

LIMIT = 6.0
_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_ticks = st.integers(min_value=-40, max_value=40).map(lambda tick: tick / 1000)  # many ties
_samples = st.lists(st.one_of(_finite, _ticks), min_size=1, max_size=80)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(_samples)
def test_median_deviation_when_any_sample_then_the_floats_statistics_computes(
    values: list[float],
) -> None:
    """Median and median absolute deviation by bisection over the sorted sample equal
    ``statistics.median`` of the values and of their deviations, bit for bit."""
    ordered = sorted(values)
    center = statistics.median(values)
    assert median(ordered) == center
    expected = statistics.median([abs(value - center) for value in values])
    assert median_deviation(ordered, center) == expected


@settings(max_examples=400, derandomize=True, deadline=None)
@given(_samples, st.sampled_from([0.5, 1.0, 3.0, LIMIT]))
def test_none_beyond_when_any_sample_then_robust_z_finds_nothing(
    values: list[float], beyond: float
) -> None:
    """True only when the value-by-value scoring returns ``{}`` (a spread, and no value
    beyond)."""
    if none_beyond(sorted(values), beyond):
        assert _robust_z(dict(enumerate(values)), beyond) == {}


def _boundary_samples(seed: int) -> Iterator[list[float]]:
    """Samples whose largest deviation sits at the limit of the MAD scale (exactly, and
    a float step either side), where that scale is the larger one, so the answer turns
    on the last bit of the comparison."""
    rng = random.Random(seed)
    while True:
        count = rng.randrange(11, 60)
        body = [round(rng.gauss(0, 0.01), rng.choice((3, 4, 17))) for _ in range(count)]
        center = statistics.median([*body, math.inf])  # the extreme will sit on top
        mad = statistics.median([abs(value - center) for value in [*body, math.inf]])
        if not mad > 0:
            continue
        edge = center + LIMIT * (MAD_TO_SIGMA * mad)
        for extreme in (math.nextafter(edge, -math.inf), edge, math.nextafter(edge, math.inf)):
            yield [*body, extreme]


def _disagreements(samples: int = 600, seed: int = 17) -> int:
    """Boundary samples on which ``none_beyond`` and ``_robust_z`` tell different stories
    (the shortcut decides there: its bound is tight when MAD is the larger scale)."""
    found, wrong = 0, 0
    for values in _boundary_samples(seed):
        deviations = [abs(value - statistics.median(values)) for value in values]
        mad_scale = MAD_TO_SIGMA * statistics.median(deviations)
        if mad_scale < 1.2533 * statistics.fmean(deviations):
            continue  # the mean deviation is the larger scale: not a tight case
        nothing = _robust_z(dict(enumerate(values)), LIMIT) == {}
        wrong += none_beyond(sorted(values), LIMIT) != nothing
        found += 1
        if found == samples:
            break
    return wrong


def test_none_beyond_when_extreme_at_the_limit_then_agrees_bit_for_bit() -> None:
    """At, and one float step either side of, the limit: the same verdict as scoring
    every value."""
    assert _disagreements() == 0


def test_none_beyond_when_scale_constant_is_wrong_then_the_boundary_test_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The boundary test has teeth: a scale constant one part in 10^4 too large (the
    shortcut then waves through values just beyond the limit) is caught."""
    monkeypatch.setattr(robust_scale, "MAD_TO_SIGMA", MAD_TO_SIGMA * 1.0001)
    assert _disagreements() > 0


@settings(max_examples=600, derandomize=True, deadline=None)
@given(_samples)
def test_mad_at_least_when_any_sample_then_not_above_the_median_deviation(
    values: list[float],
) -> None:
    """The bound read off two values is never above the median absolute deviation that
    ``statistics`` computes (so a verdict from it is one the MAD gives too)."""
    center = statistics.median(values)
    mad = statistics.median([abs(value - center) for value in values])
    assert mad_at_least(sorted(values), center) <= mad


def test_mad_at_least_when_symmetric_sample_then_the_mad_itself() -> None:
    """Where it is tight: evenly spaced values (the bound is useful, not merely safe)."""
    values = [float(step) for step in range(-50, 51)]
    center = statistics.median(values)
    assert mad_at_least(values, center) == median_deviation(values, center) == 25.0


def _verdicts_differ(seed: int, samples: int = 600) -> int:
    """Samples (generated and at the limit) on which ``none_beyond`` answers otherwise
    than without the bound read off two values (the MAD searched for each time)."""
    rng = random.Random(seed)
    generated = [
        [rng.gauss(0, 0.01) * rng.choice((1, 1, 30)) for _ in range(rng.randrange(3, 320))]
        for _ in range(samples)
    ]
    boundary = list(itertools.islice(_boundary_samples(seed), samples))
    differ = 0
    for values in generated + boundary:
        ordered = sorted(values)
        quick = none_beyond(ordered, LIMIT)
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(robust_scale, "mad_at_least", lambda ordered, center: 0.0)
            differ += quick != none_beyond(ordered, LIMIT)
    return differ


def test_none_beyond_when_bound_read_off_two_values_then_the_same_verdicts() -> None:
    """The quick bound changes no verdict, at the limit either."""
    assert _verdicts_differ(23) == 0


def test_none_beyond_when_quick_bound_is_one_value_off_then_verdicts_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The comparison has teeth: a bound taken one value too far out (k + 1 values
    between the two) sometimes says "nothing beyond" where the MAD does not."""

    def off_by_one(ordered: list[float], center: float) -> float:
        below = bisect.bisect_left(ordered, center)
        k = (len(ordered) - 1) // 2 + 1
        low, high = below - 1 - k // 2, below + k - k // 2
        bound = math.inf
        if low >= 0:
            bound = center - ordered[low]
        if high < len(ordered):
            bound = min(bound, ordered[high] - center)
        return bound

    monkeypatch.setattr(robust_scale, "mad_at_least", off_by_one)
    assert _verdicts_differ(23) > 0
