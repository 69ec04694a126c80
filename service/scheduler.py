"""Run the service's cycle on APScheduler 3.x at the cadence the engine asks for.

The interval after each cycle is the engine's (the most escalated position's level
interval, in market seconds) divided by the feed's speed; when it changes the job is
rescheduled at once, so a new level takes effect within one tick. The scheduler runs
its job on its own thread; the main thread waits for a stop event (SIGINT/SIGTERM in
the CLI). Errors inside a cycle are logged and never stop the schedule. `run_soon` moves
the next run to now (a manual reset asked for over HTTP waits for a cycle).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from bastion.service.runner import Cycle, Service

log = structlog.get_logger("bastion.service")

JOB_ID = "cycle"


class CycleScheduler:
    def __init__(
        self, service: Service, *, on_cycle: Callable[[Cycle], None] | None = None
    ) -> None:
        self.service = service
        self.on_cycle = on_cycle
        self.interval_s: float | None = None
        self._scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1}, timezone="UTC"
        )

    def start(self) -> None:
        """Run one cycle now (so the first interval is the engine's), then schedule."""
        first = self._run()
        self.interval_s = first if first is not None else 1.0
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.interval_s,
            id=JOB_ID,
            misfire_grace_time=max(1, int(self.interval_s)),
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run_soon(self) -> None:
        """Run the cycle now instead of at the end of its interval; the interval then
        counts from this run. Never overlaps: while a cycle runs, APScheduler skips this
        run (max_instances=1) and the next one comes at its interval. From any thread."""
        # Not started (start() runs a cycle first) or stopped: there is no run to move.
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def _tick(self) -> None:
        interval = self._run()
        if interval is not None and interval != self.interval_s:
            log.info("cadence_changed", from_s=self.interval_s, to_s=interval)
            self.interval_s = interval
            self._scheduler.reschedule_job(JOB_ID, trigger="interval", seconds=interval)

    def _run(self) -> float | None:
        try:
            cycle = self.service.cycle()
        except Exception as error:
            log.exception("cycle_failed", error=f"{type(error).__name__}: {error}")
            return None
        if self.on_cycle is not None:
            try:  # a failing hook (a save, the console) never stops the cadence adapting
                self.on_cycle(cycle)
            except Exception as error:
                log.exception("after_cycle_failed", error=f"{type(error).__name__}: {error}")
        return self.service.wall_interval_s(cycle)


def wait_until(stop: threading.Event) -> None:
    """Block the main thread until `stop` is set (signals arrive on the main thread)."""
    while not stop.wait(0.5):
        pass
