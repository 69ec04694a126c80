"""Parameters named after their rule, so that shapes of a kind share rulesets.

`compiled._members` moves the thresholds that differ between the policies of a kind
into parameters named after their rule and place (`spec.threshold_keys`), the same name
in every shape; `compiled.pair_of` joins a protection's side and a limit's side. What
must hold: a pair's shared ruleset, fed the pair's parameters, decides every fact as
the pair's own rules with the thresholds written in do — for any mix of shapes (rules
a policy disables), threshold types and counts (literal and parametrized kinds), and
for facts at, and one double either side of, every threshold. The property test
below checks it; `..._when_thresholds_stale_then_property_fails` shows that it catches
a pair given another policy's thresholds.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import RuleEngineError
from bastion.engine.evaluation import compiled
from bastion.engine.evaluation.compiled import (
    LIMIT_PREFIX,
    PROTECTION_PREFIX,
    compile_policy_set,
    pair_of,
)
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.model import Policy
from bastion.engine.rules import AllOf, AnyOf, Compare, Not, RuleSpec
from bastion.engine.rules.cache import RulesetCache, rules_key
from bastion.engine.rules.spec import (
    Number,
    Ref,
    parametrize,
    specialize,
    threshold_keys,
    thresholds,
)
from tests.conftest import ROOT

ACTIONS = ("up", "down")  # the field `s` known per action, as `authority.rules.specialized`
THRESHOLDS: list[Number] = [
    Decimal("0.1"),
    Decimal("10"),
    10,  # an int 10 and a Decimal 10 differ to the engine: never one parameter value
    Decimal("86400"),
    Decimal("-5.5"),
    Decimal("99999.99"),
    3,
]


@dataclass(frozen=True)
class _Spec:
    thresholds: tuple[Number, ...]  # four
    enabled: bool  # the rule a policy may disable (another shape)


@dataclass(frozen=True)
class _Policy:
    name: str
    spec: _Spec


def _protection_rules(spec: _Spec) -> list[RuleSpec]:
    t = spec.thresholds
    rules = [RuleSpec("p.a", AllOf(Compare("s", "==", "up"), Compare("x", ">=", t[0])))]
    if spec.enabled:
        rules.append(RuleSpec("p.b", Compare("y", "<", t[1])))
    rules.append(RuleSpec("p.c", Not(AnyOf(Compare("x", "<=", t[2]), Compare("y", ">", t[3])))))
    return rules


def _limit_rules(spec: _Spec) -> list[RuleSpec]:
    t = spec.thresholds
    rules = []
    if spec.enabled:  # only for `up`: an action that leaves it out shares across shapes
        rules.append(RuleSpec("l.a", AllOf(Compare("s", "==", "up"), Compare("x", ">", t[0]))))
    rules.append(RuleSpec("l.b", AllOf(Compare("s", "!=", "down"), Compare("y", ">=", t[1]))))
    rules.append(RuleSpec("l.c", AnyOf(Compare("z", "<", t[2]), Compare("z", "==", t[3]))))
    return rules


def _near(value: Number) -> Iterator[Any]:
    """The value, and the doubles either side of its own double."""
    nearest = float(value)
    yield value
    yield math.nextafter(nearest, -math.inf)
    yield math.nextafter(nearest, math.inf)
    yield Decimal(math.nextafter(nearest, math.inf))


def _mismatches(protections: Sequence[_Policy], limits: Sequence[_Policy]) -> int:
    """Facts (at / around every threshold of the pair) on which a pair's shared ruleset
    and parameters decide otherwise than its rules with the thresholds written in."""
    sides = [
        compiled._members(cast(Sequence[Policy], policies), rules_of, prefix, [])
        for policies, rules_of, prefix in (
            (protections, _protection_rules, PROTECTION_PREFIX),
            (limits, _limit_rules, LIMIT_PREFIX),
        )
    ]
    shared, written = RulesetCache(bound=256), RulesetCache(bound=256)
    wrong = 0
    try:
        for protection in protections:
            for limit in limits:
                specs, params = pair_of(sides[0][protection.name], sides[1][limit.name])
                own = [*_protection_rules(protection.spec), *_limit_rules(limit.spec)]
                values = [*thresholds(own), 0]
                for action in ACTIONS:
                    _, ruleset = shared.get(_specialized(specs, action))
                    text = ruleset.params({k: params[k] for k in ruleset.param_keys})
                    _, literal = written.get(_specialized(own, action))
                    for field in ("x", "y", "z"):
                        for threshold in values:
                            for value in _near(threshold):
                                fact = {"x": 0, "y": 0, "z": 0, field: value}
                                if ruleset.match_one(fact, text) != literal.match_one(fact):
                                    wrong += 1
    finally:
        shared.close()
        written.close()
    return wrong


def _specialized(specs: Sequence[RuleSpec], action: str) -> list[RuleSpec]:
    kept = []
    for spec in specs:
        condition = specialize(spec.condition, {"s": action})
        if condition is not False:
            kept.append(spec if condition is True else RuleSpec(spec.rule_id, condition))
    return kept


def _policies(prefix: str) -> st.SearchStrategy[list[_Policy]]:
    spec = st.builds(
        _Spec,
        st.tuples(*[st.sampled_from(THRESHOLDS)] * 4),
        st.booleans(),
    )
    return st.lists(spec, min_size=1, max_size=8).map(
        lambda specs: [_Policy(f"{prefix}{n}", s) for n, s in enumerate(specs)]
    )


@settings(max_examples=30, deadline=None, derandomize=True)
@given(protections=_policies("p"), limits=_policies("l"))
def test_pair_of_when_any_shapes_and_thresholds_then_decides_as_thresholds_written(
    protections: list[_Policy], limits: list[_Policy]
) -> None:
    """Any kinds (1-8 policies, two shapes each, thresholds of mixed types: literal or
    parametrized): every pair, every action, facts at / around every threshold."""
    assert _mismatches(protections, limits) == 0


def _many_distinct(prefix: str) -> list[_Policy]:
    """Six policies of one shape with six threshold sets (parametrized), and one of the
    other shape."""
    specs = [
        _Spec((Decimal(n), Decimal(n + 1), Decimal(-n), Decimal(n * 7)), True) for n in range(6)
    ]
    specs.append(_Spec((Decimal(2), Decimal(3), Decimal(-9), Decimal(5)), False))
    return [_Policy(f"{prefix}{n}", spec) for n, spec in enumerate(specs)]


def test_members_when_shapes_differ_by_a_disabled_rule_then_actions_without_it_share() -> None:
    """A limit that disables `l.a` (used by `up` only) shares its `down` ruleset with
    the others, and its thresholds are still its own (the property holds)."""
    protections, limits = _many_distinct("p"), _many_distinct("l")
    sides = [
        compiled._members(cast(Sequence[Policy], policies), rules_of, prefix, [])
        for policies, rules_of, prefix in (
            (protections, _protection_rules, PROTECTION_PREFIX),
            (limits, _limit_rules, LIMIT_PREFIX),
        )
    ]
    down = {
        rules_key(_specialized(pair_of(sides[0]["p0"], member)[0], "down"))
        for name, member in sides[1].items()
        if name
    }
    up = {
        rules_key(_specialized(pair_of(sides[0]["p0"], member)[0], "up"))
        for name, member in sides[1].items()
        if name
    }
    assert len(down) == 1 and len(up) == 2
    assert _mismatches(protections, limits) == 0


def test_property_when_thresholds_stale_then_property_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Broken on purpose: every policy of a parametrized shape gets the first one's
    parameter values (a shared ruleset serving stale thresholds). The check that the
    property test runs finds the wrong decisions."""
    real: Callable[..., Any] = parametrize
    first: dict[Any, dict[str, Number]] = {}

    def stale(*args: Any) -> tuple[list[RuleSpec], dict[str, Number]]:
        moved, values = real(*args)
        return moved, first.setdefault(rules_key(moved), values)

    monkeypatch.setattr(compiled, "parametrize", stale)
    assert _mismatches(_many_distinct("p"), _many_distinct("l")) > 0


