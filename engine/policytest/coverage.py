"""Coverage: every breaker, escalation level, limit and protection of a policy set, and
which of them no test made fire.

What "fired" means per item:
- a breaker: it tripped (a `breaker` decision with outcome `trip`);
- an escalation level: a position reached it (level 0, the resting level every
  position starts at, is not a rule that fires and is not listed);
- a limit or protection: it blocked or shrank an order (a failed check in the order's
  trace), a regime override: it was applied; a history protection: it locked.

A breaker an overlay (`extends`) inherits unchanged is the same rule as its base's: the
base's item covers both, so an overlay lists only the breakers it changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bastion.engine.authority import controls
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.policytest.runner import FiredKey

KIND_ORDER = {"breaker": 0, "escalation": 1, "limit": 2, "protection": 3}


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # breaker | escalation | limit | protection
    policy: str
    rule: str
    counted_by: frozenset[FiredKey]  # any of these firing covers it

    @property
    def label(self) -> str:
        return f"{self.kind} {self.policy}/{self.rule}"


@dataclass(frozen=True, slots=True)
class Coverage:
    items: tuple[Item, ...]
    uncovered: tuple[Item, ...]

    @property
    def percent(self) -> float:
        if not self.items:
            return 100.0
        return 100.0 * (len(self.items) - len(self.uncovered)) / len(self.items)


def universe(compiled: CompiledPolicySet) -> list[Item]:
    """Every rule that can fire in the set, in a stable order."""
    items = [*_breakers(compiled), *_levels(compiled), *_authority(compiled)]
    return sorted(items, key=lambda item: (KIND_ORDER[item.kind], item.policy, item.rule))


def _breakers(compiled: CompiledPolicySet) -> Iterable[Item]:
    policies = {c.policy.name: c.policy for c in compiled.of_kind("BreakerPolicy")}
    for policy in policies.values():
        base = policies.get(policy.extends) if policy.extends else None
        inherited = {b.id: b for b in base.spec.breakers} if base is not None else {}
        for breaker in policy.spec.breakers:
            key = ("breaker", policy.name, breaker.id)
            if base is not None and inherited.get(breaker.id) == breaker:
                continue  # the base's item covers it
            aliases = {key}
            aliases |= {
                ("breaker", other.name, breaker.id)
                for other in policies.values()
                if other.extends == policy.name
                and any(b == breaker for b in other.spec.breakers if b.id == breaker.id)
            }
            yield Item("breaker", policy.name, breaker.id, frozenset(aliases))


def _levels(compiled: CompiledPolicySet) -> Iterable[Item]:
    for compiled_policy in compiled.of_kind("EscalationPolicy"):
        policy = compiled_policy.policy
        for level in policy.spec.levels[1:]:
            key = ("escalation", policy.name, level.name)
            yield Item("escalation", policy.name, level.name, frozenset({key}))


def _authority(compiled: CompiledPolicySet) -> Iterable[Item]:
    for compiled_policy in compiled.of_kind("LimitPolicy"):
        policy = compiled_policy.policy
        ids = [controls.TRADING_STATE.id]
        ids += [control.id for control in controls.LIMITS if control.rules(policy.spec)]
        for rule in dict.fromkeys(ids):
            yield Item("limit", policy.name, rule, frozenset({("limit", policy.name, rule)}))
    for compiled_policy in compiled.of_kind("ProtectionPolicy"):
        policy = compiled_policy.policy
        spec = policy.spec
        names = [name for name in spec.hierarchy if name in spec.enabled]
        names += [f"history.{entry.id}" for entry in spec.history if entry.enabled]
        for rule in names:
            key = ("protection", policy.name, rule)
            yield Item("protection", policy.name, rule, frozenset({key}))


def measure(compiled: CompiledPolicySet, fired: set[FiredKey]) -> Coverage:
    items = universe(compiled)
    uncovered = tuple(item for item in items if not item.counted_by & fired)
    return Coverage(tuple(items), uncovered)
