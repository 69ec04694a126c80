"""BST511: a breaker threshold or `when` value written as a fraction of its metric's unit.

Every number a breaker compares with a metric (`threshold`, each `when` leaf's
`value`) is read in the metric's unit (per cent for `_pct`, basis points for `_bps`,
ATRs for `_atr`) against the shipped default for that metric (units_scale). An
overlay's threshold is read against the metric its base gives the breaker: the
document a rule sees is already merged. Defaults are never slips: only numbers a
file wrote are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.lint.rules.units_scale import (
    is_slip,
    metric_scale,
    plain,
    slip_phrase,
    times_below,
)
from bastion.engine.policy.convert import dec
from bastion.engine.policy.model import Policy
from bastion.engine.policy.yamlsource import pointer_join


def _leaves(node: Any, pointer: str) -> Iterator[tuple[str, str, Any]]:
    """(pointer of the value, metric, value) for every comparison of a `when`."""
    if not isinstance(node, dict):
        return
    for key in ("all", "any"):
        for index, child in enumerate(node.get(key) or ()):
            yield from _leaves(child, pointer_join(pointer_join(pointer, key), index))
    if "not" in node:
        yield from _leaves(node["not"], pointer_join(pointer, "not"))
    if "metric" in node and "value" in node:
        yield pointer_join(pointer, "value"), str(node["metric"]), node["value"]


def compared_numbers(breaker: dict[str, Any], base: str) -> Iterator[tuple[str, str, Any]]:
    """(pointer, metric, number) for each number the breaker compares with a metric."""
    if "when" in breaker:
        yield from _leaves(breaker["when"], pointer_join(base, "when"))
    elif "metric" in breaker and "threshold" in breaker:
        yield pointer_join(base, "threshold"), str(breaker["metric"]), breaker["threshold"]


def check(policy: Policy) -> Iterator[Finding]:
    written = policy.positions.values
    for index, breaker in enumerate(policy.document["spec"]["breakers"]):
        base = f"/spec/breakers/{index}"
        for pointer, metric, raw in compared_numbers(breaker, base):
            scale = metric_scale(metric)
            if scale is None or pointer not in written or isinstance(raw, bool):
                continue
            unit, value = scale.unit, dec(raw)
            if not is_slip(value, unit, scale.reference):
                continue
            place = "threshold" if pointer.endswith("/threshold") else "when value"
            yield finding(
                policy,
                "BST511",
                pointer,
                f'breaker "{breaker["id"]}" {place} {plain(value)} against {metric} '
                f"({unit.name}): {slip_phrase(value, unit)}, "
                f"{times_below(value, scale.reference)} below {scale.describe()}; "
                f"write {plain(value * unit.factor)} if that is what you meant",
            )
