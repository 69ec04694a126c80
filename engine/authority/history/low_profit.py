"""low_profit: the lookback's summed profit is below a floor (freqtrade LowProfitPairs).

Sums the trades' `profit_pct` (freqtrade sums `close_profit` ratios: the same figure
in per cent) and fires when the sum is below `required_profit_pct`. Every trade of the
window triggers it; the lock ends `lock_s` after the scope's last exit, of either side
(freqtrade's calculate_lock_end over the pair's trades, with only_per_side too).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from bastion.engine.authority.history.base import Fired, pct
from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.snapshot.model import ClosedTrade


def fire(entry: HistoryProtection, trades: Sequence[ClosedTrade]) -> Fired | None:
    profit = sum((t.profit_pct for t in trades), Decimal(0))
    if not trades or profit >= entry.required_profit_pct:
        return None
    why = (
        f"profit {pct(profit)} over {len(trades)} trade(s) in the last "
        f"{entry.lookback_s.normalize():f} s < {pct(entry.required_profit_pct)} required"
    )
    return Fired(tuple(trades), why, (("profit_pct", profit),), from_last_exit=True)
