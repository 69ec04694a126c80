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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import compress
from operator import attrgetter, le
from typing import Any, cast

from bastion.engine.indicators.overlap import Overlaps, overlap, same
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


@lru_cache(maxsize=4096)
def _open_seconds(name: str, start: datetime, end: datetime) -> float:
    """SessionClock.open_seconds, remembered: a build asks the same few moments of every
    symbol (its ``now``, the bars' common minutes, their origin). A function of the two
    instants only (``_us``), so equal datetimes in other zones may share an answer."""
    if end <= start:
        return 0.0
    table, first, last = _table(name), _us(start), _us(end)
    total = 0.0
    for index in range(bisect_right(table.closes, first), bisect_left(table.opens, last)):
        overlap = min(last, table.closes[index]) - max(first, table.opens[index])
        total += max(0.0, overlap / 1_000_000)
    return total


@lru_cache(maxsize=4096)
def _closed_sessions(name: str, start_day: int, end: datetime) -> int:
    """SessionClock.closed_sessions, remembered (every symbol's daily bars ask it with
    the build's ``now``): ``start_day`` is the start's date (in its own zone) as an
    ordinal, ``end`` counts as its instant."""
    table = _table(name)
    opened = bisect_left(table.open_days, start_day)
    return max(0, bisect_right(table.closes, _us(end)) - opened)


@lru_cache(maxsize=4096)
def _in_session(name: str, moment: datetime) -> bool:
    """SessionClock.in_session, remembered (every symbol's new bar has the same minute);
    of the instant only."""
    table, at = _table(name), _us(moment)
    index = bisect_right(table.opens, at) - 1
    return index >= 0 and at < table.closes[index]


class SessionClock:
    """Open-market time of one exchange calendar (``exchange_calendars`` name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._table = _table(name)

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds the exchange was open between ``start`` and ``end`` (0 when end ≤ start):
        the sum, session by session in order, of each overlap's seconds (as
        ``timedelta.total_seconds`` gives them: the same float as the sessions' table)."""
        return _open_seconds(self.name, start, end)

    def in_session(self, moment: datetime) -> bool:
        return _in_session(self.name, moment)

    def closed_sessions(self, start: datetime, end: datetime) -> int:
        """Sessions that opened at or after ``start``'s session day and closed by ``end``."""
        return _closed_sessions(self.name, start.date().toordinal(), end)

    def session_time(
        self,
        bars: Sequence[Bar],
        interval_s: int,
        now: datetime,
        memo: Restamped | None = None,
        overlaps: Overlaps | None = None,
    ) -> tuple[tuple[Bar, ...], datetime]:
        """``bars`` and ``now`` re-stamped on a clock without closures (module docstring).

        ``memo`` (one per series: symbol and interval) keeps what the last call made of
        each bar, so that a series that moved on re-stamps its new bars only and hands
        back the very same re-stamped objects for the rest (the quality memo then checks
        the new bars only). Intraday, it keeps the first call's origin while that stays at
        or before the bars (:meth:`_moved`): every time is then the one from this call's
        own origin shifted by one constant, and the quality score reads time only as
        differences (its 24x7 clock: gaps, order, staleness against ``now`` shifted
        alike), so it is the same (tests/adapters/test_market_calendar_memo.py).
        ``overlaps``: the build's, to share what other memos found of the same series,
        and to tell the quality memo how the re-stamped bars carry on the last ones."""
        if not bars:
            return (), now
        if interval_s >= DAY_S:  # one day per session: a holiday is not a missing bar
            origin = bars[0].timestamp
            if memo is not None and same(memo.bars, bars):
                restamped = memo.kept
            else:
                restamped = tuple(
                    restamp(bar, origin + timedelta(days=self._index(origin, bar.timestamp)))
                    for bar in bars
                )
                if memo is not None:
                    memo.remember(bars, bytearray(b"\1") * len(bars), restamped, origin)
            return restamped, origin + timedelta(days=self.closed_sessions(origin, now))
        moved = None if memo is None else self._moved(memo, bars, now, overlaps)
        if moved is not None:
            return moved
        flags = bytearray(map(self.in_session, map(_STAMP, bars)))
        sources = list(compress(bars, flags))
        if not sources:
            return (), now
        origin = sources[0].timestamp
        restamped = tuple([self._stamp(bar, origin) for bar in sources])
        if memo is not None:
            memo.remember(bars, flags, restamped, origin, _ordered(sources))
        return restamped, origin + timedelta(seconds=self.open_seconds(origin, now))

    def _stamp(self, bar: Bar, origin: datetime) -> Bar:
        return restamp(bar, origin + timedelta(seconds=self.open_seconds(origin, bar.timestamp)))

    def _moved(
        self, memo: Restamped, bars: Sequence[Bar], now: datetime, overlaps: Overlaps | None
    ) -> tuple[tuple[Bar, ...], datetime] | None:
        """Intraday ``bars`` that are the memo's moved on (the very same objects from one
        of its bars on), re-stamped from the memo's origin — or None (stamp afresh) unless
        the bars in the sessions are in time order (then the first is the earliest), the
        origin is at or before the first, ``now`` is not before it, and the origin is
        within :data:`_ORIGIN_KEPT` of it."""
        origin, old = memo.origin, memo.bars
        if origin is None or not old or not memo.ordered:
            return None
        found = overlap(old, bars) if overlaps is None else overlaps.find(old, bars)
        if found is None:
            return None
        start, same = found  # rows the very same bars as the memo's
        flags = memo.flags
        if start == 0 and same == len(old) == len(bars):  # the very same series again
            at = flags.find(1)
            if at < 0 or not (origin <= bars[at].timestamp <= now):
                return None
            return memo.kept, origin + timedelta(seconds=self.open_seconds(origin, now))
        # The memo's restamped bars of those rows: the ones before them dropped, counted
        # by the flags (0: outside the sessions) of their rows; then the new bars'.
        before = start - flags.count(0, 0, start)
        inside = same - flags.count(0, start, start + same)
        added = bars[same:]
        flags = flags[start : start + same]
        flags += bytearray(map(self.in_session, map(_STAMP, added)))
        new = list(compress(added, flags[same:]))
        at = flags.find(1)
        if at < 0:
            return None
        own = bars[at].timestamp
        if not (origin <= own <= now and own - origin <= _ORIGIN_KEPT):
            return None
        if new:  # still in time order: the last kept bar in the sessions, then the new
            last = flags.rfind(1, 0, same)
            if not _ordered(new if last < 0 else [bars[last], *new]):
                return None
        # One pass over the kept re-stamped bars (each a memory fetch when the caches are
        # cold): the working list cut and extended in place, then the tuple handed back.
        work, last_kept = memo.work, memo.kept
        del work[before + inside :], work[:before]
        work += [self._stamp(bar, origin) for bar in new]
        kept = tuple(work)
        if overlaps is not None and inside and inside == min(len(last_kept) - before, len(kept)):
            # kept[:inside] are the very same objects as last_kept[before:]: what
            # overlap() would find, told to the quality memo of these bars.
            overlaps.tell(last_kept, kept, (before, inside))
        memo.remember(bars, flags, kept, origin, True, work)
        return kept, origin + timedelta(seconds=self.open_seconds(origin, now))

    def _index(self, origin: datetime, moment: datetime) -> int:
        """Sessions from ``origin``'s session day to ``moment``'s, by session date."""
        days, first, last = self._table.days, origin.date().toordinal(), moment.date().toordinal()
        return max(0, bisect_left(days, last) - bisect_left(days, first))


