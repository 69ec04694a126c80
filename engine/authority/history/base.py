"""What every history method is: `fire(entry, trades) -> Fired | None`.

`trades` are one scope's closed trades in the entry's lookback, in closing order (one
side's, with only_per_side), the scope holding at least `trade_limit` (the caller
groups, windows and counts). A method returns the trades that triggered it — the lock
ends `lock_s` after the last of them (or after the scope's last exit: `from_last_exit`),
and they are named in the lock — and why, in words with the values compared; None when
it does not fire. Methods are pure and O(len(trades)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.snapshot.model import ClosedTrade


@dataclass(frozen=True, slots=True)
class Fired:
    trades: tuple[ClosedTrade, ...]  # the triggering trades, in closing order
    why: str
    values: tuple[tuple[str, Decimal | int], ...] = ()
    # The lock runs from the scope's last exit, both sides (freqtrade's low_profit with
    # only_per_side), not from the last of `trades`.
    from_last_exit: bool = False


Method = Callable[[HistoryProtection, Sequence[ClosedTrade]], Fired | None]


def pct(value: Decimal) -> str:
    """A per-cent value as a reason shows it: at most 2 decimals, no exponent."""
    rounded = value.quantize(Decimal("0.01")) if value != value.to_integral() else value
    return f"{rounded.normalize():f} %" if rounded != 0 else "0 %"
