"""The builder's shortcuts through the bar-quality assessment give the very values of the
full one, over generated inputs.

- ``assess_score`` (the score without the report) equals ``assess_bars(...).score_ratio``,
  through its own memo and fresh, on series of every shape the incremental tests use,
  with ``now`` absent, before the last bar (a future stamp: an error that lowers the
  score), at it and after it.
- ``_check_fields``' early answer for a sound bar: the findings of the full checks, on
  bars at and one cent either side of every boundary.
- ``_Clock.elapsed_s``' same-day answer: what the day-by-day loop adds up, for stamps in
  zones with daylight saving — the fall-back hour, where wall clocks run backwards, on a
  Sunday in New York and on a Thursday in Cairo (there the loop's figure is another
  float than the same-day difference, so the answer must not be taken).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bastion.engine.indicators import quality
from bastion.engine.indicators.quality import (
    Bar,
    Calendar,
    QualityConfig,
    Severity,
    _check_fields,
    _Clock,
    _Found,
    assess_bars,
    assess_score,
)
from bastion.engine.indicators.quality_memo import QualityMemo
from tests.indicators.test_quality_incremental import _series, _windows

CENT = Decimal("0.01")
NEW_YORK = ZoneInfo("America/New_York")
CAIRO = ZoneInfo("Africa/Cairo")  # falls back on Thursday 29 October 2026, 24:00 -> 23:00


def _mismatches(seeds: range) -> tuple[int, int]:
    """(calls where ``assess_score`` — through its memo, and fresh — differs from the
    report's score; calls where a last bar after ``now`` made the report's score lower
    than that of the window's other issues: the case the shortcut must not miss)."""
    wrong = lowered = 0
    for seed in seeds:
        rng = random.Random(seed)
        bars, step = _series(rng)
        score_memo, report_memo = QualityMemo(), QualityMemo()
        interval = rng.choice((step, None))
        calendar = rng.choice((None, Calendar.ALWAYS, Calendar.WEEKDAYS))
        config = rng.choice((None, QualityConfig(outlier_z=3.0, min_returns_for_outliers=3)))
        for start, end in _windows(rng, len(bars)):
            window = bars[start:end]
            last = window[-1].timestamp if window else bars[0].timestamp
            now = rng.choice(
                (None, last - timedelta(seconds=1), last, last + timedelta(seconds=step * 2))
            )
            options = {"interval_s": interval, "calendar": calendar, "now": now, "config": config}
            expected = assess_bars(window, memo=report_memo, **options).score_ratio  # type: ignore[arg-type]
            through_memo = assess_score(window, memo=score_memo, **options)  # type: ignore[arg-type]
            fresh = assess_score(window, **options)  # type: ignore[arg-type]
            wrong += (through_memo, fresh) != (expected, expected)
            wrong += str(through_memo) != str(expected)  # the same digits, not only equal
            held = score_memo.window
            lowered += bool(window) and held is not None and expected != held.score
    return wrong, lowered


def test_assess_score_when_generated_series_then_the_reports_score() -> None:
    """Through a memo and fresh, on windows that slide, grow, shrink and jump, with `now`
    absent, before, at and after the last bar: the score of the full report — among them
    calls where a future last bar lowers it (so a shortcut that missed it would fail)."""
    wrong, lowered = _mismatches(range(150))
    assert wrong == 0
    assert lowered > 0


def test_assess_score_when_last_bar_after_now_then_lower_and_equal_to_report() -> None:
    """A last bar stamped after `now` is an error on its row: the score drops by one bar,
    as the report's does."""
    start = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    bars = [
        Bar(start + timedelta(minutes=i), Decimal(10), Decimal(11), Decimal(9), Decimal(10))
        for i in range(20)
    ]
    now = bars[-1].timestamp - timedelta(seconds=1)
    memo = QualityMemo()
    assert assess_score(bars, now=bars[-1].timestamp, memo=memo) == Decimal(1)
    lowered = assess_score(bars, now=now, memo=memo)
    assert lowered == assess_bars(bars, now=now).score_ratio == Decimal("0.95")


def test_assess_score_when_no_bars_or_bad_interval_then_like_assess_bars() -> None:
    """No bars: 0, as the report's score; a non-positive interval: the same ValueError."""
    assert assess_score([]) == assess_bars([]).score_ratio == Decimal(0)
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        assess_score([], interval_s=0)


def _fields_reference(bar: Bar) -> tuple[_Found, ...]:
    """The field checks without the early answer (as they were before it)."""
    found: list[_Found] = []
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    bad = [f"{name} {value}" for name, value in prices.items() if not value > 0]
    if bad:
        found.append(
            ("non_positive_price", Severity.ERROR, f"{', '.join(bad)}: prices must be > 0")
        )
    corrupt = "the bar is corrupt: re-fetch it or drop the row"
    if bar.high < max(bar.open, bar.close):
        message = f"high {bar.high} is below max(open {bar.open}, close {bar.close}); {corrupt}"
        found.append(("high_inconsistent", Severity.ERROR, message))
    if bar.low > min(bar.open, bar.close):
        message = f"low {bar.low} is above min(open {bar.open}, close {bar.close}); {corrupt}"
        found.append(("low_inconsistent", Severity.ERROR, message))
    if bar.volume is not None and bar.volume < 0:
        found.append(("negative_volume", Severity.ERROR, f"volume {bar.volume} is negative"))
    elif bar.volume == 0:
        found.append(("zero_volume", Severity.INFO, "volume is 0"))
    return tuple(found)


def test_check_fields_when_prices_at_and_around_every_boundary_then_the_full_checks() -> None:
    """Every open / high / low / close among 0 and 1 cent either side of 0 and of one
    price, every volume sign (and none): the findings of the checks without the early
    answer — sound bars included (the early answer's own case)."""
    stamp = datetime(2026, 11, 2, tzinfo=UTC)
    prices = (-CENT, Decimal(0), CENT, Decimal(5) - CENT, Decimal(5), Decimal(5) + CENT)
    volumes = (None, Decimal(-1), Decimal(0), Decimal(1))
    sound = 0
    for open_, high, low, close in itertools.product(prices, repeat=4):
        for volume in volumes:
            bar = Bar(stamp, open_, high, low, close, volume)
            expected = _fields_reference(bar)
            assert _check_fields(bar) == expected, bar
            sound += expected == ()
    assert sound > 0


def _elapsed_reference(clock: _Clock, start: datetime, end: datetime) -> float:
    """``_Clock.elapsed_s`` without the same-day answer: the day-by-day loop alone."""
    if not clock.weekdays or end <= start:
        return (end - start).total_seconds()
    cursor, end = start.astimezone(clock.zone), end.astimezone(clock.zone)
    weeks = (end - cursor) // timedelta(days=7)
    total = weeks * 5 * float(quality.DAY_S)
    cursor += timedelta(days=7 * weeks)
    while cursor < end:
        midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time())
        segment_end = min(midnight.replace(tzinfo=cursor.tzinfo), end)
        if cursor.weekday() < 5:
            total += (segment_end - cursor).total_seconds()
        cursor = segment_end
    return total


