"""Exchange sessions for equity data: holidays, half days and weekends are not gaps.

The snapshot builder measures two things on a clock: how old the newest data is
(``market.data_age_s``, which the ``stale_data`` breaker reads) and whether bars are
missing (the quality score). On a crypto venue that clock runs 24/7. On an equity venue
the market is closed most of the week: a Friday close read on Sunday is not two days
stale, and Thanksgiving is not a missing daily bar. :class:`SessionClock` counts only
the time the exchange is open, from the ``exchange_calendars`` library's own session
table (holidays, early closes; bundled rules, computed offline — it downloads nothing).

- :meth:`SessionClock.open_seconds` — the open-market seconds between two moments.
- :meth:`SessionClock.session_time` — bars re-stamped on a clock without the closures
  (intraday bars: open-market seconds from the first bar; daily and longer bars: one day
  per session), with ``now`` on the same clock, for :func:`assess_bars` on its 24x7
  calendar. Intraday bars outside the sessions (pre- and post-market prints) are left out
  of the quality assessment only; every metric still uses them.
"""

from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from operator import attrgetter, is_, le
from typing import Any

from bastion.engine.indicators.quality import DAY_S, Bar

DEFAULT_EQUITY_CALENDAR = "XNYS"  # NYSE sessions, which US equity venues (Alpaca) follow


@lru_cache(maxsize=8)
def _calendar(name: str) -> Any:
    import exchange_calendars  # type: ignore[import-untyped]  # noqa: PLC0415 - heavy (pandas)

    # exchange_calendars reads `Series.values` of tz-aware series while it builds a
    # calendar, which pandas 3 warns about (Pandas4Warning, a DeprecationWarning) on every
    # build: the library's own business, not the operator's, so not in their logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return exchange_calendars.get_calendar(name)


def check_calendar(name: str) -> None:
    """ValueError naming the known calendars when ``name`` is not one."""
    import exchange_calendars  # noqa: PLC0415

    names = exchange_calendars.get_calendar_names(include_aliases=False)
    if name not in names:
        raise ValueError(f"unknown exchange calendar {name!r}; e.g. XNYS, XNAS, XLON")


@dataclass(frozen=True, slots=True)
class _Table:
    """A calendar's session table as integers, made once per calendar: each session's
    open and close in µs since the epoch (ascending, not overlapping), the date of its
    open (UTC, as an ordinal), and the distinct open dates. The queries below bisect it;
    pandas (`schedule.loc`) cost ~100 µs a query, and a build asks one per bar."""

    opens: list[int]
    closes: list[int]
    open_days: list[int]
    days: list[int]


