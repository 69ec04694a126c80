"""BST501: a `_pct` field given a ratio (0.05 where 5 was meant).

A value between 0 and 1 is only suspicious when ×100 lands nearer the field's
usual size (its schema default) than the value itself: 0.05 for a 5 % per-asset
cap is a slip, 0.5 for a 1 % risk-per-trade budget is a deliberate half per cent.
Without a default (per-strategy caps) every value below 1 is reported. Numbers
compared with a metric are units_metrics (BST511), values in ATRs units_atr (BST512).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.lint.rules.units_scale import PER_CENT, plain, slip_phrase
from bastion.engine.policy.convert import dec
from bastion.engine.policy.kinds import KINDS
from bastion.engine.policy.model import Policy
from bastion.engine.policy.yamlsource import pointer_join


def _pct_values(node: Any, pointer: str, in_pct_map: bool = False) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = pointer_join(pointer, key)
            if (key.endswith("_pct") or in_pct_map) and not isinstance(value, dict | list):
                yield child, value
            yield from _pct_values(value, child, in_pct_map=key.endswith("_pct"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _pct_values(value, pointer_join(pointer, index))


def default_at(schema: dict[str, Any], tokens: list[str]) -> Any:
    for token in tokens:
        properties = schema.get("properties", {})
        if token in properties:
            schema = properties[token]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        elif isinstance(schema.get("items"), dict):
            schema = schema["items"]
        else:
            return None
    return schema.get("default")


def looks_like_slip(value: float, usual: Any) -> bool:
    if not 0 < value < 1:
        return False
    if not isinstance(usual, int | float) or isinstance(usual, bool) or usual <= 0:
        return True
    return abs(math.log(value * 100 / usual)) < abs(math.log(value / usual))


def check(policy: Policy) -> Iterator[Finding]:
    written = policy.positions.values  # only what a file wrote: defaults are never slips
    spec_schema = KINDS[policy.kind].spec_schema
    for pointer, value in _pct_values(policy.document.get("spec"), "/spec"):
        if pointer not in written or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        usual = default_at(spec_schema, pointer.split("/")[2:])
        if looks_like_slip(float(value), usual):
            field, number = pointer.rsplit("/", 1)[-1], dec(value)
            yield finding(
                policy,
                "BST501",
                pointer,
                f"{field} is {plain(number)}: _pct fields are per cent: "
                f"{slip_phrase(number, PER_CENT)}; write {plain(number * 100)} if that is "
                f"what you meant",
            )
