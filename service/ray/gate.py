"""The fence a partition closes while a policy version is swapped in everywhere.

Cycles and order requests pass through `Gate.passing()` (any number at once). A reload's
commit phase closes the gate on every partition (`close` waits for what is passing to
finish and holds new arrivals), swaps the version, and opens it again: while one
partition's gate is closed nothing evaluates there, and the head commits only once every
gate is closed — so no cycle or check anywhere runs between two partitions' swaps, on a
mix of versions. A closed gate reopens by itself after its lease (a head gone quiet
mid-reload), keeping the version it had: `expired` tells the commit that came too late.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class GateClosedTooLong(RuntimeError):
    """A request waited longer than its bound for a closed gate (never during a normal
    reload: the gate is closed for the milliseconds of a swap)."""


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._passing = 0
        self._closed_by: int | None = None  # the epoch of the reload holding it closed
        self._lease: threading.Timer | None = None
        self.expired: set[int] = set()  # epochs whose lease ran out before their commit

    @contextmanager
    def passing(self, wait_s: float = 30.0) -> Iterator[None]:
        """Pass (a cycle, a check): waits while the gate is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed_by is None, timeout=wait_s):
                raise GateClosedTooLong(f"the partition was fenced for more than {wait_s} s")
            self._passing += 1
        try:
            yield
        finally:
            with self._cond:
                self._passing -= 1
                self._cond.notify_all()

    def close(self, epoch: int, *, wait_s: float, lease_s: float) -> bool:
        """Close for `epoch` once nothing passes (False: not within `wait_s`, or closed
        by another reload). Reopens by itself after `lease_s` unless opened before."""
        with self._cond:
            if self._closed_by is not None and self._closed_by != epoch:
                return False
            self._closed_by = epoch  # new arrivals wait from now on
            if not self._cond.wait_for(lambda: self._passing == 0, timeout=wait_s):
                self._closed_by = None
                self._cond.notify_all()
                return False
            lease = threading.Timer(lease_s, self._expire, args=(epoch,))
            lease.daemon = True
            self._lease = lease
        lease.start()
        return True

    def open(self, epoch: int) -> bool:
        """Open again after `epoch`'s swap (or abort); False when it had already expired."""
        with self._cond:
            if self._closed_by != epoch:
                return False
            self._closed_by = None
            if self._lease is not None:
                self._lease.cancel()
                self._lease = None
            self._cond.notify_all()
            return True

    def held_by(self, epoch: int) -> bool:
        """Closed for `epoch` (and its lease not run out)."""
        with self._cond:
            return self._closed_by == epoch

    @property
    def closed(self) -> bool:
        return self._closed_by is not None

    def _expire(self, epoch: int) -> None:
        with self._cond:
            if self._closed_by == epoch:
                self.expired.add(epoch)
                self._closed_by = None
                self._lease = None
                self._cond.notify_all()
