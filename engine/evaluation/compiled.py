"""A PolicySet compiled into durable-rules rulesets, ready to evaluate.

Compiling is done once per policy-set version, off to the side (the reloader in
service/ swaps the result in atomically); `evaluate` only matches facts. Rulesets
are grouped so that every fact carries every field its ruleset compares:

- escalation: one ruleset per policy over `position.breach_atr`;
- roll: one ruleset per policy over `position.abs_delta`;
- breakers: one ruleset per (policy, scope) with every enabled breaker of that
  scope, plus one per breaker, used for a subject that lacks some metric (its
  other breakers are still evaluated; the ones it cannot feed are unevaluable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bastion.engine.authority.rules import AuthorityRuleset, compile_authority
from bastion.engine.evaluation import breakers, escalation, roll_rules
from bastion.engine.policy.kinds.breakers import Breaker, BreakerSpec, metrics_of
from bastion.engine.policy.model import Policy, PolicySet
from bastion.engine.policy.select import governing
from bastion.engine.rules import CompiledRuleset, compile_rules


@dataclass(frozen=True, slots=True)
class CompiledBreakers:
    by_scope: Mapping[str, tuple[Breaker, ...]]
    scope_rules: Mapping[str, CompiledRuleset]
    single_rules: Mapping[str, CompiledRuleset]
    metrics: Mapping[str, tuple[str, ...]]  # breaker id -> metrics it compares


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: Policy
    rules: CompiledRuleset | None = None  # escalation / roll
    breakers: CompiledBreakers | None = None
    entry_rules: CompiledRuleset | None = None  # escalation, for positions at level 0
    change_rules: CompiledRuleset | None = None  # escalation, screens held positions


@dataclass(frozen=True, slots=True)
class AuthorityRules:
    """What governs one order: the ProtectionPolicy and LimitPolicy (None: not
    configured for it) and their rules compiled together (`authority.rules`)."""

    protection: Policy | None
    limits: Policy | None
    rules: AuthorityRuleset
    # The windows as timedeltas, once (the order hot path subtracts them from `now`).
    whipsaw_window: timedelta | None = field(init=False, default=None)
    submit_window: timedelta | None = field(init=False, default=None)
    modify_window: timedelta | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.protection is not None:
            days = float(self.protection.spec.whipsaw_window_days)
            object.__setattr__(self, "whipsaw_window", timedelta(days=days))
        if self.limits is not None:
            seconds = float(self.limits.spec.submit_rate.window_s)
            object.__setattr__(self, "submit_window", timedelta(seconds=seconds))
            modify_s = float(self.limits.spec.modify_rate.window_s)
            object.__setattr__(self, "modify_window", timedelta(seconds=modify_s))


GOVERNING_CACHE = 65_536  # (account type, symbol, strategy) keys kept per policy set


@dataclass(frozen=True, slots=True)
class CompiledPolicySet:
    policy_set: PolicySet
    policies: Mapping[tuple[str, str], CompiledPolicy] = field(default_factory=dict)
    authority: Mapping[tuple[str, str], AuthorityRules] = field(default_factory=dict)
    _governing: dict[tuple[str, str, str], AuthorityRules] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Caches filled on first use (the set never changes once compiled): policies by kind,
    # and which of them evaluate a subject at given coordinates (`passes.assign`).
    _by_kind: dict[str, tuple[CompiledPolicy, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    assignments: dict[tuple[object, ...], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The set's version, once: every order check names it (a hash over every member).
    _version: list[str] = field(default_factory=list, init=False, compare=False, repr=False)

    def governing_order_rules(
        self, account_type: str, symbol: str, strategy: str | None
    ) -> AuthorityRules:
        """The protection and limit policies that govern an order, and their rules."""
        key = (account_type, symbol, strategy or "")
        found = self._governing.get(key)
        if found is None:
            pick = {
                kind: governing(
                    self.policy_set.of_kind(kind),
                    account_type=account_type,
                    symbol=symbol,
                    strategy=strategy,
                )
                for kind in ("ProtectionPolicy", "LimitPolicy")
            }
            protection, limits = pick["ProtectionPolicy"], pick["LimitPolicy"]
            found = self.authority[(_name(protection), _name(limits))]
            if len(self._governing) >= GOVERNING_CACHE:  # bounded: symbols are unbounded
                self._governing.clear()  # rebuilt on demand, one scope match per key
            self._governing[key] = found
        return found

    @property
    def version(self) -> str:
        if not self._version:
            self._version.append(self.policy_set.version)
        return self._version[0]

    def of_kind(self, kind: str) -> tuple[CompiledPolicy, ...]:
        found = self._by_kind.get(kind)
        if found is None:
            found = tuple(c for (k, _), c in sorted(self.policies.items()) if k == kind)
            self._by_kind[kind] = found
        return found

    def close(self) -> None:
        """Free the C rulesets now rather than at garbage collection."""
        for compiled in self.policies.values():
            for ruleset in (compiled.rules, compiled.entry_rules, compiled.change_rules):
                if ruleset is not None:
                    ruleset.close()
            if compiled.breakers is not None:
                for ruleset in (
                    *compiled.breakers.scope_rules.values(),
                    *compiled.breakers.single_rules.values(),
                ):
                    ruleset.close()
        for pair in self.authority.values():
            pair.rules.close()


def _name(policy: Policy | None) -> str:
    return "" if policy is None else policy.name


def _compile_authority(policy_set: PolicySet) -> dict[tuple[str, str], AuthorityRules]:
    """Every (protection, limit) pair an order may meet, "" standing for none."""
    protections: list[Policy | None] = [None, *policy_set.of_kind("ProtectionPolicy")]
    limits: list[Policy | None] = [None, *policy_set.of_kind("LimitPolicy")]
    return {
        (_name(p), _name(limit)): AuthorityRules(
            p, limit, compile_authority(p.spec if p else None, limit.spec if limit else None)
        )
        for p in protections
        for limit in limits
    }


def _compile_breakers(spec: BreakerSpec) -> CompiledBreakers:
    enabled = [b for b in spec.breakers if b.enabled]
    by_scope: dict[str, list[Breaker]] = {}
    for breaker in enabled:
        by_scope.setdefault(breaker.scope, []).append(breaker)
    return CompiledBreakers(
        by_scope={scope: tuple(items) for scope, items in sorted(by_scope.items())},
        scope_rules={
            scope: compile_rules([breakers.rule_spec(b) for b in items])
            for scope, items in sorted(by_scope.items())
        },
        single_rules={b.id: compile_rules([breakers.rule_spec(b)]) for b in enabled},
        metrics={b.id: tuple(sorted(set(metrics_of(b.condition)))) for b in enabled},
    )


def compile_policy(policy: Policy) -> CompiledPolicy:
    if policy.kind == "EscalationPolicy":
        return CompiledPolicy(
            policy,
            rules=compile_rules(escalation.rule_specs(policy.spec)),
            entry_rules=compile_rules(escalation.rule_specs(policy.spec, reach_only=True)),
            change_rules=compile_rules(escalation.change_specs(policy.spec)),
        )
    if policy.kind == "RollPolicy":
        return CompiledPolicy(policy, rules=compile_rules(roll_rules.rule_specs(policy.spec)))
    if policy.kind == "BreakerPolicy":
        return CompiledPolicy(policy, breakers=_compile_breakers(policy.spec))
    return CompiledPolicy(policy)  # evaluated by can_execute (ProtectionPolicy, LimitPolicy)


def compile_policy_set(policy_set: PolicySet) -> CompiledPolicySet:
    return CompiledPolicySet(
        policy_set,
        {(p.kind, p.name): compile_policy(p) for p in policy_set.policies},
        _compile_authority(policy_set),
    )
