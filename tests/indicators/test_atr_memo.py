"""AtrMemo: the ATR of a sliding window, worked out incrementally, is the very same Decimal."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import AtrMemo, AtrMethod, AtrSeed, AtrSpec, atr_bars
from bastion.engine.indicators.quality import Bar

START = datetime(2024, 1, 1, tzinfo=UTC)


def _bars(count: int, seed: int) -> list[Bar]:
    """A random walk with gaps up and down (the previous close sets the true range) and
    prices of many digits, so that every division rounds."""
    rng = random.Random(seed)
    bars, close = [], Decimal("100.123456789")
    for index in range(count):
        open_ = close * Decimal(str(1 + rng.uniform(-0.05, 0.05)))  # a gap now and then
        close = open_ * Decimal(str(1 + rng.uniform(-0.03, 0.03)))
        high = max(open_, close) * Decimal(str(1 + rng.uniform(0, 0.02)))
        low = min(open_, close) * Decimal(str(1 - rng.uniform(0, 0.02)))
        stamp = START + timedelta(days=index)
        bars.append(Bar(stamp, open_, high, low, close, Decimal(rng.randrange(1, 10**6))))
    return bars


def _windows(bars: list[Bar], seed: int) -> list[list[Bar]]:
    """A window of 41 bars sliding one bar at a time, then growing, jumping ahead,
    shrinking, a bar revised in place (a new object), and back to an earlier window."""
    rng = random.Random(seed)
    windows = [bars[end - 41 : end] for end in range(41, 120)]
    windows += [bars[100:end] for end in range(120, 140)]  # growing
    windows += [bars[150:191], bars[155:196], bars[190:196], bars[0:3], bars[:1]]
    revised = list(bars[150:191])
    row = rng.randrange(1, len(revised))
    revised[row] = replace(revised[row], high=revised[row].high * 2)
    windows += [revised, [*revised[1:], bars[191]], bars[151:192], bars[10:51]]
    return windows


@pytest.mark.parametrize("method", list(AtrMethod))
@pytest.mark.parametrize("seed_kind", list(AtrSeed))
@pytest.mark.parametrize("period", [1, 3, 14])
@pytest.mark.parametrize("seed", [1, 2])
def test_latest_when_window_slides_with_memo_then_same_decimal_as_fresh_atr(
    method: AtrMethod, seed_kind: AtrSeed, period: int, seed: int
) -> None:
    """Over every window of a sliding, growing, jumping and revised series, the memo's
    value is exactly atr_bars(window)[-1]: equal, with the same digits and exponent."""
    spec = AtrSpec(period, method, seed_kind)
    bars = _bars(200, seed)
    memo = AtrMemo()
    for window in _windows(bars, seed):
        fresh = atr_bars(window, spec)[-1]
        value = memo.latest(window, spec)
        assert str(value) == str(fresh), (len(window), window[0].timestamp)


def test_latest_when_no_bars_then_none() -> None:
    """An empty window has no ATR, and the memo stays usable."""
    memo = AtrMemo()
    assert memo.latest([], AtrSpec(3)) is None
    bars = _bars(10, 3)
    assert memo.latest(bars, AtrSpec(3)) == atr_bars(bars, AtrSpec(3))[-1]


def test_latest_when_spec_changes_between_calls_then_value_of_the_new_spec() -> None:
    """The cached true ranges do not depend on the spec: switching it is exact too."""
    bars = _bars(60, 4)
    memo = AtrMemo()
    for end, spec in ((41, AtrSpec(14)), (42, AtrSpec(5, AtrMethod.SMA)), (43, AtrSpec(14))):
        window = bars[end - 41 : end]
        assert memo.latest(window, spec) == atr_bars(window, spec)[-1]


def test_latest_when_new_bar_not_decimal_then_same_error_as_atr_bars() -> None:
    """A new record with a float price raises atr_bars' TypeError (numbered within the
    window); a non-finite one its DataError; the memo then starts afresh."""
    bars: list[object] = list(_bars(30, 5))
    memo = AtrMemo()
    memo.latest(bars[:20], AtrSpec(3))  # type: ignore[arg-type]
    odd = SimpleNamespace(high=101.5, low=Decimal(99), close=Decimal(100))
    with pytest.raises(TypeError, match="bar 20: high is float"):
        memo.latest([*bars[:20], odd], AtrSpec(3))  # type: ignore[list-item]
    nan = SimpleNamespace(high=Decimal("NaN"), low=Decimal(99), close=Decimal(100))
    with pytest.raises(DataError, match="bar 20: high is NaN"):
        memo.latest([*bars[:20], nan], AtrSpec(3))  # type: ignore[list-item]
    window = bars[1:21]
    assert memo.latest(window, AtrSpec(3)) == atr_bars(window, AtrSpec(3))[-1]  # type: ignore[arg-type]


def test_latest_when_the_very_same_bars_come_again_then_the_same_value_per_spec() -> None:
    """The same bar objects again (a poll within the bar interval) give the value worked
    out last time; another spec, a bar more or a revised bar are worked out anew."""
    bars = _bars(50, 6)
    memo = AtrMemo()
    window = bars[5:45]
    first = memo.latest(window, AtrSpec(14))
    assert memo.latest(list(window), AtrSpec(14)) is first  # not worked out again
    for spec in (AtrSpec(5, AtrMethod.SMA), AtrSpec(14)):
        assert memo.latest(window, spec) == atr_bars(window, spec)[-1]
    revised = [*window[:-1], replace(window[-1], high=window[-1].high * 2)]
    for changed in (bars[5:46], revised, window):
        assert str(memo.latest(changed, AtrSpec(14))) == str(atr_bars(changed, AtrSpec(14))[-1])
