"""cooldown: a pause after an exit, anchored at the exit time (freqtrade CooldownPeriod).

Fires on the latest exit in the lookback (any exit reason); the lock runs `lock_s`
from that exit (or to the next `unlock_at`). With `trade_limit` above 1 it waits for
that many exits in the lookback (freqtrade's cooldown has no trade limit: 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from bastion.engine.authority.history.base import Fired
from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.snapshot.model import ClosedTrade


def fire(entry: HistoryProtection, trades: Sequence[ClosedTrade]) -> Fired | None:
    if not trades:
        return None
    last = trades[-1]
    why = (
        f"cooldown after the {last.exit_reason} exit of {last.symbol} at "
        f"{last.closed_at.isoformat()} ({len(trades)} exit(s) in the last "
        f"{entry.lookback_s.normalize():f} s)"
    )
    return Fired((last,), why, (("exits", len(trades)),))