def test_pair_of_when_both_sides_name_a_parameter_then_refused() -> None:
    """The same parameter name on both sides would give one side the other's
    threshold: refused, not merged."""
    member = compiled._Member(None, (RuleSpec("a", Compare("x", ">", 1)),), {"_p0": 1}, 1)
    with pytest.raises(RuleEngineError, match="named on both sides"):
        pair_of(member, member)


def test_compile_policy_set_when_grid_controls_disabled_then_reducing_actions_share(
    tmp_path: Path,
) -> None:
    """The bench grid at 10 × 10 (some limits forbid shorting or ignore drift, one
    protection disables whipsaw: three limit shapes, two protection shapes): every pair
    shares one ruleset for close, decrease and cancel (the rules those controls have
    hold for adding orders only); open still has one per combination of shapes."""
    sys.path.insert(0, str(ROOT / "bench" / "check"))
    try:
        bench = importlib.import_module("many_policies")
    finally:
        sys.path.remove(str(ROOT / "bench" / "check"))
    directory = bench.write_grid(tmp_path / "policies", 10)
    grid = compile_policy_set(load_policy_set([directory]))
    try:
        pairs = [grid.authority[key] for key in grid.authority if all(key)]
        for action, shapes in (("close", 1), ("decrease", 1), ("cancel", 1), ("open", 6)):
            found = {pair.rules.load(action).fingerprint for pair in pairs}
            assert len(found) == shapes, action
    finally:
        grid.close()


def test_threshold_keys_when_a_rule_is_absent_then_the_others_keep_their_names() -> None:
    """A threshold's key is its rule and place: the same with or without the rules
    before it; `parametrize` names each moved slot as told, and refuses a name twice."""
    both = [
        RuleSpec("a", AllOf(Compare("x", ">", 1), Compare("s", "==", "up"), Compare("y", "<", 2))),
        RuleSpec("b", Compare("x", "<=", Decimal(3))),
    ]
    assert threshold_keys(both) == [("a", 0), ("a", 1), ("b", 0)]
    assert threshold_keys(both[1:]) == [("b", 0)]
    moved, values = parametrize(both[1:], None, "_l", {0: "_l7"})
    assert moved == [RuleSpec("b", Compare("x", "<=", Ref("_l7")))]
    assert values == {"_l7": Decimal(3)}
    with pytest.raises(RuleEngineError, match="named twice"):
        parametrize(both, None, "_l", {0: "_l0", 1: "_l0"})
