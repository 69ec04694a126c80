"""Trailing stops: the high-water mark of each position, kept in State between evaluations.

As LEAN's TrailingStopRiskManagementModel: a position's mark starts at its entry price
and follows the best price seen since (the highest for a long, the lowest for a short);
`position.drawdown_from_high_pct` is how far the price has fallen back from the mark,
% of the mark. A breaker on it (scope position, action close_risky or reduce_only) is the
trailing stop. The mark starts again from the entry price for a new position: a new id,
or the same id with another side (a flip) or another entry time (closed and re-opened).

Marks are kept only while some breaker compares the metric (`needs_marks`): a policy set
without a trailing stop pays nothing per position. A position the snapshot builder left
out for a cycle keeps its mark (it is still held; forgetting the mark would loosen the
stop); a position gone from the snapshot is closed and its mark is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from bastion.engine.state import HighWater

if TYPE_CHECKING:
    from bastion.engine.evaluation.compiled import CompiledPolicySet
    from bastion.engine.snapshot import Position

METRIC = "position.drawdown_from_high_pct"
HUNDRED = Decimal(100)
ZERO = Decimal(0)


def needs_marks(policies: CompiledPolicySet) -> bool:
    """True when an enabled breaker of any mode compares the trailing-stop metric."""
    return any(
        METRIC in metrics
        for compiled in policies.of_kind("BreakerPolicy")
        if compiled.breakers is not None
        for metrics in compiled.breakers.metrics.values()
    )


def track(
    positions: Iterable[Position],
    previous: Mapping[str, HighWater],
    keep: Iterable[str] = (),
) -> dict[str, HighWater]:
    """Every position's mark after this snapshot, by position id; `keep`: ids whose
    previous mark is carried over unchanged (positions left out of this snapshot)."""
    marks = {key: previous[key] for key in keep if key in previous}
    for position in positions:
        old = previous.get(position.id)
        same = (
            old is not None and old.side == position.side and old.entered_at == position.entered_at
        )
        start = old.price_usd if old is not None and same else position.entry_price_usd
        if position.side == "long":
            best = max(start, position.price_usd)
        else:
            best = min(start, position.price_usd)
        if same and old is not None and best == old.price_usd:
            marks[position.id] = old  # unchanged: the common case, no new object
        else:
            marks[position.id] = HighWater(best, position.side, position.entered_at)
    return marks


def drawdown_from_mark_pct(position: Position, mark: HighWater) -> Decimal:
    """How far the price fell back from the mark (rose, for a short), % of the mark,
    within 0..100 (a short can lose more than 100 % of its low: 100 is the cap, as for
    position.loss_pct)."""
    if mark.price_usd <= 0:  # not reachable from a valid snapshot: entries are positive
        return ZERO
    if position.side == "long":
        give_back = mark.price_usd - position.price_usd
    else:
        give_back = position.price_usd - mark.price_usd
    return min(HUNDRED, max(ZERO, give_back / mark.price_usd * HUNDRED))
