"""Which history locks deny an order, and how the denial is worded.

Only opens and increases are gated (a lock stops new risk; closing is always allowed),
and only by the locks of the ProtectionPolicy that governs the order: the one policy
selected for its account type, symbol and strategy, whose `history:` made them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bastion.engine.authority.history.lock import HistoryLock


def blocking_locks(
    locks: Mapping[str, HistoryLock],
    policy: str,
    account_id: str,
    symbol: str,
    side: str,
    strategy_id: str,
    now: datetime,
) -> tuple[HistoryLock, ...]:
    """The active locks of `policy` covering the order, ordered by id (deterministic)."""
    if not locks:
        return ()
    return tuple(
        lock
        for _, lock in sorted(locks.items())
        if lock.policy == policy
        and lock.active(now)
        and lock.covers(account_id, symbol, side, strategy_id)
    )


def denial(lock: HistoryLock, now: datetime) -> str:
    """The reason an order is denied: the protection, the trades, when the lock ends."""
    left = int((lock.until - now).total_seconds())
    return (
        f"history protection {lock.protection} ({lock.method}) locks opens and increases on "
        f"{lock.describe()} until {lock.until.isoformat()} ({left} s from now): {lock.reason}; "
        f"triggered by trade(s) {', '.join(lock.trade_ids)}; an officer may release it "
        f"(lock {lock.id})"
    )
