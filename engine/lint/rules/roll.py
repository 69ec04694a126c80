"""BST201-BST206: roll triggers, the target band and urgency must agree."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.policy.model import Policy


def check(policy: Policy) -> Iterator[Finding]:
    spec: RollSpec = policy.spec
    if not spec.min_abs_delta < spec.target_abs_delta < spec.max_abs_delta:
        yield finding(
            policy,
            "BST201",
            "/spec/target_band",
            f"target band is min {spec.min_abs_delta}, target {spec.target_abs_delta}, max "
            f"{spec.max_abs_delta}; it must satisfy min < target < max",
        )
    if spec.normal_abs_delta >= spec.emergency_abs_delta:
        yield finding(
            policy,
            "BST202",
            "/spec/triggers/normal_abs_delta",
            f"normal roll trigger {spec.normal_abs_delta} is not below the emergency trigger "
            f"{spec.emergency_abs_delta}",
        )
    if spec.max_abs_delta >= spec.normal_abs_delta:
        yield finding(
            policy,
            "BST203",
            "/spec/target_band/max_abs_delta",
            f"band max {spec.max_abs_delta} reaches the roll trigger {spec.normal_abs_delta}: "
            "a rolled position would be due for another roll at once",
        )
    thresholds = [value for _, value in spec.urgency]
    if any(upper <= lower for upper, lower in itertools.pairwise(thresholds)):
        listed = ", ".join(f"{name} {value}" for name, value in spec.urgency)
        yield finding(
            policy,
            "BST204",
            "/spec/urgency",
            f"urgency thresholds are {listed}; they must fall from emergency to low",
        )
    if spec.min_dte_days >= spec.max_dte_days:
        yield finding(
            policy,
            "BST205",
            "/spec/candidates/min_dte_days",
            f"min_dte_days {spec.min_dte_days} is not below max_dte_days {spec.max_dte_days}",
        )
    urgency = dict(spec.urgency)
    for name, trigger, field in (
        ("emergency", spec.emergency_abs_delta, "emergency_abs_delta"),
        ("high", spec.normal_abs_delta, "normal_abs_delta"),
    ):
        if urgency[name] != trigger:
            # Point at whichever of the two the file wrote (the other is a default).
            where = f"/spec/urgency/{name}"
            if where not in policy.positions.values:
                where = f"/spec/triggers/{field}"
            yield finding(
                policy,
                "BST206",
                where,
                f"urgency.{name} is {urgency[name]} but triggers.{field} is {trigger}; "
                "use the same number so urgency and trigger agree",
            )
