"""stoploss_guard: too many stop-losses in the lookback (freqtrade StoplossGuard).

Counts the trades that exited by a stop (`stop_loss`, or `liquidation`) with a profit
below `required_profit_pct` (default 0: losing stops; a trailing stop that locked in a
profit does not count) and fires when there are `max_stop_losses` of them or more —
freqtrade's `trade_limit` for this protection, its `required_profit` as per cent.
"""

from __future__ import annotations

from collections.abc import Sequence

from bastion.engine.authority.history.base import Fired, pct
from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.policy.vocabulary import STOP_EXITS
from bastion.engine.snapshot.model import ClosedTrade


def fire(entry: HistoryProtection, trades: Sequence[ClosedTrade]) -> Fired | None:
    floor = entry.required_profit_pct
    stops = tuple(t for t in trades if t.exit_reason in STOP_EXITS and t.profit_pct < floor)
    if len(stops) < entry.max_stop_losses:
        return None
    why = (
        f"{len(stops)} stop-loss exit(s) with profit < {pct(floor)} in the last "
        f"{entry.lookback_s.normalize():f} s (locks at {entry.max_stop_losses})"
    )
    return Fired(
        stops, why, (("stop_losses", len(stops)), ("max_stop_losses", entry.max_stop_losses))
    )
