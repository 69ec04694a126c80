"""QualityMemo: what :func:`quality.assess_bars` worked out for each bar of a series, kept
from call to call so that a series moved on by a bar is checked for its new bars only.

The checks themselves (fields, order, gaps, outliers) are in :mod:`quality_checks`; this module
keeps their per-row results and the sorted samples of the outlier screen as the window
slides. The report is the same with or without a memo
(tests/indicators/test_quality_memo.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.engine.indicators.overlap import Overlaps
from bastion.engine.indicators.quality_checks import (
    _EARLIER,
    _ORDERED,
    _REPEATED,
    _check_fields,
    _Clock,
    _Found,
    _gap,
)
from bastion.engine.indicators.quality_model import Bar

if TYPE_CHECKING:
    from decimal import Decimal

    from bastion.engine.indicators.quality import _Window
    from bastion.engine.indicators.quality_model import QualityIssue


@dataclass(slots=True)
class _Rows:
    """What each bar of a series says on its own or with the bar before it, by row, and
    the series' returns and ranges sorted (the outlier screen's samples)."""

    bars: list[Bar]
    fields: list[tuple[_Found, ...]]  # the bar's field issues
    ranges: list[float | None]  # log(high / low), None when not computable
    returns: list[float | None]  # log(close / previous close); [0] is None
    weekend: list[bool]  # opens on a Saturday or Sunday (in the first bar's time zone)
    ordered: list[bool]  # strictly after the bar before; [0] is False
    disorder: list[int]  # _REPEATED / _EARLIER against the bar before, else _ORDERED (0)
    # The returns of ordered rows and every range, sorted; NaN ones only counted (odd_*).
    sorted_returns: list[float] = field(default_factory=list)
    sorted_ranges: list[float] = field(default_factory=list)
    odd_returns: int = 0
    odd_ranges: int = 0
    # Per sample (outlier limit, verdict of robust_scale.none_beyond), kept while the
    # sample is the same list.
    returns_clear: tuple[float, bool] | None = None
    ranges_clear: tuple[float, bool] | None = None
    # How many rows have field issues, open on a weekend, are out of order (repeated or
    # earlier), are earlier: kept with the rows, so a clean window is not read row by row.
    field_rows: int = 0
    weekend_rows: int = 0
    disorder_rows: int = 0
    earlier_rows: int = 0

    def columns(self) -> tuple[list[Any], ...]:
        """The per-row lists, in field order."""
        return (
            self.bars,
            self.fields,
            self.ranges,
            self.returns,
            self.weekend,
            self.ordered,
            self.disorder,
        )

    def uncount(self, start: int, end: int) -> None:
        """Take rows ``start`` to ``end`` (exclusive) out of the counts."""
        self.field_rows -= sum(map(bool, self.fields[start:end]))
        self.weekend_rows -= sum(self.weekend[start:end])
        disorder = self.disorder[start:end]
        self.disorder_rows -= len(disorder) - disorder.count(_ORDERED)
        self.earlier_rows -= disorder.count(_EARLIER)

    def used_returns(self, start: int = 0, end: int | None = None) -> list[float]:
        """The returns the outlier screen uses, of rows ``start`` to ``end``."""
        stop = len(self.bars) if end is None else end
        returns, ordered = self.returns, self.ordered
        return [
            move
            for row in range(start, stop)
            if ordered[row] and (move := returns[row]) is not None
        ]

    def sort(self) -> None:
        """The sorted samples, afresh."""
        self.sorted_returns, self.odd_returns = _sorted(self.used_returns())
        self.sorted_ranges, self.odd_ranges = _sorted(
            [width for width in self.ranges if width is not None]
        )


def _sorted(values: list[float]) -> tuple[list[float], int]:
    """(the values but NaN, sorted; how many NaN)."""
    kept = [value for value in values if not math.isnan(value)]
    return sorted(kept), len(values) - len(kept)


def _new_rows(bars: Sequence[Bar], previous: Bar | None, zone: Any) -> _Rows:
    rows = _Rows([], [], [], [], [], [], [])
    _append_rows(rows, bars, previous, zone)
    return rows


def _append_rows(
    rows: _Rows, bars: Sequence[Bar], previous: Bar | None, zone: Any
) -> tuple[list[float], list[float]]:
    """``bars`` (following ``previous``) appended to ``rows`` and counted; their used
    returns and their ranges, as the outlier screen's samples take them."""
    used_returns: list[float] = []
    new_ranges: list[float] = []
    for bar in bars:
        low, high, close, stamp = bar.low, bar.high, bar.close, bar.timestamp
        fields = _check_fields(bar)
        rows.bars.append(bar)
        rows.fields.append(fields)
        width = None
        if low > 0 and high >= low:
            width = math.log(float(high) / float(low))
            new_ranges.append(width)
        rows.ranges.append(width)
        move = None
        disorder = _ORDERED
        ordered = False
        if previous is not None:
            if close > 0 and previous.close > 0:
                move = math.log(float(close) / float(previous.close))
            if stamp == previous.timestamp:
                disorder = _REPEATED
            elif stamp < previous.timestamp:
                disorder = _EARLIER
            if stamp > previous.timestamp:  # its own test: across zones, == and < may both
                # be False for one pair of stamps (PEP 495)
                ordered = True
                if move is not None:
                    used_returns.append(move)
        rows.returns.append(move)
        rows.ordered.append(ordered)
        rows.disorder.append(disorder)
        weekend = stamp.astimezone(zone).weekday() >= 5
        rows.weekend.append(weekend)
        if fields:
            rows.field_rows += 1
        if weekend:
            rows.weekend_rows += 1
        if disorder:
            rows.disorder_rows += 1
            if disorder == _EARLIER:
                rows.earlier_rows += 1
        previous = bar
    return used_returns, new_ranges


