"""The session table's bisecting queries (market_calendar.SessionClock) give exactly
what the pandas queries they replaced gave (kept here as the reference), on random
moments over years of sessions, holidays and early closes, in several calendars."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bastion.adapters.market_calendar import SessionClock, _calendar

CALENDARS = ("XNYS", "XLON", "XTKS")


class Reference:
    """SessionClock before the table (pandas `schedule.loc` per query)."""

    def __init__(self, name: str) -> None:
        self._calendar = _calendar(name)

    def _sessions(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        first = (start - timedelta(days=1)).date().isoformat()
        last = (end + timedelta(days=1)).date().isoformat()
        table = self._calendar.schedule.loc[first:last]
        spans = zip(table["open"], table["close"], strict=True)
        return [(o.to_pydatetime(), c.to_pydatetime()) for o, c in spans]

    def open_seconds(self, start: datetime, end: datetime) -> float:
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
        day = start.date()
        return sum(1 for o, c in self._sessions(start, end) if o.date() >= day and c <= end)

    def index(self, origin: datetime, moment: datetime) -> int:
        days = {o.date() for o, _ in self._sessions(origin, moment)}
        return sum(1 for day in days if origin.date() <= day < moment.date())


def _moments(rng: random.Random, count: int) -> list[datetime]:
    """Random moments 2020-2026: whole minutes near session edges, and µs anywhere; in
    UTC and in fixed offsets (a bar's own zone)."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    zones = (UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9)))
    out = []
    for _ in range(count):
        moment = start + timedelta(minutes=rng.randrange(0, 7 * 365 * 24 * 60))
        if rng.random() < 0.3:
            moment += timedelta(microseconds=rng.randrange(0, 60_000_000))
        out.append(moment.astimezone(rng.choice(zones)))
    return out


@pytest.mark.parametrize("name", CALENDARS)
def test_session_table_when_queried_then_exactly_the_pandas_answers(name: str) -> None:
    rng = random.Random(name)
    clock, reference = SessionClock(name), Reference(name)
    moments = _moments(rng, 400)
    for moment in moments:
        assert clock.in_session(moment) == reference.in_session(moment), moment
    for _ in range(400):
        start = rng.choice(moments)
        end = start + timedelta(minutes=rng.choice((1, 30, 390, 1_440, 4_320, 20_000)))
        if rng.random() < 0.2:
            end = start - timedelta(minutes=5)  # end before start: 0
        assert clock.open_seconds(start, end) == reference.open_seconds(start, end), (start, end)
        assert clock.closed_sessions(start, end) == reference.closed_sessions(start, end)
        assert clock._index(start, end) == reference.index(start, end)


def test_session_table_when_at_session_edges_then_exactly_the_pandas_answers() -> None:
    """Every minute around the open and close of a half day, a holiday week and a
    normal week (XNYS)."""
    clock, reference = SessionClock("XNYS"), Reference("XNYS")
    for day in (datetime(2024, 11, 26, tzinfo=UTC), datetime(2024, 12, 24, tzinfo=UTC)):
        for minute in range(0, 3 * 24 * 60, 7):
            moment = day + timedelta(minutes=minute)
            assert clock.in_session(moment) == reference.in_session(moment), moment
            later = moment + timedelta(hours=29, seconds=0.5)
            assert clock.open_seconds(moment, later) == reference.open_seconds(moment, later)
