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
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
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


class SessionClock:
    """Open-market time of one exchange calendar (``exchange_calendars`` name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calendar = _calendar(name)

    def _sessions(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """(open, close) of every session that overlaps [start, end], early closes included."""
        first = (start - timedelta(days=1)).date().isoformat()
        last = (end + timedelta(days=1)).date().isoformat()
        table = self._calendar.schedule.loc[first:last]
        spans = zip(table["open"], table["close"], strict=True)
        return [(o.to_pydatetime(), c.to_pydatetime()) for o, c in spans]

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds the exchange was open between ``start`` and ``end`` (0 when end ≤ start)."""
        if end <= start:
            return 0.0
        total = 0.0
        for opened, closed in self._sessions(start, end):
            overlap = (min(end, closed) - max(start, opened)).total_seconds()
            total += max(0.0, overlap)
        return total

    def in_session(self, moment: datetime) -> bool:
        return any(o <= moment < c for o, c in self._sessions(moment, moment))

    def closed_sessions(self, start: datetime, end: datetime) -> int:
        """Sessions that opened at or after ``start``'s session day and closed by ``end``."""
        day = start.date()
        return sum(1 for o, c in self._sessions(start, end) if o.date() >= day and c <= end)

    def session_time(
        self, bars: Sequence[Bar], interval_s: int, now: datetime
    ) -> tuple[list[Bar], datetime]:
        """``bars`` and ``now`` re-stamped on a clock without closures (module docstring)."""
        if not bars:
            return [], now
        origin = bars[0].timestamp
        if interval_s >= DAY_S:  # one day per session: a holiday is not a missing bar
            restamped = [
                replace(bar, timestamp=origin + timedelta(days=self._index(origin, bar.timestamp)))
                for bar in bars
            ]
            done = self.closed_sessions(origin, now)
            return restamped, origin + timedelta(days=done)
        kept = [bar for bar in bars if self.in_session(bar.timestamp)]
        if not kept:
            return [], now
        origin = kept[0].timestamp
        restamped = [
            replace(
                bar, timestamp=origin + timedelta(seconds=self.open_seconds(origin, bar.timestamp))
            )
            for bar in kept
        ]
        return restamped, origin + timedelta(seconds=self.open_seconds(origin, now))

    def _index(self, origin: datetime, moment: datetime) -> int:
        """Sessions from ``origin``'s session day to ``moment``'s, by session date."""
        days = {o.date() for o, _ in self._sessions(origin, moment)}
        return sum(1 for day in days if origin.date() <= day < moment.date())
