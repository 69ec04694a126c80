"""PolicySet: what a policy directory must contain (policies/bastion.yaml).

Not a sixth policy kind: nothing evaluates it. It is the declaration the linter
checks a set against (every required kind present, every listed breaker, limit,
protection and escalation level present) so that an emptied or deleted file is an
error, never a quieter set. Without one, every policy kind is required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.vocabulary import ESCALATION_LEVELS, PROTECTIONS

KIND = "PolicySet"
FILE_STEM = "policyset"
TITLE = "Bastion PolicySet"
DESCRIPTION = (
    "What this policy set must contain: the policy kinds it requires and, per kind, the "
    "breakers, limits, protections and escalation levels that must stay in it. "
    "`bastion lint` reports anything missing as an error, so an emptied or deleted "
    "policy file cannot pass unnoticed."
)
# The five policy kinds, in the order the design lists them. Kept here (not imported
# from kinds/__init__) because that module imports this one.
POLICY_KINDS = (
    "EscalationPolicy",
    "RollPolicy",
    "BreakerPolicy",
    "ProtectionPolicy",
    "LimitPolicy",
)


def _items(description: str, item: s.Schema, example: list[str]) -> s.Schema:
    return s.array(description, item, unique=True, examples=[example])


SPEC_SCHEMA = s.obj(
    "The minimum this set must contain.",
    {
        "required_kinds": s.array(
            "Policy kinds that must each have at least one policy in enforce mode. "
            "Default: all five.",
            s.string("A policy kind.", enum=POLICY_KINDS),
            unique=True,
            default=list(POLICY_KINDS),
        ),
        "minimum": s.obj(
            "Per kind, items that must be present (and enabled) in an enforce-mode policy.",
            {
                "BreakerPolicy": _items(
                    "Breaker ids.",
                    s.string("A breaker id.", min_length=1),
                    ["portfolio_loss", "daily_loss_usd"],
                ),
                "LimitPolicy": _items(
                    "Limits, by their place in the spec (section.field).",
                    s.string("A limit, e.g. orders.max_notional_per_order_usd.", min_length=1),
                    ["orders.max_notional_per_order_usd", "kill_switch.max_daily_drawdown_pct"],
                ),
                "ProtectionPolicy": _items(
                    "Protections.",
                    s.string("A protection.", enum=PROTECTIONS),
                    ["core_asset_immunity"],
                ),
                "EscalationPolicy": _items(
                    "Escalation levels.",
                    s.string("An escalation level.", enum=ESCALATION_LEVELS),
                    ["preservation"],
                ),
            },
        ),
    },
)

EXAMPLE_SPEC: dict[str, Any] = {
    "required_kinds": list(POLICY_KINDS),
    "minimum": {"BreakerPolicy": ["portfolio_loss", "daily_loss_usd"]},
}

# The item each `minimum` entry names, as the guard keys it (engine/policy/guard.py).
ITEM_OF_KIND = {
    "BreakerPolicy": "breaker",
    "LimitPolicy": "limit",
    "ProtectionPolicy": "protection",
    "EscalationPolicy": "level",
}


@dataclass(frozen=True, slots=True)
class PolicySetSpec:
    required_kinds: tuple[str, ...]
    minimum: tuple[tuple[str, tuple[str, ...]], ...]  # (kind, item ids), frozen and sorted


def build(spec: Mapping[str, Any]) -> PolicySetSpec:
    minimum = spec.get("minimum", {})
    return PolicySetSpec(
        required_kinds=tuple(str(kind) for kind in spec["required_kinds"]),
        minimum=tuple(sorted((kind, tuple(map(str, ids))) for kind, ids in minimum.items())),
    )


DEFAULT = PolicySetSpec(required_kinds=POLICY_KINDS, minimum=())
