"""One build's overlaps (engine/indicators/overlap.py): where a series carries on the one
seen before, found once and shared by the memos of that series — and the quality score
through a shared answer is the report's, on the generated series of the incremental
tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bastion.engine.indicators import overlap as overlap_module
from bastion.engine.indicators.overlap import Overlaps, overlap
from bastion.engine.indicators.quality import Bar, Calendar, assess_bars, assess_score
from bastion.engine.indicators.quality_memo import QualityMemo
from tests.indicators.test_quality_incremental import _series, _windows

START = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def _bars(count: int) -> tuple[Bar, ...]:
    return tuple(
        Bar(START + timedelta(minutes=i), *(Decimal(100 + i),) * 4, Decimal(10))
        for i in range(count)
    )


def test_overlap_when_moved_on_then_where_and_how_many_are_the_same() -> None:
    bars = _bars(12)
    assert overlap(bars[:10], bars[1:11]) == (1, 9)  # a bar on
    assert overlap(bars[:10], bars[3:12]) == (3, 7)  # three on
    assert overlap(bars[:10], bars[:10]) == (0, 10)  # the same
    assert overlap(bars[:10], bars[2:6]) == (2, 4)  # a shorter answer
    assert overlap(bars[:10], bars[10:]) is None  # nothing in common
    assert overlap(bars[:10], ()) is None
    assert overlap(bars[:10], bars[5:], reach=5) is None  # beyond the reach


def test_overlap_when_an_equal_bar_is_another_object_then_none() -> None:
    bars = _bars(10)
    revised = list(bars[1:])
    revised[4] = Bar(*(getattr(revised[4], name) for name in Bar.__slots__))  # equal, new
    assert revised[4] == bars[5] and revised[4] is not bars[5]
    assert overlap(bars, revised) is None  # only the very same objects


def test_overlaps_when_tuples_then_found_once_and_lists_never_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []
    real = overlap_module.overlap
    monkeypatch.setattr(
        overlap_module, "overlap", lambda old, bars: calls.append(1) or real(old, bars)
    )
    bars = _bars(12)
    old, new = bars[:10], bars[1:11]
    overlaps = Overlaps()
    assert overlaps.find(old, new) == overlaps.find(old, new) == (1, 9)
    assert len(calls) == 1  # the second memo of the series shares the first one's pass
    listed = list(new)
    assert overlaps.find(old, listed) == (1, 9)
    listed[3] = bars[0]  # a list can change: never remembered
    assert overlaps.find(old, listed) is None
    assert len(calls) == 3


def test_assess_score_when_memos_share_overlaps_then_the_reports_score(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two quality memos of one series share each build's Overlaps (the second takes the
    first's answer): the report's score on every call, and the memos mostly took the
    shared answer rather than looking for themselves."""
    own = []
    real = QualityMemo._overlap
    monkeypatch.setattr(
        QualityMemo, "_overlap", lambda self, bars: own.append(1) or real(self, bars)
    )
    builds = wrong = 0
    for seed in range(120):
        rng = random.Random(seed)
        bars, step = _series(rng)
        first, second = QualityMemo(), QualityMemo()
        calendar = rng.choice((None, Calendar.ALWAYS, Calendar.WEEKDAYS))
        for start, end in _windows(rng, len(bars)):
            window = tuple(bars[start:end])
            now = window[-1].timestamp + timedelta(seconds=step) if window else None
            expected = assess_bars(window, interval_s=step, calendar=calendar, now=now)
            overlaps = Overlaps()  # one build
            builds += 1
            for memo in (first, second):
                got = assess_score(
                    window,
                    interval_s=step,
                    calendar=calendar,
                    now=now,
                    memo=memo,
                    overlaps=overlaps,
                )
                wrong += str(got) != str(expected.score_ratio)
    assert wrong == 0
    assert len(own) < builds // 2  # of 2 memos x builds: the shared answer, mostly
