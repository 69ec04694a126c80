"""BST301-BST308: breaker ids unique; conditions that can fire, but not always.

Whether a condition can never / will always be true is decided exactly: a
condition built from threshold comparisons is constant between consecutive
thresholds, so evaluating it at every threshold, between each pair and beyond the
last, over each metric's possible range (from the metric catalogue), covers
every case.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.breakers import (
    AllOf,
    AnyOf,
    Breaker,
    BreakerSpec,
    Compare,
    Condition,
    Not,
    metrics_of,
)
from bastion.engine.policy.metrics import METRICS, VISIBLE_SCOPES, Metric
from bastion.engine.policy.model import Policy

MAX_COMBINATIONS = 20_000

OPERATORS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def holds(condition: Condition, values: dict[str, Decimal]) -> bool:
    if isinstance(condition, Compare):
        return OPERATORS[condition.op](values[condition.metric], condition.value)
    if isinstance(condition, AllOf):
        return all(holds(child, values) for child in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(holds(child, values) for child in condition.conditions)
    return not holds(condition.condition, values)


def _thresholds(condition: Condition, metric: str) -> set[Decimal]:
    if isinstance(condition, Compare):
        return {condition.value} if condition.metric == metric else set()
    if isinstance(condition, Not):
        return _thresholds(condition.condition, metric)
    return set().union(*(_thresholds(child, metric) for child in condition.conditions))


def sample_points(metric: Metric, thresholds: set[Decimal]) -> list[Decimal]:
    """One value in every region the thresholds cut the metric's range into."""
    low, high = metric.minimum, metric.maximum
    points = sorted(
        {low, *(t for t in thresholds if low <= t <= high)}
        | ({high} if high.is_finite() else set())
    )
    samples = set(points)
    samples.update((a + b) / 2 for a, b in itertools.pairwise(points))
    samples.add(points[-1] + 1 if not high.is_finite() else points[-1])
    if metric.integer:
        samples = {Decimal(math.floor(p)) for p in samples} | {
            Decimal(math.ceil(p)) for p in samples
        }
    return sorted(p for p in samples if low <= p <= high)


def truth_table(condition: Condition) -> tuple[bool, bool] | None:
    """(can be true, can be false), or None when too many combinations to try."""
    names = sorted(set(metrics_of(condition)))
    axes = [sample_points(METRICS[name], _thresholds(condition, name)) for name in names]
    if math.prod(len(axis) for axis in axes) > MAX_COMBINATIONS:
        return None
    seen: set[bool] = set()
    for combination in itertools.product(*axes):
        seen.add(holds(condition, dict(zip(names, combination, strict=True))))
        if len(seen) == 2:
            break
    return True in seen, False in seen


def _ranges(condition: Condition) -> str:
    parts = []
    for name in sorted(set(metrics_of(condition))):
        metric = METRICS[name]
        top = "unbounded" if not metric.maximum.is_finite() else f"at most {metric.maximum}"
        parts.append(f"{name} is at least {metric.minimum}, {top}")
    return "; ".join(parts)


def check(policy: Policy) -> Iterator[Finding]:
    spec: BreakerSpec = policy.spec
    ids = Counter(breaker.id for breaker in spec.breakers)
    seen: set[str] = set()
    items = policy.document["spec"]["breakers"]
    for index, breaker in enumerate(spec.breakers):
        base = f"/spec/breakers/{index}"
        if ids[breaker.id] > 1 and breaker.id in seen:
            yield finding(
                policy,
                "BST301",
                f"{base}/id",
                f'breaker id "{breaker.id}" is used {ids[breaker.id]} times',
            )
        seen.add(breaker.id)
        where = f"{base}/when" if "when" in items[index] else f"{base}/threshold"
        table = truth_table(breaker.condition)
        if table is not None:
            can_be_true, can_be_false = table
            if not can_be_true:
                yield finding(
                    policy,
                    "BST303",
                    where,
                    f'breaker "{breaker.id}" can never fire: its condition is false '
                    f"for every possible value ({_ranges(breaker.condition)})",
                )
            elif not can_be_false:
                yield finding(
                    policy,
                    "BST304",
                    where,
                    f'breaker "{breaker.id}" always fires: its condition is true '
                    f"for every possible value ({_ranges(breaker.condition)})",
                )
        yield from _equality(policy, breaker, breaker.condition, where)
        for name in sorted(set(metrics_of(breaker.condition))):
            if METRICS[name].scope not in VISIBLE_SCOPES[breaker.scope]:
                yield finding(
                    policy,
                    "BST309",
                    f"{base}/scope" if "scope" in items[index] else where,
                    f'breaker "{breaker.id}" has scope {breaker.scope}, which cannot see '
                    f"{name} (measured per {METRICS[name].scope}); use scope "
                    f"{METRICS[name].scope} or a metric measured per {breaker.scope}",
                )
        if breaker.reset == "auto" and breaker.cooldown_s == 0:
            yield finding(
                policy,
                "BST308",
                base,
                f'breaker "{breaker.id}" re-arms at once (reset auto, cooldown 0 s)',
            )


def _equality(
    policy: Policy, breaker: Breaker, condition: Condition, where: str
) -> Iterator[Finding]:
    if isinstance(condition, Compare):
        if condition.op in ("==", "!=") and not METRICS[condition.metric].integer:
            yield finding(
                policy,
                "BST307",
                where,
                f'breaker "{breaker.id}" compares {condition.metric} with '
                f"{condition.op}; a continuous metric rarely equals a number exactly",
            )
    elif isinstance(condition, Not):
        yield from _equality(policy, breaker, condition.condition, where)
    else:
        for child in condition.conditions:
            yield from _equality(policy, breaker, child, where)
