"""The checks of the bar-quality assessment, each over a bar, a pair of bars or the series:
fields, order, gaps, outliers (robust z of returns and ranges), staleness; the score and
confidence they add up to, the interval inference and the calendar clock.

Split from :mod:`quality`, which runs them over a window (:func:`quality.assess_bars`) and
re-exports the names its callers and tests import; :mod:`quality_memo` keeps their per-row
results from call to call. This module imports neither, so the import graph has no cycle.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from functools import lru_cache
from itertools import compress, pairwise
from typing import TYPE_CHECKING

from bastion.engine.indicators.quality_model import (
    DAY_S,
    WEEK_S,
    Bar,
    Calendar,
    QualityConfig,
    QualityIssue,
    Severity,
    format_duration,
    format_timestamp,
)
from bastion.engine.indicators.robust_scale import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, none_beyond

if TYPE_CHECKING:
    from bastion.engine.indicators.quality_memo import _Rows

_FOUR_PLACES = Decimal("0.0001")
_FULL_EVIDENCE_RETURNS = 20
_RATIO_CONTEXT = Context(prec=28)  # ratios do not depend on the caller's decimal context

_ts = format_timestamp


def _confidence(count: int, returns_used: int, stale_checked: bool) -> Decimal:
    evidence = [
        1.0,
        1.0 if count >= 2 else 0.0,
        min(1.0, returns_used / _FULL_EVIDENCE_RETURNS),
        1.0 if stale_checked else 0.0,
    ]
    with localcontext(_RATIO_CONTEXT):
        return _floor4(Decimal(str(sum(evidence))) / 4)


_Found = tuple[str, Severity, str]  # an issue of one bar, before it gets its row


def _check_fields(bar: Bar) -> tuple[_Found, ...]:
    open_, high, low, close, volume = bar.open, bar.high, bar.low, bar.close, bar.volume
    if (
        low > 0  # with the two below: every price > 0
        and low <= open_
        and low <= close
        and high >= open_
        and high >= close
        and (volume is None or volume > 0)
    ):
        return ()  # a sound bar (nearly all of them): none of the checks below finds anything
    found: list[_Found] = []
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    bad = [f"{name} {value}" for name, value in prices.items() if not value > 0]
    if bad:
        message = f"{', '.join(bad)}: prices must be > 0"
        found.append(("non_positive_price", Severity.ERROR, message))
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


def _check_order(bars: Sequence[Bar], rows: _Rows, issues: list[QualityIssue]) -> None:
    """The timestamps' issues: each pair's order is in ``rows`` (``ordered``, ``disorder``);
    a series running newest first is one issue of its own (its rows are not ordered)."""
    if not rows.disorder_rows:  # counted as the rows came (quality_memo)
        return
    count = len(bars)
    if count > 2 and rows.earlier_rows == count - 1:
        first, last = bars[0].timestamp, bars[-1].timestamp
        message = (
            f"timestamps run newest first ({_ts(first)} .. {_ts(last)}): "
            "reverse the rows so the oldest bar comes first"
        )
        issues.append(_error(None, "newest_first", message))
        return
    for row in compress(range(count), rows.disorder):
        previous, current = bars[row - 1].timestamp, bars[row].timestamp
        if rows.disorder[row] == _REPEATED:
            message = f"timestamp {_ts(current)} repeats row {row - 1}: drop the duplicate"
            issues.append(_error(row, "duplicate_timestamp", message))
        else:
            message = (
                f"timestamp {_ts(current)} is earlier than row {row - 1} ({_ts(previous)}): "
                "sort the bars oldest first"
            )
            issues.append(_error(row, "out_of_order", message))


def _gap(
    previous: datetime, current: datetime, interval_s: int, elapsed_s: float
) -> tuple[int, _Found | None]:
    """(bars missing between two ordered bars ``elapsed_s`` apart, the issue if any)."""
    steps = int(elapsed_s / interval_s + 0.5)
    if steps >= 2:
        message = (
            f"{steps - 1} bar(s) missing between {_ts(previous)} and {_ts(current)} "
            f"(one every {format_duration(interval_s)}): a holiday, a halt or an outage"
        )
        return steps - 1, ("gap", Severity.WARNING, message)
    if elapsed_s < interval_s / 2:
        message = (
            f"only {format_duration(elapsed_s)} after the previous bar, expected "
            f"{format_duration(interval_s)}: mixed intervals, an extra bar, or a bar "
            "outside the calendar"
        )
        return 0, ("short_interval", Severity.WARNING, message)
    return 0, None


def _check_outliers(
    rows: _Rows,
    config: QualityConfig,
    issues: list[QualityIssue],
    skipped: list[str],
) -> int:
    """Robust z-scores of log returns (spikes, jumps) and of ranges; returns #returns used.

    A sample whose sorted values show that nothing can be beyond the limit
    (robust_scale.none_beyond) is not scored value by value: ``_robust_z`` would find
    nothing in it."""
    used = len(rows.sorted_returns) + rows.odd_returns
    if used < config.min_returns_for_outliers:
        skipped.append(f"outliers: {used} returns, need {config.min_returns_for_outliers} or more")
        return used
    limit = config.outlier_z
    if rows.returns_clear is None or rows.returns_clear[0] != limit:
        rows.returns_clear = limit, none_beyond(rows.sorted_returns, limit)
    if rows.ranges_clear is None or rows.ranges_clear[0] != limit:
        rows.ranges_clear = limit, none_beyond(rows.sorted_ranges, limit)
    if rows.odd_returns or not rows.returns_clear[1]:
        returns = {
            row: move
            for row, move in enumerate(rows.returns)
            if rows.ordered[row] and move is not None
        }
        _flag_returns(returns, _robust_z(returns, limit), limit, issues, skipped)
    if rows.odd_ranges or not rows.ranges_clear[1]:
        ranges = {row: width for row, width in enumerate(rows.ranges) if width is not None}
        range_z = _robust_z(ranges, limit)
        for row, z in (range_z or {}).items():
            if z > limit:
                width = math.expm1(ranges[row])
                message = (
                    f"high/low range {width:.2%} is {z:.1f} robust σ above typical: a bad tick?"
                )
                issues.append(QualityIssue(row, "range_outlier", Severity.WARNING, message))
    return used


def _flag_returns(
    returns: dict[int, float],
    return_z: dict[int, float] | None,
    limit: float,
    issues: list[QualityIssue],
    skipped: list[str],
) -> None:
    if return_z is None:
        skipped.append("outliers: closes do not move, so returns have no spread")
        return
    flagged: set[int] = set()
    for row, z in return_z.items():
        if abs(z) <= limit or row in flagged:
            continue
        after = return_z.get(row + 1)
        move = f"{returns[row]:+.2%} close-to-close ({z:+.1f} robust σ)"
        if after is not None and abs(after) > limit and (after > 0) != (z > 0):
            flagged.update((row, row + 1))
            message = f"{move}, reversed by the next bar: a bad print — re-fetch the bar"
            issues.append(QualityIssue(row, "spike", Severity.WARNING, message))
        else:
            message = f"{move}: a real move, an unadjusted split, or a bad print"
            issues.append(QualityIssue(row, "jump", Severity.WARNING, message))


def _robust_z(values: dict[int, float], beyond: float) -> dict[int, float] | None:
    """(x − median) / scale, scale = max(1.4826·MAD, 1.2533·mean absolute deviation), of
    the values whose abs(z) exceeds ``beyond`` (the only ones a check looks at); None when
    the scale is 0.

    Both estimate σ for normal data. MAD alone collapses when most prices sit on a few
    ticks (it is 0 once half the returns are equal) and would flag every ordinary move;
    the mean deviation keeps the scale honest there.
    """
    center = statistics.median(values.values())
    deviations = [abs(v - center) for v in values.values()]
    scale = max(
        MAD_TO_SIGMA * statistics.median(deviations),
        MEAN_AD_TO_SIGMA * statistics.fmean(deviations),
    )
    if scale == 0:
        return None
    return {
        row: (value - center) / scale
        for (row, value), deviation in zip(values.items(), deviations, strict=True)
        if deviation / scale > beyond  # == |(value - center) / scale|, exactly
    }


def _check_stale(
    last: Bar,
    row: int,
    now: datetime,
    interval_s: int,
    clock: _Clock,
    config: QualityConfig,
    issues: list[QualityIssue],
) -> tuple[bool, float]:
    if last.timestamp > now:
        message = (
            f"last bar starts at {_ts(last.timestamp)}, after now ({now.isoformat()}): "
            "clock skew or a wrong time zone in the data"
        )
        issues.append(_error(row, "future_timestamp", message))
        return False, 0.0
    closed_at = last.timestamp + timedelta(seconds=interval_s)
    age_s = max(0.0, clock.elapsed_s(closed_at, now))
    limit_s = config.stale_after_s if config.stale_after_s is not None else float(interval_s)
    if age_s <= limit_s:
        return False, age_s
    message = (
        f"last bar closed {format_duration(age_s)} before now ({now.isoformat()}); "
        f"data older than {format_duration(limit_s)} is stale"
    )
    issues.append(QualityIssue(row, "stale", Severity.WARNING, message))
    return True, age_s


def _score(count: int, missing: int, issues: Sequence[QualityIssue]) -> Decimal:
    if count == 0:
        return Decimal(0)
    # Series-level issues (row None) make a series unusable but do not mark any bar bad.
    error_rows = {i.row for i in issues if i.severity is Severity.ERROR and i.row is not None}
    warning_rows = {
        i.row
        for i in issues
        if i.severity is Severity.WARNING and i.code not in ("gap", "stale") and i.row is not None
    }
    return _ratio(count, len(error_rows), len(warning_rows - error_rows), missing)


@lru_cache(maxsize=1024)
def _ratio(count: int, errors: int, warnings: int, missing: int) -> Decimal:
    """The score of ``count`` bars with that many rows in error, others with a warning
    and bars missing: a function of four counts, remembered (a window moved on by a bar
    is most often scored from the same counts as the last one)."""
    with localcontext(_RATIO_CONTEXT):
        validity = Decimal(count - errors) / count
        cleanliness = Decimal(count - warnings) / count
        completeness = Decimal(count) / (count + missing)
        return _floor4(validity * cleanliness * completeness)


def _infer_interval_s(bars: Sequence[Bar]) -> int | None:
    deltas = Counter(
        int((b.timestamp - a.timestamp).total_seconds())
        for a, b in pairwise(bars)
        if b.timestamp > a.timestamp
    )
    if not deltas:
        return None
    # The most common spacing; ties go to the shortest (weekends make daily data 1d and 3d).
    return min(deltas, key=lambda delta: (-deltas[delta], delta))


class _Clock:
    """Elapsed time on a calendar, in the time zone of the first bar."""

    def __init__(self, calendar: Calendar, interval_s: int | None, first: datetime | None):
        # Weekly and longer bars always span a weekend: count them on the 24x7 clock.
        self.weekdays = calendar is Calendar.WEEKDAYS and (interval_s or 0) < WEEK_S
        self.intraday = interval_s is not None and interval_s < DAY_S
        self.zone = first.tzinfo if first is not None else None

    def is_session_break(self, start: datetime, end: datetime) -> bool:
        if not (self.weekdays and self.intraday):
            return False
        return start.astimezone(self.zone).date() != end.astimezone(self.zone).date()

    def elapsed_s(self, start: datetime, end: datetime) -> float:
        if not self.weekdays or end <= start:
            return (end - start).total_seconds()
        cursor, end = start.astimezone(self.zone), end.astimezone(self.zone)
        if cursor <= end and cursor.date() == end.date():  # within a day, as the loop adds
            # it up (not across a fall-back hour, where the wall clocks run backwards)
            return (end - cursor).total_seconds() if cursor.weekday() < 5 else 0.0
        weeks = (end - cursor) // timedelta(days=7)
        total = weeks * 5 * float(DAY_S)
        cursor += timedelta(days=7 * weeks)
        while cursor < end:
            midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time())
            segment_end = min(midnight.replace(tzinfo=cursor.tzinfo), end)
            if cursor.weekday() < 5:
                total += (segment_end - cursor).total_seconds()
            cursor = segment_end
        return total


_ORDERED, _REPEATED, _EARLIER = 0, 1, 2  # a bar against the one before it (disorder)


def _error(row: int | None, code: str, message: str) -> QualityIssue:
    return QualityIssue(row, code, Severity.ERROR, message)


def _floor4(value: Decimal) -> Decimal:
    return max(Decimal(0), min(Decimal(1), value)).quantize(_FOUR_PLACES, rounding=ROUND_FLOOR)
