"""max_drawdown: the drawdown of the lookback's cumulated profit (freqtrade MaxDrawdown).

The trades' `profit_pct` are summed in closing order, starting from 0 (the account
before the window's first trade); the drawdown is the largest fall of that sum from
its running peak. Fires when it is above `max_drawdown_pct`. freqtrade starts the
peak at the first trade's result instead of 0 (a first trade that loses 50 % is no
drawdown there); Bastion counts it, failing closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from bastion.engine.authority.history.base import Fired, pct
from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.snapshot.model import ClosedTrade


def drawdown_pct(trades: Sequence[ClosedTrade]) -> Decimal:
    """The largest fall of the cumulated profit_pct from its running peak (≥ 0)."""
    total = peak = worst = Decimal(0)
    for trade in trades:
        total += trade.profit_pct
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


def fire(entry: HistoryProtection, trades: Sequence[ClosedTrade]) -> Fired | None:
    drawdown = drawdown_pct(trades)
    if not trades or drawdown <= entry.max_drawdown_pct:
        return None
    why = (
        f"drawdown {pct(drawdown)} over {len(trades)} trade(s) in the last "
        f"{entry.lookback_s.normalize():f} s > {pct(entry.max_drawdown_pct)} allowed"
    )
    return Fired(tuple(trades), why, (("drawdown_pct", drawdown),))
