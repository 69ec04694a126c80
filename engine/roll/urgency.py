"""How urgent a roll is, and which rolls each urgency accepts. Two small pure functions.

The rules engine evaluates the same thresholds as triggers; these helpers exist so the
roll analysis can rank candidates on its own and explain them.
"""

from __future__ import annotations

from decimal import Decimal

from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll.model import NO_URGENCY


def classify_urgency(abs_delta: Decimal, spec: RollSpec) -> str:
    """The first urgency (most urgent first) whose minimum |delta| is reached, else none.

    A threshold is reached at equality: |Δ| 0.50 against ``high: 0.50`` is high.
    """
    for name, min_abs_delta in spec.urgency:
        if abs_delta >= min_abs_delta:
            return name
    return NO_URGENCY


def accepts(urgency: str, *, in_band: bool, net_credit_usd: Decimal, spec: RollSpec) -> bool:
    """The acceptance matrix (net credit per share; negative is a debit).

    - emergency: any in-band candidate, whatever it costs;
    - high: in band and net ≥ −max_net_debit_usd;
    - medium, low (and any other name): in band and net ≥ min_net_credit_usd;
    - none: nothing — the position needs no roll.
    """
    if not in_band or urgency == NO_URGENCY:
        return False
    if urgency == "emergency":
        return True
    if urgency == "high":
        return net_credit_usd >= -spec.max_net_debit_usd
    return net_credit_usd >= spec.min_net_credit_usd
