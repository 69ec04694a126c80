"""A PolicySet compiled into durable-rules rulesets, ready to evaluate.

Compiling is done once per policy-set version, off to the side (the reloader in
service/ swaps the result in atomically); `evaluate` only matches facts. Rulesets
are grouped so that every fact carries every field its ruleset compares:

- escalation: one ruleset per policy over `position.breach_atr`;
- roll: one ruleset per policy over `position.abs_delta`;
- breakers: one ruleset per (policy, scope) with every enabled breaker of that
  scope, plus one per breaker, used for a subject that lacks some metric (its
  other breakers are still evaluated; the ones it cannot feed are unevaluable);
- orders: per (protection, limit) pair and action, from one `RulesetCache` per set
  (`_OrderPairs`): a pair is built when an order first meets it, and pairs whose rules
  are equal share a ruleset. Policies of a kind whose rules differ only by thresholds
  (a "shape") share further: when more than LITERAL_VARIANTS threshold sets exist for
  a shape, the thresholds that differ move into the fact as parameters (`spec.Ref`),
  each named after its rule in every shape (so shapes an action cannot tell apart
  share its ruleset), and 50 × 50 limit × protection policies compile a few dozen
  rulesets, not 15,000.
  One pair of each combination of shapes is compiled at once, so a set the engine
  refuses is refused at reload, not at its first order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bastion.engine.authority.rules import (
    DEFAULT_ALLOWED,
    AuthorityRuleset,
    limit_rules,
    protection_rules,
    trading_state_rules,
)
from bastion.engine.errors import RuleEngineError
from bastion.engine.evaluation import breakers, escalation, roll_rules
from bastion.engine.policy.kinds.breakers import Breaker, BreakerSpec, metrics_of
from bastion.engine.policy.model import Policy, PolicySet
from bastion.engine.policy.select import governing
from bastion.engine.rules import CompiledRuleset, RuleSpec, compile_rules
from bastion.engine.rules.cache import RulesetCache, rules_key
from bastion.engine.rules.spec import Number, parametrize, threshold_keys, thresholds
from bastion.engine.rules.values import normalize


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
ORDER_RULESETS = 512  # compiled order rulesets kept per policy set (LRU; `RulesetCache`)
LITERAL_VARIANTS = 4  # threshold sets per shape kept in the rules (no parameters)
PROTECTION_PREFIX, LIMIT_PREFIX = "_p", "_l"  # parameter names of each side of a pair


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

    @property
    def order_rulesets(self) -> RulesetCache | None:
        """The cache of the order rulesets (None for a set built without `_OrderPairs`)."""
        return self.authority.cache if isinstance(self.authority, _OrderPairs) else None

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
        if isinstance(self.authority, _OrderPairs):
            self.authority.cache.close()
        else:
            for pair in self.authority.values():
                pair.rules.close()


def _name(policy: Policy | None) -> str:
    return "" if policy is None else policy.name


@dataclass(frozen=True, slots=True)
class _Member:
    """One policy's side of an order pair: its rules (varying thresholds moved into
    parameters), the parameters' values, and its shape group."""

    policy: Policy | None
    rules: tuple[RuleSpec, ...]
    params: Mapping[str, Number]
    group: int


class _OrderPairs(Mapping[tuple[str, str], AuthorityRules]):
    """Every (protection, limit) pair an order may meet, "" standing for none; each
    built when first looked up, every one's rulesets from one shared cache."""

    def __init__(self, policy_set: PolicySet) -> None:
        self.cache = RulesetCache(ORDER_RULESETS)
        self._protections = _members(
            policy_set.of_kind("ProtectionPolicy"), protection_rules, PROTECTION_PREFIX, []
        )
        self._limits = _members(
            policy_set.of_kind("LimitPolicy"),
            limit_rules,
            LIMIT_PREFIX,
            trading_state_rules(tuple(DEFAULT_ALLOWED.items())),
        )
        self._built: dict[tuple[str, str], AuthorityRules] = {}

    def __getitem__(self, key: tuple[str, str]) -> AuthorityRules:
        found = self._built.get(key)
        if found is None:
            protection, limits = self._protections[key[0]], self._limits[key[1]]
            specs, params = pair_of(protection, limits)
            rules = AuthorityRuleset(specs, self.cache, params)
            found = AuthorityRules(protection.policy, limits.policy, rules)
            self._built[key] = found
        return found

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((p, limit) for p in self._protections for limit in self._limits)

    def __len__(self) -> int:
        return len(self._protections) * len(self._limits)

    # By identity, and described without building every pair (thousands of them).
    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{len(self)} order pairs, {len(self._built)} built, {len(self.cache)} rulesets>"

    def compile_shapes(self) -> None:
        """Compile every action's rules for one pair of each combination of shapes:
        what the engine refuses is refused now (every other pair differs only by
        thresholds, each checked by `_members`); the cache keeps them."""
        firsts: dict[tuple[int, int], tuple[str, str]] = {}
        for name, protection in self._protections.items():
            for limit_name, limits in self._limits.items():
                firsts.setdefault((protection.group, limits.group), (name, limit_name))
        for key in firsts.values():
            self[key].rules.by_action  # noqa: B018  # compiles every action