@dataclass(slots=True)
class _Gaps:
    """Per row, on one clock and interval: bars missing since the bar before, and the
    gap or short-interval issue (None: neither; row 0 and unordered rows: neither)."""

    key: tuple[object, ...]
    missing: list[int]
    found: list[_Found | None]
    missing_total: int = 0  # sum(missing)
    found_rows: int = 0  # how many rows have an issue in found

    def uncount(self, start: int, end: int) -> None:
        """Take rows ``start`` to ``end`` (exclusive) out of the counts."""
        self.missing_total -= sum(self.missing[start:end])
        found = self.found[start:end]
        self.found_rows -= len(found) - found.count(None)


_REUSE_WITHIN = 8  # look this many rows into the previous window for its first bar
_RESORT_ABOVE = 24  # more values in or out than this: sort the samples afresh


class QualityMemo:
    """What :func:`assess_bars` worked out for each bar of one series on the previous
    call, so that a call over the same series moved on by a bar or two (a poll loop, a
    replay: the window slides) checks the new bars only: fields, order and gaps of the
    new rows, their returns and ranges put in place in the sorted samples. The
    series-wide parts (the outlier screen against the window's median, the score,
    staleness) are worked out every call from those, and the report is the same with or
    without a memo (tests/indicators/test_quality_memo.py).

    Reused only for the very same bars (identical, or equal: a revised bar is checked
    again) in the same time zone; anything else starts afresh. Not thread-safe: one memo
    per series (symbol and interval) and thread."""

    def __init__(self) -> None:
        self._rows = _Rows([], [], [], [], [], [], [])
        self._zone: Any = None
        # The last call's bars when a tuple (the rows hold its very bars), for `overlaps`.
        self._last: tuple[Bar, ...] | None = None
        self._gaps = _Gaps((), [], [])
        # The last report's parts: what it said of the window, and its score.
        self.window: _Window | None = None
        self.scored: (
            tuple[tuple[int, int, tuple[QualityIssue, ...], int, bool], Decimal, Decimal] | None
        ) = None
        # assess_score's: the score of a window's issues alone, and what it was worked out of.
        self.window_scored: tuple[tuple[int, int, tuple[QualityIssue, ...]], Decimal] | None = None

    def rows(self, bars: Sequence[Bar], overlaps: Overlaps | None = None) -> _Rows:
        """The rows of ``bars``: the last call's, moved on in place where they are the
        same bars. ``overlaps``: the build's, where other memos of the same series (a
        tuple: it cannot change) may have found how it carries on the last one."""
        zone = bars[0].timestamp.tzinfo if bars else None
        last, self._last = self._last, None  # set again once the rows are these bars'
        start, kept = 0, 0
        if zone == self._zone:
            found = None
            if overlaps is not None and last is not None and type(bars) is tuple:
                found = overlaps.find(last, bars)  # the very same bars (so equal ones)
            if found is None:  # (any start: _cut takes the rows from there)
                found = self._overlap(bars)
            start, kept = found
        old = self._rows
        if kept and start == 0 and kept == len(old.bars) == len(bars):
            rows = old  # the very same window
        elif kept:
            self._cut(bars, start, kept, zone)
            rows = old
            self.window = None  # its rows changed in place: worked out again
        else:
            rows = _new_rows(bars, None, zone)
            rows.sort()
            self._gaps = _Gaps((), [], [])
        self._rows, self._zone = rows, zone
        self._last = bars if type(bars) is tuple else None
        return rows

    def _cut(self, bars: Sequence[Bar], start: int, kept: int, zone: Any) -> None:
        """The rows (and gaps) of the last window, in place, made those of ``bars``:
        ``bars[:kept]`` are its rows ``start`` to ``start + kept``. Cut in place: new lists
        of a window's length every call would be young objects for the collector to walk
        (~2 ms a build over 51 symbols)."""
        old = self._rows
        end, count = start + kept, len(old.bars)
        returns, ordered, ranges = old.returns, old.ordered, old.ranges
        gone = (*range(start + 1), *range(end, count))  # row 0 never has a used return
        gone_returns = [move for row in gone if ordered[row] and (move := returns[row]) is not None]
        gone_ranges = [
            width
            for row in (*range(start), *range(end, count))
            if (width := ranges[row]) is not None
        ]
        columns = old.columns()
        if end < count:
            old.uncount(end, count)
            for column in columns:
                del column[end:]
        old.uncount(0, start + 1)  # the new first row counts without a bar before it
        for column in columns:
            del column[:start]
        returns[0], ordered[0], old.disorder[0] = None, False, _ORDERED
        old.field_rows += bool(old.fields[0])
        old.weekend_rows += old.weekend[0]
        new_returns, new_ranges = _append_rows(old, bars[kept:], bars[kept - 1], zone)
        _slide_samples(old, (gone_returns, gone_ranges), (new_returns, new_ranges))
        gaps = self._gaps
        if len(gaps.missing) == count:  # worked out for the last window
            if end < count:
                gaps.uncount(end, count)
                del gaps.missing[end:], gaps.found[end:]
            gaps.uncount(0, start + 1)  # the new first row has no gap before it
            del gaps.missing[:start], gaps.found[:start]
            gaps.missing[0], gaps.found[0] = 0, None
        else:
            self._gaps = _Gaps((), [], [])

    def gaps(self, bars: Sequence[Bar], clock: _Clock, interval_s: int) -> _Gaps:
        """Per row, the bars missing since the bar before on ``clock`` and the gap issue
        (none across a session break); call after :meth:`rows` with the same bars."""
        key = (clock.weekdays, clock.intraday, clock.zone, interval_s)
        gaps = self._gaps
        if key != gaps.key:
            gaps = self._gaps = _Gaps(key, [], [])
        if len(gaps.missing) > len(bars):
            gaps.uncount(len(bars), len(gaps.missing))
            del gaps.missing[len(bars) :], gaps.found[len(bars) :]
        if bars and not gaps.missing:
            gaps.missing.append(0)
            gaps.found.append(None)
        ordered = self._rows.ordered
        for row in range(len(gaps.missing), len(bars)):
            missing, found = 0, None
            start, end = bars[row - 1].timestamp, bars[row].timestamp
            if ordered[row] and not clock.is_session_break(start, end):
                missing, found = _gap(start, end, interval_s, clock.elapsed_s(start, end))
            gaps.missing.append(missing)
            gaps.found.append(found)
            gaps.missing_total += missing
            gaps.found_rows += found is not None
        return gaps

    def _overlap(self, bars: Sequence[Bar]) -> tuple[int, int]:
        """(the previous window's row holding ``bars[0]``, how many bars from there on are
        the same), or (0, 0) when none can be reused."""
        old = self._rows.bars
        if not bars:
            return 0, 0
        first, reach = bars[0], min(len(old), _REUSE_WITHIN)
        # The very same bar first (the poll loop's case: cheap), else an equal one.
        for start in range(reach):
            if old[start] is first:
                break
        else:
            for start in range(reach):
                if old[start] == first:
                    break
            else:
                return 0, 0
        kept = min(len(old) - start, len(bars))
        # One comparison in C: identical bars are equal without a call of Bar.__eq__
        # (the poll loop's case), equal ones (a revised bar fetched again) through it.
        if old[start : start + kept] == list(bars[:kept]):
            return start, kept
        return 0, 0


