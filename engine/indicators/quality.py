"""OHLCV bars and their data-quality report: can a policy trust this series?

:func:`assess_bars` checks, per bar: high ≥ max(open, close), low ≤ min(open, close),
positive prices, non-negative volume; per pair: unique, increasing timestamps and gaps
against the bar interval; over the series: robust-z outliers (median / MAD, see
:func:`_robust_z`) in close-to-close log returns and in high–low ranges — a move that the
next bar reverses is a ``spike`` (a bad print), one that stays is a ``jump`` (a real move
or an unadjusted split); and, given ``now``, a stale last bar.

The result is a frozen :class:`QualityReport`:

- ``score_ratio`` (0–1) = validity × completeness × cleanliness, where validity is the share
  of bars without an error, completeness is bars / (bars + missing bars), cleanliness is the
  share of bars without an outlier or timing warning. Rounded *down* to 4 places, so a
  score never rounds up past a policy threshold.
- ``confidence_ratio`` (0–1): how much evidence the assessment rests on — the mean of
  four checks: fields (always), timing (needs ≥ 2 bars), outliers (full weight from
  20 returns up) and staleness (needs ``now``).
- ``usable``: no error-level issue, not stale, and ``score_ratio ≥ min_score_ratio``.

:func:`assess_score` gives the score alone, for a caller that reads nothing else (the
snapshot builder, every poll): the same value, without building the report.

Calendars: ``24x7`` counts every second (crypto). ``weekdays`` skips Saturday and Sunday
in the bars' own time zone (equity daily bars); for intraday bars it only counts gaps
within one day, so the overnight break is not a gap. Exchange holidays and session hours
are not modelled: a holiday shows as a one-bar gap (a warning, never an error).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from enum import StrEnum
from itertools import compress, pairwise
from typing import TYPE_CHECKING, Any

from bastion.engine.indicators.robust_scale import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, none_beyond

if TYPE_CHECKING:  # the memo (quality_memo.py) builds on the checks of this module
    from bastion.engine.indicators.quality_memo import QualityMemo, _Rows

DAY_S = 86_400
WEEK_S = 7 * DAY_S
_FOUR_PLACES = Decimal("0.0001")
_FULL_EVIDENCE_RETURNS = 20
_RATIO_CONTEXT = Context(prec=28)  # ratios do not depend on the caller's decimal context


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar. ``timestamp`` is the bar's *open* time and must carry a time zone."""

    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None = None

    def __post_init__(self) -> None:
        if self.timestamp.utcoffset() is None:
            raise ValueError(f"bar timestamp {self.timestamp} has no time zone; attach one")
        for name in ("open", "high", "low", "close", "volume"):
            value = getattr(self, name)
            if value is None and name == "volume":
                continue
            if not isinstance(value, Decimal):
                raise TypeError(f"bar {name} must be a Decimal, got {value!r}")
            if not value.is_finite():
                raise ValueError(f"bar {name} is {value}; a bar holds finite numbers")


class Calendar(StrEnum):
    ALWAYS = "24x7"
    WEEKDAYS = "weekdays"


class Severity(StrEnum):
    ERROR = "error"  # the bar is wrong: the series is not usable
    WARNING = "warning"  # suspicious or missing data: lowers the score
    INFO = "info"  # worth knowing, does not change the score


@dataclass(frozen=True, slots=True)
class QualityIssue:
    row: int | None  # 0-based bar index; None for the series as a whole
    code: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class QualityConfig:
    outlier_z: float = 6.0  # robust z beyond which a return or a range is an outlier
    min_score_ratio: Decimal = Decimal("0.90")
    stale_after_s: float | None = None  # default: one bar interval after the bar closed
    min_returns_for_outliers: int = 10

    def __post_init__(self) -> None:
        if not self.outlier_z > 0 or not Decimal(0) <= self.min_score_ratio <= Decimal(1):
            raise ValueError(f"need outlier_z > 0 and 0 ≤ min_score_ratio ≤ 1, got {self}")
        if (self.stale_after_s is not None and self.stale_after_s < 0) or (
            self.min_returns_for_outliers < 3
        ):
            raise ValueError(f"need stale_after_s ≥ 0 and min_returns_for_outliers ≥ 3: {self}")


