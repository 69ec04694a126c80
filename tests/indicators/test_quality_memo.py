"""QualityMemo: assessing a sliding window incrementally gives the very same report."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bastion.engine.indicators import quality
from bastion.engine.indicators.quality import Bar, Calendar, assess_bars
from bastion.engine.indicators.quality_memo import QualityMemo
from tests.indicators.test_quality import DAY, HOUR, MONDAY, make_bars
from tests.indicators.test_quality_incremental import _series, _windows


def _troubled(count: int, *, step_s: int, weekdays_only: bool, seed: int) -> list[Bar]:
    """A series with every kind of trouble: gaps, a spike, a jump, a corrupt bar, a
    duplicate and an out-of-order stamp, zero volume."""
    rng = random.Random(seed)
    bars = make_bars(count, step_s=step_s, weekdays_only=weekdays_only)
    for _ in range(count // 10):  # gaps
        del bars[rng.randrange(1, len(bars) - 1)]
    spike = rng.randrange(20, len(bars) - 2)
    bars[spike] = replace(bars[spike], close=bars[spike].close * 2, high=bars[spike].close * 2)
    jump = rng.randrange(20, len(bars) - 2)
    for row in range(jump, len(bars)):
        bar = bars[row]
        bars[row] = replace(
            bar, open=bar.open * 3, high=bar.high * 3, low=bar.low * 3, close=bar.close * 3
        )
    corrupt = rng.randrange(1, len(bars))
    bars[corrupt] = replace(bars[corrupt], high=bars[corrupt].low - 1)
    bars[rng.randrange(1, len(bars))] = replace(bars[rng.randrange(1, len(bars))])
    twin = rng.randrange(2, len(bars))
    bars[twin] = replace(bars[twin], timestamp=bars[twin - 1].timestamp)
    early = rng.randrange(2, len(bars))
    bars[early] = replace(bars[early], timestamp=bars[early - 2].timestamp - timedelta(seconds=1))
    bars[rng.randrange(len(bars))] = replace(bars[rng.randrange(len(bars))], volume=Decimal(0))
    return bars


@pytest.mark.parametrize(
    ("step_s", "weekdays_only", "calendar", "interval"),
    [
        (DAY, True, None, DAY),  # equity daily bars, calendar inferred
        (HOUR, False, None, None),  # crypto, interval inferred too
        (HOUR, True, Calendar.WEEKDAYS, HOUR),  # intraday on weekdays: session breaks
        (DAY, False, Calendar.ALWAYS, DAY),
    ],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_assess_when_window_slides_with_memo_then_same_report_as_without(
    step_s: int, weekdays_only: bool, calendar: Calendar | None, interval: int | None, seed: int
) -> None:
    """A window of 60 bars sliding over a troubled series one bar at a time (and growing,
    and jumping, and with a bar revised in place): with a memo, every report equals the
    report of a fresh assessment."""
    bars = _troubled(160, step_s=step_s, weekdays_only=weekdays_only, seed=seed)
    memo = QualityMemo()
    windows = [bars[:end] for end in range(2, 60)]
    windows += [bars[end - 60 : end] for end in range(60, len(bars) + 1)]
    windows += [bars[10:50], bars[10:50], bars[12:70], bars[100:160], bars[40:45], []]
    revised = list(bars[90:150])
    revised[30] = replace(revised[30], close=revised[30].close + 1, high=revised[30].high + 1)
    windows += [bars[89:149], revised, bars[91:151]]
    for window in windows:
        now = window[-1].timestamp + timedelta(seconds=step_s) if window else MONDAY
        fresh = assess_bars(window, interval_s=interval, calendar=calendar, now=now)
        again = assess_bars(window, interval_s=interval, calendar=calendar, now=now, memo=memo)
        assert again == fresh


def test_assess_when_time_zone_changes_then_memo_starts_afresh() -> None:
    """The same instants in another time zone: the weekday calendar is read in the bars'
    own zone, so nothing is reused across zones."""
    bars = make_bars(80, step_s=DAY, weekdays_only=True)
    shifted = [
        replace(bar, timestamp=bar.timestamp.astimezone(ZoneInfo("Asia/Tokyo"))) for bar in bars
    ]
    memo = QualityMemo()
    for window in (bars[:60], shifted[1:61], bars[2:62]):
        now = window[-1].timestamp + timedelta(days=1)
        assert assess_bars(window, now=now, memo=memo) == assess_bars(window, now=now)


def _rows_reference(bars: list[Bar]) -> dict[str, list[object]]:
    """Each row's columns by their definitions, bar by bar (no memo code)."""
    zone = bars[0].timestamp.tzinfo if bars else None
    columns: dict[str, list[object]] = {
        name: [] for name in ("fields", "ranges", "returns", "weekend", "ordered", "disorder")
    }
    for row, bar in enumerate(bars):
        previous = bars[row - 1] if row else None
        columns["fields"].append(quality._check_fields(bar))
        fine = bar.low > 0 and bar.high >= bar.low
        columns["ranges"].append(math.log(float(bar.high) / float(bar.low)) if fine else None)
        moves = previous is not None and bar.close > 0 and previous.close > 0
        columns["returns"].append(
            math.log(float(bar.close) / float(previous.close)) if moves else None  # type: ignore[union-attr]
        )
        columns["weekend"].append(bar.timestamp.astimezone(zone).weekday() >= 5)
        columns["ordered"].append(previous is not None and bar.timestamp > previous.timestamp)
        disorder = quality._ORDERED
        if previous is not None and bar.timestamp == previous.timestamp:
            disorder = quality._REPEATED
        elif previous is not None and bar.timestamp < previous.timestamp:
            disorder = quality._EARLIER
        columns["disorder"].append(disorder)
    return columns


@pytest.mark.parametrize("seed", range(60))
def test_memo_rows_when_window_moves_then_each_column_by_its_definition(seed: int) -> None:
    """After every call over a sliding window of a generated series (repeated and
    earlier stamps, corrupt bars, gaps among them), the memo's columns and sorted
    samples are those of its bars taken one by one: the memo and a fresh assessment
    share the row code, so this checks that code against the definitions."""
    rng = random.Random(seed)
    bars, step = _series(rng)
    memo = QualityMemo()
    for start, end in _windows(rng, len(bars)):
        window = bars[start:end]
        assess_bars(window, memo=memo, interval_s=step, now=MONDAY)
        rows, expected = memo._rows, _rows_reference(window)
        assert rows.bars == window
        for name, column in expected.items():
            assert getattr(rows, name) == column, name
        used = [
            move
            for move, ordered in zip(expected["returns"], expected["ordered"], strict=True)
            if ordered and move is not None
        ]
        assert rows.sorted_returns == sorted(used) and rows.odd_returns == 0  # type: ignore[type-var]
        widths = [width for width in expected["ranges"] if width is not None]
        assert rows.sorted_ranges == sorted(widths) and rows.odd_ranges == 0  # type: ignore[type-var]
