"""match_one leaves out bool and string fields whose value is none of the constants the
rules compare them with by equality (`facts.equality_only_fields`, `FactEncoder.sparse`):
the rules that hold stay the same."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import AllOf, AnyOf, Compare, Not, RuleSpec, compile_rules
from bastion.engine.rules.facts import FactEncoder, equality_only_fields
from bastion.engine.rules.spec import Kind

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_equality_only_fields_when_a_field_is_also_compared_otherwise_then_kept() -> None:
    """A bool or string compared only by equality is listed with its constants; one
    also compared with != or an ordering, or negated, is always sent."""
    ruleset = compile_rules(
        [
            RuleSpec("a", Compare("a", "==", True)),
            RuleSpec("b", AllOf(Compare("b", "==", True), Compare("n", ">", 1))),
            RuleSpec("c1", Compare("c", "==", True)),
            RuleSpec("c2", Not(Compare("c", "==", True))),
            RuleSpec("d", AnyOf(Compare("d", "==", False), Compare("a", "==", True))),
            RuleSpec("s1", Compare("s", "==", "HALTED")),
            RuleSpec("s2", Compare("s", "==", "REDUCING")),
            RuleSpec("t", Compare("t", "!=", "x")),
        ]
    )
    with ruleset:
        only = equality_only_fields(ruleset.definition(), ruleset.field_keys)
    assert only == {
        "a": frozenset({True}),
        "b": frozenset({True}),
        "d": frozenset({False}),
        "s": frozenset({"HALTED", "REDUCING"}),
    }


def test_sparse_encoder_when_value_not_compared_then_left_out_else_kept() -> None:
    """The sparse encoding drops exactly the listed fields holding none of their values."""
    encoder = FactEncoder({"a": Kind.BOOL, "b": Kind.BOOL, "n": Kind.NUMBER, "s": Kind.STRING})
    sparse = encoder.sparse({"a": frozenset({True}), "s": frozenset({"HALTED"})})
    keys = encoder.keys
    assert sparse(0, {"a": False, "b": False, "n": 1, "s": "ACTIVE"}) == (
        f'{{"i":0,"{keys["n"]}":1,"{keys["b"]}":false}}'
    )
    full = {"a": True, "b": True, "n": 1, "s": "HALTED"}
    assert sparse(0, full) == encoder.encode(0, full)


def _facts_for(kinds: dict[str, Kind], rng: random.Random) -> dict[str, Any]:
    fact: dict[str, Any] = {}
    for path, kind in kinds.items():
        if kind is Kind.BOOL:
            value: Any = rng.random() < 0.3
        elif kind is Kind.NUMBER:
            value = rng.choice((0, 1, 5, 10, 50, 99.5, 100, 100.5, 10**6, -1, 0.25))
        else:
            value = rng.choice(("ACTIVE", "REDUCING", "HALTED", "open", "close", "x"))
        parts = path.split(".")
        target = fact
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return fact


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_match_one_when_false_fields_left_out_then_same_rules_as_full_match(seed: int) -> None:
    """Over every action's ruleset of the shipped policies, match_one (sparse facts, a
    kept session) finds the same rules as match (every field sent, a fresh session)."""
    policies = compile_policy_set(load_policy_set([POLICIES]))
    rng = random.Random(seed)
    try:
        governing = policies.governing_order_rules("gen", "S000", "trend_following_v1")
        for action in ORDER_ACTIONS:
            ruleset = governing.rules.load(action)
            kinds = dict(ruleset.field_kinds)
            if ruleset.param_keys:  # thresholds carried as parameters: not this test's
                continue
            facts = [_facts_for(kinds, rng) for _ in range(40)]
            full = ruleset.match(facts)
            one = [ruleset.match_one(fact) for fact in facts]
            assert one == full, action
    finally:
        policies.close()