@dataclass(frozen=True, slots=True)
class QualityReport:
    bars: int
    issues: tuple[QualityIssue, ...]
    score_ratio: Decimal
    confidence_ratio: Decimal
    usable: bool
    interval_s: int | None
    interval_inferred: bool
    calendar: Calendar
    calendar_inferred: bool
    missing_bars: int
    stale: bool | None  # None: not checked (no `now`)
    age_s: float | None  # time since the last bar closed, on the calendar's clock
    skipped: tuple[str, ...] = field(default=())  # checks that could not run, and why

    def count(self, severity: Severity) -> int:
        return sum(1 for issue in self.issues if issue.severity is severity)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, enums as their values."""
        return {
            "bars": self.bars,
            "usable": self.usable,
            "score_ratio": str(self.score_ratio),
            "confidence_ratio": str(self.confidence_ratio),
            "interval_s": self.interval_s,
            "interval_inferred": self.interval_inferred,
            "calendar": self.calendar.value,
            "calendar_inferred": self.calendar_inferred,
            "missing_bars": self.missing_bars,
            "stale": self.stale,
            "age_s": self.age_s,
            "skipped": list(self.skipped),
            "issues": [
                {"row": i.row, "code": i.code, "severity": i.severity.value, "message": i.message}
                for i in self.issues
            ],
        }


_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": DAY_S, "w": WEEK_S}


def parse_interval(text: str) -> int:
    """'30s', '1m', '15min', '4h', '1d', '1w' → seconds. An upper-case M (a month on
    Binance, month-end in pandas) is refused rather than read as minutes."""
    match = _INTERVAL.match(text)
    if not match or int(match.group(1)) == 0 or match.group(2) == "M":
        raise ValueError(
            f"interval {text!r} is not like 30s, 1m, 15m, 4h, 1d or 1w (months are not supported)"
        )
    return int(match.group(1)) * _UNIT_S[match.group(2).lower()]


def format_duration(seconds: float) -> str:
    """86400 → '1d', 5400 → '1h30m', 42.5 → '42.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    parts, rest = [], round(seconds)
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def format_timestamp(stamp: datetime) -> str:
    """ISO 8601, shortened to the date for a bar stamped at UTC midnight (daily bars)."""
    if stamp.utcoffset() == timedelta(0) and stamp.time() == datetime.min.time():
        return stamp.date().isoformat()
    return stamp.isoformat()


_ts = format_timestamp


def assess_bars(
    bars: Sequence[Bar],
    *,
    interval_s: int | None = None,
    calendar: Calendar | None = None,
    now: datetime | None = None,
    config: QualityConfig | None = None,
    memo: QualityMemo | None = None,
) -> QualityReport:
    """Check a bar series; ``interval_s`` and ``calendar`` are inferred when omitted.

    ``memo`` (one per series, e.g. per symbol and interval) keeps the per-bar and per-pair
    results of the previous call, so that a series that moved on by a bar is checked for
    its new bars only; the report is the same with or without it."""
    config = config or QualityConfig()
    memo = _memo(memo)
    window = _window(bars, interval_s, calendar, config, memo)
    issues = list(window.issues)
    skipped = list(window.skipped)
    interval_s, calendar, clock = window.interval_s, window.calendar, window.clock
    missing, returns_used = window.missing, window.returns_used
    stale: bool | None = None
    age_s: float | None = None
    if now is None:
        skipped.append("staleness: no `now` given")
    elif bars and interval_s is not None:
        stale, age_s = _check_stale(bars[-1], len(bars) - 1, now, interval_s, clock, config, issues)
    elif bars:
        skipped.append("staleness: the bar interval is unknown")
    if not bars:
        issues.append(QualityIssue(None, "empty", Severity.ERROR, "no bars: nothing to assess"))
    issues.sort(key=lambda i: (-1 if i.row is None else i.row, i.code))
    scored = (len(bars), missing, tuple(issues), returns_used, stale is not None)
    if memo.scored is None or memo.scored[0] != scored:
        memo.scored = (
            scored,
            _score(len(bars), missing, issues),
            _confidence(scored[0], *scored[3:]),
        )
    score, confidence = memo.scored[1:]
    usable = (
        bool(bars)
        and not any(i.severity is Severity.ERROR for i in issues)
        and not stale
        and score >= config.min_score_ratio
    )
    return QualityReport(
        bars=len(bars),
        issues=tuple(issues),
        score_ratio=score,
        confidence_ratio=confidence,
        usable=usable,
        interval_s=interval_s,
        interval_inferred=window.interval_inferred,
        calendar=calendar,
        calendar_inferred=window.calendar_inferred,
        missing_bars=missing,
        stale=stale,
        age_s=age_s,
        skipped=tuple(skipped),
    )


