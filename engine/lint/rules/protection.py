"""BST401-BST405: the protection hierarchy must be complete and well ordered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.model import Policy
from bastion.engine.policy.vocabulary import PROTECTIONS


def check(policy: Policy) -> Iterator[Finding]:
    spec: ProtectionSpec = policy.spec
    hierarchy = list(spec.hierarchy)
    for name, count in Counter(hierarchy).items():
        if count > 1:
            index = len(hierarchy) - 1 - hierarchy[::-1].index(name)
            yield finding(
                policy,
                "BST402",
                f"/spec/hierarchy/{index}",
                f"{name} is listed {count} times; list each protection once",
            )
    missing = [name for name in PROTECTIONS if name not in hierarchy]
    if missing:
        yield finding(
            policy,
            "BST401",
            "/spec/hierarchy",
            f"the hierarchy leaves out {', '.join(missing)}; rank all five protections",
        )
    if hierarchy and hierarchy[0] != "core_asset_immunity":
        yield finding(
            policy,
            "BST403",
            "/spec/hierarchy/0",
            f"{hierarchy[0]} is ranked first; core_asset_immunity must be first because "
            "nothing may override it",
        )
    if "regime_override" in hierarchy:
        rank = hierarchy.index("regime_override")
        for name in sorted(spec.override_may_bypass):
            if name in hierarchy and hierarchy.index(name) < rank:
                written = "/spec/regime_override/may_bypass"
                where = (
                    written
                    if written in policy.positions.values
                    else f"/spec/hierarchy/{hierarchy.index(name)}"
                )
                yield finding(
                    policy,
                    "BST404",
                    where,
                    f"may_bypass lists {name}, which ranks above regime_override "
                    f"(so an override cannot bypass it)",
                )
    if "core_asset_immunity" in spec.enabled and not spec.core_assets:
        yield finding(
            policy,
            "BST405",
            "/spec/core_asset_immunity",
            "core_asset_immunity is enabled but core_assets is empty",
        )
