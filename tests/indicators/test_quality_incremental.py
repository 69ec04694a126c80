"""The incremental bar-quality assessment gives the reports of a full one, over generated
series.

Seeded series of every shape the builder meets or might (one-minute, hourly and daily
bars; weekdays only or 24x7; closes on a few ticks, so returns tie and the spread can
be nil; newest first; spikes, jumps, a corrupt bar, repeated and out-of-order stamps,
gaps, zero volume, revised bars) are assessed through windows that slide by 0 to 3 bars, grow,
shrink and jump, with one memo per series. Every report equals (1) the report of a
fresh assessment of the same window and (2) the report with the sorted-sample shortcut
of the outlier screen switched off (every return and range scored, as before the
shortcut) — and, with a wrong shortcut, (2) fails.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.engine.indicators import quality, quality_checks
from bastion.engine.indicators.quality import Bar, Calendar, assess_bars
from bastion.engine.indicators.quality_memo import QualityMemo

START = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # a Monday
CENT = Decimal("0.01")


def _series(rng: random.Random) -> tuple[list[Bar], int]:
    """A generated series and its bar interval."""
    step = rng.choice((60, 3600, 86_400))
    weekdays = rng.random() < 0.5
    count = rng.randrange(2, 160)
    ticks = rng.choice((1, 3, 40))  # closes move by up to this many cents: ties when few
    bars: list[Bar] = []
    stamp, close = START, Decimal(rng.randint(5, 500))
    while len(bars) < count:
        if not (weekdays and stamp.weekday() >= 5):
            open_ = close
            close = max(CENT, close + CENT * rng.randint(-ticks, ticks))
            high = max(open_, close) + CENT * rng.randint(0, 3)
            low = max(CENT / 10, min(open_, close) - CENT * rng.randint(0, 3))
            volume = Decimal(rng.choice((0, 1, 500, 10_000)))
            bars.append(Bar(stamp, open_, high, low, close, volume))
        stamp += timedelta(seconds=step)
    for _ in range(rng.randrange(0, 6)):
        _trouble(rng, bars)
    if rng.random() < 0.05:
        bars.reverse()  # newest first
    return bars, step


def _trouble(rng: random.Random, bars: list[Bar]) -> None:
    """One kind of bad data, somewhere."""
    if len(bars) < 3:
        return
    row = rng.randrange(1, len(bars) - 1)
    bar = bars[row]
    kind = rng.choice(("spike", "jump", "corrupt", "twin", "early", "gap", "flat", "wide"))
    if kind == "spike":
        bars[row] = replace(bar, close=bar.close * 3, high=bar.close * 3)
    elif kind == "jump":
        for later in range(row, len(bars)):
            b = bars[later]
            bars[later] = replace(
                b, open=b.open * 2, high=b.high * 2, low=b.low * 2, close=b.close * 2
            )
    elif kind == "corrupt":
        bars[row] = replace(bar, high=bar.low - CENT)
    elif kind == "twin":
        bars[row] = replace(bar, timestamp=bars[row - 1].timestamp)
    elif kind == "early":
        bars[row] = replace(bar, timestamp=bars[row - 1].timestamp - timedelta(seconds=1))
    elif kind == "gap":
        del bars[row : row + rng.randrange(1, 4)]
    elif kind == "flat":  # closes that do not move
        for later in range(row, min(len(bars), row + 40)):
            b = bars[later]
            bars[later] = replace(b, open=bar.close, high=bar.close, low=bar.close, close=bar.close)
    else:
        bars[row] = replace(bar, high=bar.high * 5)


def _windows(rng: random.Random, count: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each call: mostly a window sliding by 0 to 3 bars, now and then
    growing, shrinking or jumping."""
    width = rng.randrange(1, max(2, count))
    start = 0
    for _ in range(rng.randrange(5, 40)):
        yield start, min(count, start + width)
        move = rng.random()
        if move < 0.75:
            start = min(count - 1, start + rng.randrange(0, 4))
        elif move < 0.85:
            width += rng.randrange(1, 5)
        elif move < 0.92:
            width = max(1, width - rng.randrange(1, 5))
        else:
            start = rng.randrange(count)