def _members(
    policies: Sequence[Policy],
    rules_of: Callable[[Any], list[RuleSpec]],
    prefix: str,
    without: list[RuleSpec],
) -> dict[str, _Member]:
    """Each policy's side of a pair (and "": none configured, `without` its rules).

    Policies whose rules are equal but for their numeric thresholds form a group (a
    shape). When some group holds more than LITERAL_VARIANTS distinct threshold sets,
    every threshold whose value differs between the policies of the kind that have it
    moves into a parameter, in every policy, named after its `threshold_keys` key (its
    rule and place): the same name in every shape. Two shapes that differ only by a
    rule an action leaves out (a control one policy disables) then give that action
    equal rules, and share its ruleset. Otherwise every threshold stays in the rules.
    """
    written = {policy.name: rules_of(policy.spec) for policy in policies}
    typed: dict[str, tuple[tuple[str, Number], ...]] = {}
    groups: dict[Hashable, list[str]] = {}
    for name, specs in written.items():
        values = thresholds(specs)
        for value in values:  # what the engine refuses, refused now for all
            normalize(value, f"policy {name!r}: a threshold")
        typed[name] = tuple(_typed(value) for value in values)
        shape, _ = parametrize(specs, None, prefix)
        groups.setdefault(rules_key(shape), []).append(name)
    keys = {name: threshold_keys(specs) for name, specs in written.items()}
    named: dict[tuple[str, int], str] = {}
    if any(len({typed[n] for n in names}) > LITERAL_VARIANTS for names in groups.values()):
        seen: dict[tuple[str, int], set[tuple[str, Number]]] = {}
        for name in written:
            for key, as_typed in zip(keys[name], typed[name], strict=True):
                seen.setdefault(key, set()).add(as_typed)
        varying = sorted(key for key, values in seen.items() if len(values) > 1)
        named = {key: f"{prefix}{index}" for index, key in enumerate(varying)}
    members = {"": _Member(None, tuple(without), {}, 0)}
    by_name = {policy.name: policy for policy in policies}
    for group, names in enumerate(groups.values(), start=1):
        for name in names:
            slots = {slot: named[key] for slot, key in enumerate(keys[name]) if key in named}
            specs, params = (
                parametrize(written[name], None, prefix, slots) if slots else (written[name], {})
            )
            members[name] = _Member(by_name[name], tuple(specs), params, group)
    return members


def pair_of(protection: _Member, limits: _Member) -> tuple[list[RuleSpec], dict[str, Number]]:
    """A pair's rules (the protection's, then the limit's) and its parameters' values.
    The two sides name their parameters with different prefixes; a name both use would
    give one side the other's threshold, so it is refused."""
    shared = protection.params.keys() & limits.params.keys()
    if shared:
        raise RuleEngineError(f"parameters {sorted(shared)} named on both sides of a pair")
    return [*protection.rules, *limits.rules], {**protection.params, **limits.params}


def _typed(value: Number) -> tuple[str, Number]:
    """A threshold as the engine sees it: equal values of different types differ."""
    return ("d" if isinstance(value, Decimal) else type(value).__name__, value)


def _compile_authority(policy_set: PolicySet) -> _OrderPairs:
    pairs = _OrderPairs(policy_set)
    try:
        pairs.compile_shapes()
    except Exception:
        pairs.cache.close()
        raise
    return pairs


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
