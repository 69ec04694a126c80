"""An operator releases a history lock: it stops blocking at once, and is kept (with
who, when and why) until its own end, so that the trades that fired it do not lock
again at the next cycle. A newer triggering trade makes a new lock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from bastion.engine.authority.history.lock import HistoryLock


class LockNotFound(LookupError):
    """No active lock has that id; `active` lists the ones that do block now."""

    def __init__(self, lock_id: str, active: tuple[str, ...]) -> None:
        self.lock_id, self.active = lock_id, active
        listed = ", ".join(active) or "none"
        super().__init__(f"no active history lock {lock_id!r}; active locks: {listed}")


def release_lock(
    locks: Mapping[str, HistoryLock], lock_id: str, by: str, reason: str, now: datetime
) -> tuple[dict[str, HistoryLock], HistoryLock]:
    """The locks with `lock_id` released, and the released lock. Raises LockNotFound
    when no active lock has that id (already released, over, or never made)."""
    lock = locks.get(lock_id)
    if lock is None or not lock.active(now):
        active = tuple(sorted(key for key, held in locks.items() if held.active(now)))
        raise LockNotFound(lock_id, active)
    released = replace(lock, released_at=now, released_by=by, release_reason=reason)
    return {**locks, lock_id: released}, released


def active_locks(locks: Mapping[str, HistoryLock], now: datetime) -> list[HistoryLock]:
    return [lock for _, lock in sorted(locks.items()) if lock.active(now)]
