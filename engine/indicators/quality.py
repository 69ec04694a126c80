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

Layout: this module runs the assessment over a window and is the one callers import from;
the types and formats are in :mod:`quality_model`, the checks in :mod:`quality_checks`,
and :mod:`quality_memo` keeps their per-row results from call to call. None of those
imports this module at run time, so it imports them all at the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import compress
from typing import TYPE_CHECKING, Any

from bastion.engine.indicators.quality_checks import (
    _EARLIER,
    _ORDERED,
    _REPEATED,
    _check_fields,
    _check_order,
    _check_outliers,
    _check_stale,
    _Clock,
    _confidence,
    _Found,
    _infer_interval_s,
    _robust_z,
    _score,
)
from bastion.engine.indicators.quality_memo import QualityMemo
from bastion.engine.indicators.quality_model import (
    DAY_S,
    WEEK_S,
    Bar,
    Calendar,
    QualityConfig,
    QualityIssue,
    QualityReport,
    Severity,
    format_duration,
    format_timestamp,
    parse_interval,
)

if TYPE_CHECKING:
    from bastion.engine.indicators.overlap import Overlaps
    from bastion.engine.indicators.quality_memo import _Rows

# The types and formats (quality_model) and the checks (quality_checks) live below this
# module; they are re-exported here, the private ones too, for the callers and tests that
# import them from here. Not `none_beyond`: the outlier check calls it in quality_checks, so
# a test patches it there (a patch of quality.none_beyond fails rather than do nothing).
__all__ = [
    "DAY_S",
    "WEEK_S",
    "_EARLIER",
    "_ORDERED",
    "_REPEATED",
    "Bar",
    "Calendar",
    "QualityConfig",
    "QualityIssue",
    "QualityReport",
    "Severity",
    "_Clock",
    "_Found",
    "_check_fields",
    "_robust_z",
    "assess_bars",
    "assess_score",
    "format_duration",
    "format_timestamp",
    "parse_interval",
]


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
    overlaps: Overlaps | None = None,
) -> Decimal:
    """``assess_bars(...).score_ratio`` with the same arguments (and memo), without the
    report: for a caller that reads the score only (the snapshot builder, every poll;
    ``overlaps``: its build's, see QualityMemo.rows).

    The score counts the rows with an error and those with a warning other than a gap
    or staleness; of what a report adds to the window's issues, only a last bar stamped
    after ``now`` (an error on its row) can change it. Equal to the report's score
    (tests/indicators/test_quality_score.py)."""
    config = config or QualityConfig()
    memo = _memo(memo)
    window = _window(bars, interval_s, calendar, config, memo, overlaps)
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
    return QualityMemo()


def _window(
    bars: Sequence[Bar],
    interval_s: int | None,
    calendar: Calendar | None,
    config: QualityConfig,
    memo: QualityMemo,
    overlaps: Overlaps | None = None,
) -> _Window:
    """What the memo holds of these bars' window, worked out again if need be."""
    if interval_s is not None and interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    rows = memo.rows(bars, overlaps)
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
