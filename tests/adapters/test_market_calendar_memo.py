"""Re-stamping a moved series from the memo's origin gives the quality scores that
re-stamping afresh gives (the reference: session_time without a memo, then a fresh
assessment), on generated equity series that cross closes, a holiday and a half day,
with pre- and post-market bars, gaps, revised, repeated and swapped bars, and `now`
before the last bar now and then; and the memo really is used."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.market_calendar import Restamped, SessionClock
from bastion.engine.indicators.overlap import Overlaps
from bastion.engine.indicators.quality import Bar, Calendar, assess_bars, assess_score
from bastion.engine.indicators.quality_memo import QualityMemo

START = datetime(2024, 11, 25, 13, 0, tzinfo=UTC)  # Monday, before the open (14:30 UTC)


def _minutes(rng: random.Random, count: int, clock: SessionClock, sessions: bool) -> list[Bar]:
    """One-minute bars from START, every minute (off-session too) or, ``sessions``, only
    in the sessions (as a venue that sends regular hours: a window then spans closes), a
    few missing."""
    bars, price, moment = [], Decimal(100), START
    while len(bars) < count:
        moment += timedelta(minutes=1)
        if rng.random() < 0.02 or (sessions and not clock.in_session(moment)):
            continue  # a missing bar (a gap), or outside the sessions
        price = max(Decimal(1), price + Decimal(rng.randint(-20, 20)) / 100)
        volume = Decimal(rng.choice((0, 100, 1_000, 5_000)))
        bars.append(
            Bar(moment, price, price + Decimal("0.05"), price - Decimal("0.05"), price, volume)
        )
    return bars


def _score(clock: SessionClock, bars: list[Bar], interval_s: int, now: datetime) -> Decimal:
    restamped, at = clock.session_time(bars, interval_s, now)
    if not restamped:
        return Decimal(0)
    return assess_bars(
        restamped, interval_s=interval_s, calendar=Calendar.ALWAYS, now=at
    ).score_ratio


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_session_time_when_a_series_moves_on_then_the_memo_scores_alike(
    seed: int, shared: bool
) -> None:
    """``shared``: each call is a build with its Overlaps, which session_time tells how
    the re-stamped bars carry on the last ones and the quality memo takes that from."""
    rng = random.Random(seed)
    clock = SessionClock("XNYS")
    # Thanksgiving week: ~3 days of every-minute bars, or ~8 sessions of regular hours.
    series = _minutes(rng, 9 * 24 * 60 // 3, clock, sessions=seed % 2 == 1)
    memo, quality = Restamped(), QualityMemo()
    reused = 0
    start, width = 0, 300
    while start + width < len(series):
        window = list(series[start : start + width])
        kind = rng.random()
        if kind < 0.05:  # a revised bar: equal values, a new object
            at = rng.randrange(width)
            window[at] = replace(window[at])
        elif kind < 0.08:  # two bars swapped: out of order
            at = rng.randrange(width - 1)
            window[at], window[at + 1] = window[at + 1], window[at]
        elif kind < 0.10:  # a repeated stamp
            at = rng.randrange(1, width)
            window[at] = replace(window[at], timestamp=window[at - 1].timestamp)
        elif kind < 0.14:  # the first bars swapped: a later one first (not the earliest)
            window[0], window[1] = window[1], window[0]
        last = window[-1].timestamp
        later = last + timedelta(seconds=rng.choice((59, 60, 61, 3_600, 20_000)))
        for now in (later, last - timedelta(seconds=30)):  # the last bar ahead of now too
            before = memo.origin
            overlaps = Overlaps() if shared else None
            restamped, at = clock.session_time(tuple(window), 60, now, memo, overlaps)
            reused += before is not None and memo.origin == before and bool(restamped)
            got = (
                Decimal(0)
                if not restamped
                else assess_score(
                    restamped,
                    interval_s=60,
                    calendar=Calendar.ALWAYS,
                    now=at,
                    memo=quality,
                    overlaps=overlaps,
                )
            )
            assert got == _score(clock, window, 60, now), (seed, start, window[0].timestamp, now)
        if kind < 0.14:  # the series goes on from the original bars
            window = list(series[start : start + width])
        start += rng.choice((1, 1, 1, 2, 3, 30, 400))
        width = rng.choice((300, 300, 300, 240))  # a shorter answer now and then
    assert reused > 10  # the memo's origin was kept and used


def test_session_time_when_daily_bars_are_the_same_then_the_same_objects() -> None:
    clock = SessionClock("XNYS")
    bars = [
        Bar(datetime(2024, 11, day, 5, tzinfo=UTC), *(Decimal(100),) * 4, Decimal(1000))
        for day in (18, 19, 20, 21, 22, 25, 26, 27, 29)
    ]
    memo = Restamped()
    first, now1 = clock.session_time(bars, 86_400, datetime(2024, 11, 30, tzinfo=UTC), memo)
    again, now2 = clock.session_time(bars, 86_400, datetime(2024, 12, 3, tzinfo=UTC), memo)
    assert again is first  # the quality memo sees the same window
    assert (again, now2) == clock.session_time(bars, 86_400, datetime(2024, 12, 3, tzinfo=UTC))
    assert now2 > now1


def _bar(moment: datetime) -> Bar:
    price = Decimal(100) + Decimal(moment.minute) / 10
    return Bar(moment, price, price + Decimal("0.05"), price - Decimal("0.05"), price, Decimal(100))


def _memo_and_fresh(calls: list[tuple[list[Bar], datetime]]) -> list[tuple[Decimal, Decimal]]:
    """(score with one memo over all the calls, score afresh) per call."""
    clock, memo, quality = SessionClock("XNYS"), Restamped(), QualityMemo()
    scores = []
    for bars, now in calls:
        restamped, at = clock.session_time(bars, 60, now, memo)
        got = assess_score(restamped, interval_s=60, calendar=Calendar.ALWAYS, now=at, memo=quality)
        scores.append((got, _score(clock, bars, 60, now)))
    return scores


# Monday 2024-11-25, in the session (XNYS opens 14:30 UTC): a minute's bar each.
_SESSION = [_bar(datetime(2024, 11, 25, 15, minute, tzinfo=UTC)) for minute in range(40)]


def test_session_time_when_a_new_bar_is_stamped_before_the_first_then_scored_afresh() -> None:
    early = _bar(datetime(2024, 11, 25, 14, 50, tzinfo=UTC))  # before every bar below
    calls = [
        (_SESSION[0:30], _SESSION[30].timestamp),
        ([*_SESSION[1:30], early], _SESSION[31].timestamp),  # moved on, the new bar out of order
    ]
    for got, fresh in _memo_and_fresh(calls):
        assert got == fresh


def test_session_time_when_the_series_was_out_of_order_then_not_moved_from_the_memo() -> None:
    # The same objects out of order, call after call (a venue that sends them so): once
    # moved on, the later of the pair is first and the earlier one follows it.
    swapped = [_SESSION[0], _SESSION[2], _SESSION[1], *_SESSION[3:30]]
    calls = [
        (swapped, _SESSION[30].timestamp),
        ([*swapped[1:], _SESSION[30]], _SESSION[31].timestamp),
    ]
    for got, fresh in _memo_and_fresh(calls):
        assert got == fresh


def test_session_time_when_the_same_series_comes_with_now_before_it_then_scored_afresh() -> None:
    moved = _SESSION[1:31]
    calls = [
        (_SESSION[0:30], _SESSION[30].timestamp),
        (moved, _SESSION[31].timestamp),  # the origin (the first call's) is kept
        (moved, _SESSION[0].timestamp),  # again, `now` before its first bar
    ]
    for got, fresh in _memo_and_fresh(calls):
        assert got == fresh


def test_session_time_when_the_new_bar_is_before_the_only_kept_one_then_scored_afresh() -> None:
    # Afresh, the new bar is stamped at the origin (the kept bar's: a repeated stamp);
    # from the memo's older origin it would come before it (an earlier stamp).
    early = _bar(datetime(2024, 11, 25, 15, 0, 30, tzinfo=UTC))
    calls = [
        (_SESSION[0:2], _SESSION[2].timestamp),
        ([*_SESSION[1:2], early], _SESSION[3].timestamp),
    ]
    for got, fresh in _memo_and_fresh(calls):
        assert got == fresh


def test_session_time_when_one_bar_comes_again_with_now_before_it_then_scored_afresh() -> None:
    calls = [
        (_SESSION[0:2], _SESSION[2].timestamp),
        (_SESSION[1:2], _SESSION[3].timestamp),  # moved on: the first call's origin kept
        (_SESSION[1:2], _SESSION[0].timestamp),  # again, `now` before it (not after `now`)
    ]
    for got, fresh in _memo_and_fresh(calls):
        assert got == fresh