def assess_score(
    bars: Sequence[Bar],
    *,
    interval_s: int | None = None,
    calendar: Calendar | None = None,
    now: datetime | None = None,
    config: QualityConfig | None = None,
    memo: QualityMemo | None = None,
) -> Decimal:
    """``assess_bars(...).score_ratio`` with the same arguments (and memo), without the
    report: for a caller that reads the score only (the snapshot builder, every poll).

    The score counts the rows with an error and those with a warning other than a gap
    or staleness; of what a report adds to the window's issues, only a last bar stamped
    after ``now`` (an error on its row) can change it. Equal to the report's score
    (tests/indicators/test_quality_score.py)."""
    config = config or QualityConfig()
    memo = _memo(memo)
    window = _window(bars, interval_s, calendar, config, memo)
    if not bars:
        return Decimal(0)
    if window.score is None:  # a window moved on: most often scored as the last one was
        counted = (len(bars), window.missing, window.issues)
        if memo.window_scored is None or memo.window_scored[0] != counted:
            memo.window_scored = counted, _score(*counted)
        window.score = memo.window_scored[1]
    if now is None or window.interval_s is None or not bars[-1].timestamp > now:
        return window.score
    issues = list(window.issues)
    row, clock = len(bars) - 1, window.clock
    _check_stale(bars[-1], row, now, window.interval_s, clock, config, issues)
    return _score(len(bars), window.missing, issues)


def _memo(memo: QualityMemo | None) -> QualityMemo:
    if memo is not None:
        return memo
    from bastion.engine.indicators.quality_memo import QualityMemo  # noqa: PLC0415

    return QualityMemo()


def _window(
    bars: Sequence[Bar],
    interval_s: int | None,
    calendar: Calendar | None,
    config: QualityConfig,
    memo: QualityMemo,
) -> _Window:
    """What the memo holds of these bars' window, worked out again if need be."""
    if interval_s is not None and interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    rows = memo.rows(bars)
    key = (interval_s, calendar, config)
    window = memo.window
    if window is None or window.rows is not rows or window.key != key:
        window = memo.window = _assess_window(bars, rows, memo, key)
    return window


@dataclass(slots=True)
class _Window:
    """What a report says of its bars whatever the time: every issue but staleness."""

    rows: _Rows
    key: tuple[object, ...]  # (interval_s, calendar, config) as asked
    issues: tuple[QualityIssue, ...]
    skipped: tuple[str, ...]
    interval_s: int | None
    interval_inferred: bool
    calendar: Calendar
    calendar_inferred: bool
    clock: _Clock
    missing: int
    returns_used: int
    score: Decimal | None = None  # of the window's issues alone, once asked (assess_score)


def _assess_window(
    bars: Sequence[Bar], rows: _Rows, memo: QualityMemo, key: tuple[Any, Any, QualityConfig]
) -> _Window:
    interval_s, calendar, config = key
    issues: list[QualityIssue] = []
    skipped: list[str] = []
    if rows.field_rows:  # counted as the rows came (quality_memo)
        for row in compress(range(len(rows.fields)), rows.fields):  # the rows with issues
            issues.extend(
                QualityIssue(row, code, severity, text) for code, severity, text in rows.fields[row]
            )
    interval_inferred = interval_s is None
    interval_s = interval_s if interval_s is not None else _infer_interval_s(bars)
    calendar_inferred = calendar is None
    if calendar is None:
        calendar = Calendar.ALWAYS if not bars or rows.weekend_rows else Calendar.WEEKDAYS
    clock = _Clock(calendar, interval_s, bars[0].timestamp if bars else None)
    _check_order(bars, rows, issues)
    missing = 0
    if interval_s is None:
        skipped.append("gaps: need two bars with increasing timestamps to infer the interval")
    else:
        gaps = memo.gaps(bars, clock, interval_s)
        missing = gaps.missing_total
        for row in compress(range(len(gaps.found)), gaps.found) if gaps.found_rows else ():
            code, severity, text = gaps.found[row]  # type: ignore[misc]
            issues.append(QualityIssue(row, code, severity, text))
    returns_used = _check_outliers(rows, config, issues, skipped)
    return _Window(
        rows,
        key,
        tuple(issues),
        tuple(skipped),
        interval_s,
        interval_inferred,
        calendar,
        calendar_inferred,
        clock,
        missing,
        returns_used,
    )


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
    with localcontext(_RATIO_CONTEXT):
        validity = Decimal(count - len(error_rows)) / count
        cleanliness = Decimal(count - len(warning_rows - error_rows)) / count
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