@pytest.mark.parametrize("zone", [UTC, NEW_YORK, CAIRO, ZoneInfo("Asia/Tokyo")])
def test_elapsed_when_stamps_within_a_day_or_across_then_what_the_loop_adds_up(
    zone: object,
) -> None:
    """Pairs of stamps (to the microsecond) minutes to days apart, on weekdays and
    weekends, around the New York and Cairo fall-back and spring-forward hours (stamps in
    UTC, read in the bars' zone): the same float as the loop."""
    rng = random.Random(5)
    first = datetime(2026, 11, 2, tzinfo=zone)  # type: ignore[arg-type]
    clock = _Clock(Calendar.WEEKDAYS, 60, first)
    anchors = [
        datetime(2026, 11, 1, 5, 0, tzinfo=UTC),  # 01:00 EDT: the hour that repeats
        datetime(2026, 10, 29, 21, 0, tzinfo=UTC),  # Cairo's repeated hour begins
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # around 02:00 EST: the hour skipped
        datetime(2026, 11, 4, 13, 0, tzinfo=UTC),  # a Wednesday
        datetime(2026, 11, 7, 23, 50, tzinfo=UTC),  # a Saturday night
    ]
    for anchor in anchors:
        for _ in range(300):
            start = anchor + timedelta(microseconds=rng.randrange(-(3600 * 10**6), 3600 * 10**6))
            apart = rng.choice((60, 61, 1800, 3600, 5400, 86_400 * 3, rng.random() * 3600))
            end = start + timedelta(seconds=apart)
            for a, b in ((start, end), (end, start)):
                assert clock.elapsed_s(a, b) == _elapsed_reference(clock, a, b), (a, b)


def test_elapsed_when_wall_clock_runs_backwards_then_not_the_same_day_answer() -> None:
    """In Cairo's repeated hour, 23:50 then 23:10.5 the same Thursday, 20 minutes and a
    half-second later: the same-day difference would be -2399.5 s; the loop's figure is
    another float, and elapsed_s gives the loop's."""
    clock = _Clock(Calendar.WEEKDAYS, 60, datetime(2026, 10, 26, tzinfo=CAIRO))
    early = datetime(2026, 10, 29, 20, 50, 0, 123_457, tzinfo=UTC)  # 23:50 EEST
    late = early + timedelta(minutes=20, microseconds=500_000)  # 23:10:00.6 EET
    local_early, local_late = early.astimezone(CAIRO), late.astimezone(CAIRO)
    assert local_late.date() == local_early.date() and local_late < local_early
    same_day = (local_late - local_early).total_seconds()
    assert _elapsed_reference(clock, early, late) != same_day  # the case that decides
    assert clock.elapsed_s(early, late) == _elapsed_reference(clock, early, late)
