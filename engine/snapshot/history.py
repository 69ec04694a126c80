"""How much trade history a snapshot keeps: only what the longest lookback needs.

The history protections look back over a window (``lookback_s``); the snapshot builders
keep the closed trades of the longest such window and drop the rest, so that a snapshot
does not grow with the account's age. The window comes from the policies (the longest
lookback of the loaded protections) and is passed in; :data:`DEFAULT_LOOKBACK_S` (7 days)
applies when the caller has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from bastion.engine.snapshot.model import ClosedTrade

DEFAULT_LOOKBACK_S = 7 * 86_400


def bounded(trades: Iterable[ClosedTrade], since: datetime) -> tuple[ClosedTrade, ...]:
    """The trades closed at or after ``since``, oldest close first."""
    return tuple(sorted((t for t in trades if t.closed_at >= since), key=_closed_at))


def cutoff(now: datetime, lookback_s: float = DEFAULT_LOOKBACK_S) -> datetime:
    """The oldest close a snapshot taken at ``now`` keeps for a lookback of ``lookback_s``."""
    if lookback_s < 0:
        raise ValueError(f"lookback_s must be ≥ 0, got {lookback_s}")
    return now - timedelta(seconds=lookback_s)


def _closed_at(trade: ClosedTrade) -> datetime:
    return trade.closed_at