def _reports(seed: int) -> Iterator[tuple[quality.QualityReport, dict[str, object], list[Bar]]]:
    """(the report through the memo, the call's arguments, the window) per call."""
    rng = random.Random(seed)
    bars, step = _series(rng)
    memo = QualityMemo()
    interval = rng.choice((step, None))
    calendar = rng.choice((None, Calendar.ALWAYS, Calendar.WEEKDAYS))
    for start, end in _windows(rng, len(bars)):
        window = bars[start:end]
        if rng.random() < 0.05 and window:  # a revised bar
            row = rng.randrange(len(window))
            window[row] = replace(window[row], close=window[row].close + CENT)
            window[row] = replace(window[row], high=max(window[row].high, window[row].close))
        now = (window[-1].timestamp if window else START) + timedelta(
            seconds=step * rng.randint(0, 3)
        )
        options: dict[str, object] = {"interval_s": interval, "calendar": calendar, "now": now}
        yield assess_bars(window, memo=memo, **options), options, window  # type: ignore[arg-type]


SEEDS = range(120)


@pytest.mark.parametrize("seed", SEEDS)
def test_assess_when_window_moves_with_memo_then_same_report_as_fresh(seed: int) -> None:
    """Through a memo, every report equals a fresh assessment of the same window."""
    for report, options, window in _reports(seed):
        assert report == assess_bars(window, **options)  # type: ignore[arg-type]


def _unshortcut_mismatches(monkeypatch: pytest.MonkeyPatch, seeds: range) -> int:
    """Reports (through the memo) that differ from the reports with every value scored."""
    mismatches = 0
    for seed in seeds:
        for report, options, window in _reports(seed):
            with monkeypatch.context() as patched:
                patched.setattr(quality_checks, "none_beyond", lambda ordered, beyond: False)
                slow = assess_bars(window, **options)  # type: ignore[arg-type]
            mismatches += report != slow
    return mismatches


def test_assess_when_shortcut_off_then_same_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sorted-sample shortcut changes no report: with every return and range scored
    one by one (the path before it), the reports are equal."""
    assert _unshortcut_mismatches(monkeypatch, SEEDS) == 0


def test_assess_when_shortcut_is_wrong_then_reports_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The comparison has teeth: a shortcut that always answers "nothing beyond" (as a
    wrong bound would, sometimes) hides generated spikes and jumps."""
    monkeypatch.setattr(quality_checks, "none_beyond", lambda ordered, beyond: len(ordered) > 0)
    assert _unshortcut_mismatches(monkeypatch, SEEDS) > 0


@pytest.mark.parametrize("seed", range(40))
def test_memo_counts_when_window_moves_then_those_of_its_rows(seed: int) -> None:
    """The counts the memo keeps with its rows (field issues, weekend, disorder, earlier
    rows; missing bars and gap issues) are those of the rows it holds, after every call,
    so the window checks that skip a clean window by them skip nothing."""
    rng = random.Random(seed)
    bars, step = _series(rng)
    memo = QualityMemo()
    for start, end in _windows(rng, len(bars)):
        assess_bars(bars[start:end], memo=memo, interval_s=step, now=START)
        rows, gaps = memo._rows, memo._gaps
        assert rows.field_rows == sum(map(bool, rows.fields))
        assert rows.weekend_rows == sum(rows.weekend)
        assert rows.disorder_rows == sum(1 for d in rows.disorder if d)
        assert rows.earlier_rows == rows.disorder.count(2)
        assert gaps.missing_total == sum(gaps.missing)
        assert gaps.found_rows == sum(1 for found in gaps.found if found is not None)
