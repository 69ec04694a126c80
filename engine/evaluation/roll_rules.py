"""Roll triggers as rules: |delta| against the trigger and urgency thresholds.

The rules engine decides which thresholds a position's |delta| has reached; the
analysis of candidates and economics is computation (engine/roll).
"""

from __future__ import annotations

from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.rules import Compare, RuleSpec

ABS_DELTA_FIELD = "position.abs_delta"
NORMAL, EMERGENCY = "trigger:normal", "trigger:emergency"


def rule_specs(spec: RollSpec) -> list[RuleSpec]:
    rules = [
        RuleSpec(NORMAL, Compare(ABS_DELTA_FIELD, ">=", spec.normal_abs_delta)),
        RuleSpec(EMERGENCY, Compare(ABS_DELTA_FIELD, ">=", spec.emergency_abs_delta)),
    ]
    rules += [
        RuleSpec(f"urgency:{name}", Compare(ABS_DELTA_FIELD, ">=", threshold))
        for name, threshold in spec.urgency
    ]
    return rules


def urgency_of(spec: RollSpec, matched: frozenset[str]) -> str:
    """The most urgent level whose threshold the rules engine says is reached."""
    for name, _ in spec.urgency:  # most urgent first
        if f"urgency:{name}" in matched:
            return name
    return "none"
