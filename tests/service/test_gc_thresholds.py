"""The collector's young threshold follows the book (service/runner.gc_thresholds): a
tick's own turnover (about one tracked object per position, freed by reference counting)
never triggers a young collection that walks the new snapshot for nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bastion.adapters.sources import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import GC_THRESHOLDS, GC_YOUNG_MAX, Service, gc_thresholds
from tests.conftest import POLICIES

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Whatever a test sets, the process gets its own thresholds back."""
    kept = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*kept)


def test_gc_thresholds_when_the_book_grows_then_young_follows_it_up_to_the_cap() -> None:
    assert gc_thresholds(0) == GC_THRESHOLDS
    assert gc_thresholds(-5) == GC_THRESHOLDS  # never below the base
    assert gc_thresholds(10_000) == (GC_THRESHOLDS[0] + 20_000, *GC_THRESHOLDS[1:])
    assert gc_thresholds(45_000) == (GC_THRESHOLDS[0] + 90_000, *GC_THRESHOLDS[1:])
    assert gc_thresholds(60_000) == (GC_YOUNG_MAX, *GC_THRESHOLDS[1:])
    young = [gc_thresholds(n)[0] for n in range(0, 60_001, 997)]
    assert young == sorted(young)  # monotone while the turnover fits
    # A book whose turnover does not fit keeps the base: ten short collections a tick
    # rather than one walking the whole snapshot (measured faster at 100,000).
    assert gc_thresholds(100_000) == GC_THRESHOLDS
    assert gc_thresholds(10**6) == GC_THRESHOLDS


def test_gc_thresholds_when_a_tick_turns_over_its_book_then_it_stays_below_young() -> None:
    """The measured turnover of a steady build (bench/eval/ingest.py: 10,196 tracked
    objects at 10,000 positions, ~one per position more) stays under the young threshold
    wherever it is raised."""
    for positions in (1_000, 10_000, 40_000, 45_000, 50_000, 60_000):
        turnover = positions + 200 + 1_818  # the build's own objects, the evaluation's
        assert turnover < gc_thresholds(positions)[0]


def _service(tune: bool) -> Service:
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    service.tune_gc = tune
    return service


@pytest.mark.usefixtures("thresholds")
def test_cycle_when_serve_tunes_the_collector_then_young_follows_the_snapshot() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    service = _service(tune=True)
    cycle = service.cycle()
    assert cycle.snapshot is not None
    assert gc.get_threshold() == gc_thresholds(len(cycle.snapshot.positions))
    assert gc.get_threshold()[0] > GC_THRESHOLDS[0]


@pytest.mark.usefixtures("thresholds")
def test_cycle_when_not_serve_then_the_collector_is_left_alone() -> None:
    """A test or a program embedding the Service keeps its own collector settings."""
    gc.set_threshold(700, 10, 10)
    _service(tune=False).cycle()
    assert gc.get_threshold() == (700, 10, 10)
