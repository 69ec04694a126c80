"""BST101-BST105: escalation levels must make a sensible ladder."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.escalation import EscalationSpec
from bastion.engine.policy.model import Policy
from bastion.engine.policy.vocabulary import ESCALATION_LEVELS


def check(policy: Policy) -> Iterator[Finding]:
    spec: EscalationSpec = policy.spec
    levels = spec.levels
    names = [level.name for level in levels]
    expected = [name for name in ESCALATION_LEVELS if name in names]
    if names != expected:
        yield finding(
            policy,
            "BST104",
            "/spec/levels",
            f"levels are {', '.join(names)}; list each once, in the order "
            f"{', '.join(ESCALATION_LEVELS)}",
        )
    if levels and levels[0].breach_atr != 0:
        yield finding(
            policy,
            "BST103",
            "/spec/levels/0/breach_atr",
            f"the first level ({levels[0].name}) starts at {levels[0].breach_atr} ATR; it must "
            "start at 0 so every position has a level",
        )
    for index in range(1, len(levels)):
        lower, upper = levels[index - 1], levels[index]
        if upper.breach_atr <= lower.breach_atr:
            yield finding(
                policy,
                "BST101",
                f"/spec/levels/{index}/breach_atr",
                f"{upper.name} starts at {upper.breach_atr} ATR, not above {lower.name} "
                f"({lower.breach_atr} ATR); thresholds must rise with the level",
            )
        if upper.interval_s >= lower.interval_s:
            yield finding(
                policy,
                "BST102",
                f"/spec/levels/{index}/interval_s",
                f"{upper.name} polls every {upper.interval_s} s, not more often than "
                f"{lower.name} ({lower.interval_s} s); intervals must shrink as risk rises",
            )
    gaps = [b.breach_atr - a.breach_atr for a, b in itertools.pairwise(levels)]
    positive = [gap for gap in gaps if gap > 0]
    if positive and spec.hysteresis_atr >= min(positive):
        yield finding(
            policy,
            "BST105",
            "/spec/deescalation/hysteresis_atr",
            f"hysteresis_atr {spec.hysteresis_atr} is not below the smallest gap between "
            f"thresholds ({min(positive)} ATR): a position could never step down",
        )
