"""The alert for records left out of a snapshot says what they are."""

from __future__ import annotations

from bastion.engine.snapshot.left_out import Unevaluable
from bastion.service.runner import _counted


def test_counted_when_positions_and_a_trade_are_left_out_then_each_kind_is_named() -> None:
    """A closed trade left out is called a trade, not a position (the alert's name stays)."""
    left_out = [
        Unevaluable("p-1", "gen-01", "SPY", "no price"),
        Unevaluable("p-2", "gen-01", "QQQ", "no price"),
        Unevaluable("t-9", "gen-01", "SPY", "closed before opened", kind="trade"),
    ]
    assert _counted(left_out) == "2 position(s) and 1 trade(s)"
