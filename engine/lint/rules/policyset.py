"""BST604: two policies of a kind must not both claim the same accounts at equal rank."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.model import Policy


def _ancestors(policy: Policy, by_name: dict[str, Policy]) -> set[str]:
    seen: set[str] = set()
    current = policy
    while current.extends and current.extends not in seen and current.extends in by_name:
        seen.add(current.extends)
        current = by_name[current.extends]
    return seen


def check_set(policies: Sequence[Policy]) -> Iterator[Finding]:
    kinds = sorted({policy.kind for policy in policies})
    for kind in kinds:
        members = [p for p in policies if p.kind == kind and p.mode == "enforce"]
        by_name = {p.name: p for p in members}
        for first, second in itertools.combinations(members, 2):
            related = first.name in _ancestors(second, by_name) or second.name in _ancestors(
                first, by_name
            )
            if related or first.precedence != second.precedence:
                continue
            if first.scope.overlaps(second.scope):
                yield finding(
                    second,
                    "BST604",
                    "/scope" if "/scope" in second.positions.values else "",
                    f'{kind} "{second.name}" (scope: {second.scope.describe()}) overlaps '
                    f'"{first.name}" ({first.source}; scope: {first.scope.describe()}) at the '
                    f"same precedence {second.precedence}; narrow a scope, extend one from "
                    "the other, or set precedence",
                )
