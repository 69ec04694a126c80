"""The APScheduler job follows the interval each cycle asks for."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bastion.service.runner import Cycle
from bastion.service.scheduler import JOB_ID, CycleScheduler

T0 = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


class StubService:
    """Returns the next interval from a script, like the engine after escalations."""

    def __init__(self, intervals: list[float]) -> None:
        self.intervals = intervals
        self.cycles = 0

    def cycle(self) -> Cycle:
        self.cycles += 1
        return Cycle(T0, (), Decimal(str(self.intervals.pop(0))), "sha256:x", True)

    def wall_interval_s(self, cycle: Cycle) -> float:
        return float(cycle.interval_s)


def _seconds(scheduler: CycleScheduler) -> float:
    job = scheduler._scheduler.get_job(JOB_ID)
    return float(job.trigger.interval.total_seconds())


def test_scheduler_when_cycle_asks_for_shorter_interval_then_job_rescheduled() -> None:
    """300 s -> 60 s -> 30 s: the job's trigger changes after the cycle that asked."""
    service = StubService([300, 60, 30, 30])
    scheduler = CycleScheduler(service)  # type: ignore[arg-type]
    scheduler.start()
    try:
        assert _seconds(scheduler) == 300
        scheduler._tick()
        assert _seconds(scheduler) == 60
        scheduler._tick()
        assert _seconds(scheduler) == 30
        scheduler._tick()
        assert _seconds(scheduler) == 30 and service.cycles == 4
    finally:
        scheduler.stop()


def test_scheduler_when_a_cycle_raises_then_schedule_survives() -> None:
    """An exception inside a cycle is logged; the job keeps its interval."""
    service = StubService([60])
    scheduler = CycleScheduler(service)  # type: ignore[arg-type]
    scheduler.start()
    try:
        service.intervals = []  # the next cycle raises IndexError
        scheduler._tick()
        assert _seconds(scheduler) == 60
    finally:
        scheduler.stop()
