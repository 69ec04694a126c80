"""Time for the source plumbing, injected so that tests never sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps and staleness; monotonic time for intervals."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...


class SystemClock:
    """The real clock. Only the service wiring should construct one."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, start: datetime | None = None, monotonic_s: float = 0.0) -> None:
        self._now = start or datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
        if self._now.utcoffset() is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._monotonic_s = monotonic_s

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._monotonic_s += seconds


class ScaledClock:
    """Market time that runs ``speed`` times faster than ``base`` (sim and replay).

    ``now()`` starts at ``start`` (default: the base clock's now) and advances
    ``speed`` seconds per base second; ``monotonic()`` is market seconds since creation.
    With a :class:`ManualClock` as ``base`` a test moves market time without sleeping.
    """

    def __init__(self, base: Clock, speed: float = 1.0, start: datetime | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.base = base
        self.speed = speed
        self.start = start or base.now()
        if self.start.utcoffset() is None:
            raise ValueError("ScaledClock needs a timezone-aware start time")
        self._origin_s = base.monotonic()

    def elapsed_wall_s(self) -> float:
        """Base (wall) seconds since the clock was created."""
        return self.base.monotonic() - self._origin_s

    def monotonic(self) -> float:
        return self.elapsed_wall_s() * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())