@lru_cache(maxsize=8)
def _table(name: str) -> _Table:
    schedule = _calendar(name).schedule
    spans = [
        (o.to_pydatetime(), c.to_pydatetime())
        for o, c in zip(schedule["open"], schedule["close"], strict=True)
    ]
    opens = [_us(o) for o, _ in spans]
    closes = [_us(c) for _, c in spans]
    assert all(a < b for a, b in zip(opens, closes, strict=True)), name
    assert all(c <= o for c, o in zip(closes, opens[1:], strict=False)), name  # in order
    open_days = [o.date().toordinal() for o, _ in spans]
    return _Table(opens, closes, open_days, sorted(set(open_days)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


class SessionClock:
    """Open-market time of one exchange calendar (``exchange_calendars`` name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._table = _table(name)

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds the exchange was open between ``start`` and ``end`` (0 when end ≤ start):
        the sum, session by session in order, of each overlap's seconds (as
        ``timedelta.total_seconds`` gives them: the same float as the sessions' table)."""
        if end <= start:
            return 0.0
        table, first, last = self._table, _us(start), _us(end)
        total = 0.0
        for index in range(bisect_right(table.closes, first), bisect_left(table.opens, last)):
            overlap = min(last, table.closes[index]) - max(first, table.opens[index])
            total += max(0.0, overlap / 1_000_000)
        return total

    def in_session(self, moment: datetime) -> bool:
        table, at = self._table, _us(moment)
        index = bisect_right(table.opens, at) - 1
        return index >= 0 and at < table.closes[index]

    def closed_sessions(self, start: datetime, end: datetime) -> int:
        """Sessions that opened at or after ``start``'s session day and closed by ``end``."""
        table = self._table
        opened = bisect_left(table.open_days, start.date().toordinal())
        return max(0, bisect_right(table.closes, _us(end)) - opened)

    def session_time(
        self,
        bars: Sequence[Bar],
        interval_s: int,
        now: datetime,
        memo: Restamped | None = None,
    ) -> tuple[list[Bar], datetime]:
        """``bars`` and ``now`` re-stamped on a clock without closures (module docstring).

        ``memo`` (one per series: symbol and interval) keeps what the last call made of
        each bar, so that a series that moved on re-stamps its new bars only and hands
        back the very same re-stamped objects for the rest (the quality memo then checks
        the new bars only). Intraday, it keeps the first call's origin while that stays at
        or before the bars (:meth:`_moved`): every time is then the one from this call's
        own origin shifted by one constant, and the quality score reads time only as
        differences (its 24x7 clock: gaps, order, staleness against ``now`` shifted
        alike), so it is the same (tests/adapters/test_market_calendar_memo.py)."""
        if not bars:
            return [], now
        if interval_s >= DAY_S:  # one day per session: a holiday is not a missing bar
            origin = bars[0].timestamp
            if memo is not None and _same(memo.bars, bars):
                restamped = memo.kept
            else:
                restamped = [
                    replace(
                        bar, timestamp=origin + timedelta(days=self._index(origin, bar.timestamp))
                    )
                    for bar in bars
                ]
                if memo is not None:
                    memo.remember(bars, list(restamped), restamped, origin)
            return restamped, origin + timedelta(days=self.closed_sessions(origin, now))
        moved = None if memo is None else self._moved(memo, bars, now)
        if moved is not None:
            return moved
        made = [bar if self.in_session(bar.timestamp) else None for bar in bars]
        kept = [bar for bar in made if bar is not None]
        if not kept:
            return [], now
        origin = kept[0].timestamp
        out = [None if bar is None else self._stamp(bar, origin) for bar in made]
        restamped = [bar for bar in out if bar is not None]
        if memo is not None:
            memo.remember(bars, out, restamped, origin, kept, _ordered(kept))
        return restamped, origin + timedelta(seconds=self.open_seconds(origin, now))

    def _stamp(self, bar: Bar, origin: datetime) -> Bar:
        return replace(
            bar, timestamp=origin + timedelta(seconds=self.open_seconds(origin, bar.timestamp))
        )

    def _moved(
        self, memo: Restamped, bars: Sequence[Bar], now: datetime
    ) -> tuple[list[Bar], datetime] | None:
        """Intraday ``bars`` that are the memo's moved on (the very same objects from one
        of its bars on), re-stamped from the memo's origin — or None (stamp afresh) unless
        the origin is at or before this call's own (the first bar in the sessions), that
        bar is the earliest of them, ``now`` is not before it, and the origin is within
        :data:`_ORIGIN_KEPT` of it."""
        origin, old = memo.origin, memo.bars
        if origin is None or not old:
            return None
        first = bars[0]
        start = next((row for row in range(min(len(old), 64)) if old[row] is first), -1)
        if start < 0:
            return None
        same = min(len(old) - start, len(bars))  # rows the very same bars as the memo's
        if not all(map(is_, old[start : start + same], bars[:same])):
            return None
        if start == 0 and same == len(old) == len(bars):  # the very same series again
            if not (origin <= memo.sources[0].timestamp <= now):
                return None
            return memo.kept, origin + timedelta(seconds=self.open_seconds(origin, now))
        # The memo's restamped bars (and their sources) of those rows: the ones before
        # them dropped, counted by the Nones (outside the sessions) among their rows.
        before = start - _nones(memo.out[:start])
        inside = same - _nones(memo.out[start : start + same])
        added = [
            (self._stamp(b, origin), b) if self.in_session(b.timestamp) else None
            for b in bars[same:]
        ]
        new = [pair for pair in added if pair is not None]
        sources = memo.sources[before : before + inside] + [b for _, b in new]
        if not sources:
            return None
        own = sources[0].timestamp
        if not (origin <= own <= now and own - origin <= _ORIGIN_KEPT):
            return None
        ordered = memo.ordered and _ordered(sources[max(0, inside - 1) :])
        if not ordered:
            ordered = _ordered(sources)
            if min(map(_STAMP, sources)) != own:  # not the earliest: stamp afresh
                return None
        out = memo.out[start : start + same] + [None if p is None else p[0] for p in added]
        kept = memo.kept[before : before + inside] + [r for r, _ in new]
        memo.remember(bars, out, kept, origin, sources, ordered)
        return kept, origin + timedelta(seconds=self.open_seconds(origin, now))

    def _index(self, origin: datetime, moment: datetime) -> int:
        """Sessions from ``origin``'s session day to ``moment``'s, by session date."""
        days, first, last = self._table.days, origin.date().toordinal(), moment.date().toordinal()
        return max(0, bisect_left(days, last) - bisect_left(days, first))


_ORIGIN_KEPT = timedelta(days=7)  # a memo's origin is renewed after this (short sums)
_STAMP = attrgetter("timestamp")


class Restamped:
    """What :meth:`SessionClock.session_time` made of one series the last time: the bars
    asked, per bar its re-stamped bar (None: outside the sessions), the re-stamped bars
    handed back and the bars they came from (in time order or not), and the origin they
    were stamped from. A cache: the score is the same without it. One per series
    (symbol, interval), builder and thread."""

    __slots__ = ("bars", "kept", "ordered", "origin", "out", "sources")

    def __init__(self) -> None:
        self.bars: tuple[Bar, ...] = ()
        self.out: list[Bar | None] = []
        self.kept: list[Bar] = []
        self.sources: list[Bar] = []
        self.ordered = False
        self.origin: datetime | None = None

    def remember(
        self,
        bars: Sequence[Bar],
        out: list[Bar | None],
        kept: list[Bar],
        origin: datetime,
        sources: list[Bar] | None = None,
        ordered: bool = False,
    ) -> None:
        self.bars, self.out, self.kept, self.origin = tuple(bars), out, kept, origin
        self.sources, self.ordered = [] if sources is None else sources, ordered


def _nones(made: list[Bar | None]) -> int:
    """How many are None, by identity (``list.count`` would call each Bar's ``__eq__``)."""
    return sum(map(is_, made, repeat(None)))


def _ordered(bars: Sequence[Bar]) -> bool:
    """The bars' stamps never go back."""
    stamps = list(map(_STAMP, bars))
    return all(map(le, stamps, stamps[1:]))


def _same(held: tuple[Bar, ...], bars: Sequence[Bar]) -> bool:
    return len(held) == len(bars) and all(map(is_, held, bars))