def _slide_samples(
    rows: _Rows, gone: tuple[list[float], list[float]], new: tuple[list[float], list[float]]
) -> None:
    """``rows``' sorted samples, in place: the (returns, ranges) ``gone`` taken out, the
    ``new`` ones put in (or sorted afresh when that is many); a sample that changed loses
    its verdict."""
    gone_returns, gone_ranges = gone
    new_returns, new_ranges = new
    changes = len(gone_returns) + len(gone_ranges) + len(new_returns) + len(new_ranges)
    if changes > _RESORT_ABOVE:
        rows.sort()
        rows.returns_clear = rows.ranges_clear = None
        return
    if gone_returns or new_returns:
        rows.odd_returns = _moved(rows.sorted_returns, rows.odd_returns, gone_returns, new_returns)
        rows.returns_clear = None
    if gone_ranges or new_ranges:
        rows.odd_ranges = _moved(rows.sorted_ranges, rows.odd_ranges, gone_ranges, new_ranges)
        rows.ranges_clear = None


def _moved(ordered: list[float], odd: int, gone: list[float], new: list[float]) -> int:
    """A sorted sample, in place, with ``gone`` taken out and ``new`` put in; the count
    of NaN in it after that."""
    for value in gone:
        if math.isnan(value):
            odd -= 1
        else:
            del ordered[bisect_left(ordered, value)]
    for value in new:
        if math.isnan(value):
            odd += 1
        else:
            insort(ordered, value)
    return odd