_ORIGIN_KEPT = timedelta(days=7)  # a memo's origin is renewed after this (short sums)
_STAMP = attrgetter("timestamp")


class Restamped:
    """What :meth:`SessionClock.session_time` made of one series the last time: the bars
    asked, per bar a flag (1: in the sessions, 0: outside, left out), the re-stamped bars
    handed back, whether the bars in the sessions were in time order, and the origin they
    were stamped from. A cache: the score is the same without it. One per series
    (symbol, interval), builder and thread."""

    __slots__ = ("bars", "flags", "kept", "ordered", "origin", "work")

    def __init__(self) -> None:
        self.bars: tuple[Bar, ...] = ()
        self.flags = bytearray()
        self.kept: tuple[Bar, ...] = ()
        self.work: list[Bar] = []  # kept, as a list the next call cuts in place
        self.ordered = False
        self.origin: datetime | None = None

    def remember(
        self,
        bars: Sequence[Bar],
        flags: bytearray,
        kept: tuple[Bar, ...],
        origin: datetime,
        ordered: bool = False,
        work: list[Bar] | None = None,
    ) -> None:
        self.bars, self.flags, self.kept = tuple(bars), flags, kept
        self.origin, self.ordered = origin, ordered
        self.work = list(kept) if work is None else work


_BAR_FIELDS = Bar.__slots__
# An unfrozen class of Bar's very layout: a re-stamped bar is stored into it and then
# made a Bar (``__class__`` assignment), without Bar's checks again — its values are a
# checked Bar's, and the new stamp is an aware datetime (an aware origin plus a timedelta).
_UnfrozenBar = type("_UnfrozenBar", (), {"__slots__": _BAR_FIELDS})
assert _BAR_FIELDS == ("timestamp", "open", "high", "low", "close", "volume"), _BAR_FIELDS
_new = object.__new__


def restamp(bar: Bar, timestamp: datetime) -> Bar:
    """``replace(bar, timestamp=timestamp)`` for a checked ``bar`` and an aware stamp,
    ~10x faster (no field checks again)."""
    made: Any = _new(_UnfrozenBar)
    made.timestamp = timestamp
    made.open, made.high, made.low = bar.open, bar.high, bar.low
    made.close, made.volume = bar.close, bar.volume
    made.__class__ = Bar
    return cast(Bar, made)


def _ordered(bars: Sequence[Bar]) -> bool:
    """The bars' stamps never go back."""
    stamps = list(map(_STAMP, bars))
    return all(map(le, stamps, stamps[1:]))
