"""match_one remembers the engine's answer for a class of facts the engine cannot tell
apart (`facts.classifier`): every compared number on the same side of every threshold
the rules compare it with, by more than a margin; bools and strings equal. Property:
over generated rules and facts with values at, one double around and at the margin of
every threshold, match_one (memo) finds exactly the rules `match` (the engine, fresh
session, every fact) finds; and a deliberately broken margin is caught by the same
property."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import RuleEngineError
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import (
    AllOf,
    AnyOf,
    Compare,
    CompiledRuleset,
    Not,
    RuleSpec,
    compile_rules,
    compiler,
)
from bastion.engine.rules.facts import classifier
from bastion.engine.rules.spec import Condition, Kind, Ref, parametrize

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NUMBERS = ("n0", "n1", "n2")
BOOLS = ("b0", "b1")
STRINGS = ("s0",)
STRING_VALUES = ("ACTIVE", "REDUCING", "HALTED", "x")
OPS = (">", ">=", "<", "<=", "==", "!=")


def _threshold(rng: random.Random) -> int | float | Decimal:
    base = rng.choice((0, 1, 5, 100, 0.1, 1e-7, 2.5e6, 123456.789, -3, -0.25))
    kind = rng.random()
    if kind < 0.3 and float(base).is_integer():
        return int(base)
    if kind < 0.6:
        return float(base)
    return Decimal(repr(float(base)))


def _condition(rng: random.Random, depth: int, thresholds: dict[str, list[Any]]) -> Condition:
    roll = rng.random()
    if depth >= 3 or roll < 0.5:
        field = rng.choice(NUMBERS + BOOLS + STRINGS)
        if field in NUMBERS:
            value = _threshold(rng)
            thresholds[field].append(value)
            return Compare(field, rng.choice(OPS), value)
        op = rng.choice(("==", "!="))
        if field in BOOLS:
            return Compare(field, op, rng.random() < 0.5)
        return Compare(field, op, rng.choice(STRING_VALUES[:3]))
    if roll < 0.65:
        return Not(_condition(rng, depth + 1, thresholds))
    children = [_condition(rng, depth + 1, thresholds) for _ in range(rng.randint(1, 3))]
    return AllOf(*children) if roll < 0.85 else AnyOf(*children)


def _near(threshold: Any) -> list[Any]:
    """Values at, one double around, just inside / outside the margin of, and far from a
    threshold, as Decimal, float and (when whole) int."""
    exact = Decimal(threshold) if not isinstance(threshold, Decimal) else threshold
    as_float = float(threshold)
    values: list[Any] = [
        exact,
        as_float,
        math.nextafter(as_float, math.inf),
        math.nextafter(as_float, -math.inf),
        Decimal(math.nextafter(as_float, math.inf)),
        Decimal(math.nextafter(as_float, -math.inf)),
        exact + abs(exact) * Decimal("1e-17"),  # rounds to the threshold as a double
        exact - abs(exact) * Decimal("1e-17"),
    ]
    for factor in ("0.5e-9", "1e-9", "2e-9", "1e-6", "0.5"):
        step = abs(exact) * Decimal(factor) or Decimal(factor)
        values += [exact + step, exact - step, float(exact + step), float(exact - step)]
    if as_float.is_integer():
        values += [int(as_float), int(as_float) + 1, int(as_float) - 1]
    return values


def _facts(
    rng: random.Random, thresholds: dict[str, list[Any]], count: int
) -> list[dict[str, Any]]:
    pools = {
        field: [v for t in found for v in _near(t)] + [0, 1, -1, Decimal(0), 7.5, 10**9]
        for field, found in thresholds.items()
    }
    facts = []
    for _ in range(count):
        fact: dict[str, Any] = {field: rng.choice(pools[field]) for field in NUMBERS}
        fact |= {field: rng.random() < 0.5 for field in BOOLS}
        fact |= {field: rng.choice(STRING_VALUES) for field in STRINGS}
        facts.append(fact)
    return facts


def _disagreements(ruleset: CompiledRuleset, facts: list[dict[str, Any]]) -> list[int]:
    """The facts for which match_one (memo) and match (the engine, every fact) differ."""
    engine = ruleset.match(facts)
    memo = [ruleset.match_one(fact) for fact in facts]
    return [index for index, (a, b) in enumerate(zip(engine, memo, strict=True)) if a != b]


def _ruleset(seed: int) -> tuple[CompiledRuleset, list[dict[str, Any]]]:
    rng = random.Random(seed)
    thresholds: dict[str, list[Any]] = {field: [] for field in NUMBERS}
    specs = [RuleSpec(f"r{n}", _condition(rng, 0, thresholds)) for n in range(rng.randint(2, 6))]
    # Every field compared by some rule (as the authority's facts are).
    specs += [
        RuleSpec("all_fields", AllOf(*(Compare(f, ">", 0) for f in NUMBERS))),
        RuleSpec("flags", AllOf(*(Compare(f, "==", True) for f in BOOLS))),
        RuleSpec("text", Compare(STRINGS[0], "==", "HALTED")),
    ]
    for field in NUMBERS:
        thresholds[field].append(0)
    return compile_rules(specs), _facts(rng, thresholds, 400)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_match_one_when_memo_answers_then_same_rules_as_the_engine(seed: int) -> None:
    """Generated rules (every operator, all / any / not) and facts with values at, one
    double around and at the margin of every threshold (Decimal, float, int): the
    memoised match_one agrees with the engine on every fact, and the memo is used."""
    ruleset, facts = _ruleset(seed)
    with ruleset:
        assert _disagreements(ruleset, facts) == []
        classify, answers = ruleset._memos[""]
        assert classify is not None and answers, "the memo holds answers"
        assert len(answers) < len(facts), "facts of one class share an answer"


@pytest.mark.parametrize("seed", range(8))
def test_property_when_margin_broken_then_it_finds_disagreements(seed: int) -> None:
    """The property above fails when the equivalence is broken on purpose: a classifier
    without its margin puts a value one double above a threshold (the same double as the
    threshold for the engine) in the class above it."""
    found = 0
    for offset in range(6):
        ruleset, facts = _ruleset(seed * 100 + offset)
        with ruleset:
            broken = classifier(
                ruleset.definition(),
                ruleset.field_keys,
                ruleset.field_kinds,
                margin=Decimal(0),
            )
            ruleset._memos[""] = (broken, {})
            found += len(_disagreements(ruleset, facts))
    assert found > 0


def test_match_one_when_value_unusable_then_engine_refuses_it_even_with_a_memo() -> None:
    """A value the engine refuses (a bool or a string for a number, NaN, an infinity,
    too large or too small for a double, missing) is never answered from the memo."""
    rules = compile_rules(
        [RuleSpec("over", Compare("x", ">", 100)), RuleSpec("f", Compare("b", "==", True))]
    )
    with rules:
        assert rules.match_one({"x": Decimal(150), "b": False}) == frozenset({"over"})
        assert rules.match_one({"x": Decimal(151), "b": False}) == frozenset({"over"})
        for bad in (
            True,
            "150",
            Decimal("NaN"),
            Decimal("Infinity"),
            float("inf"),
            Decimal("1E+400"),
            Decimal("1E-400"),
            None,
            2**70,
        ):
            with pytest.raises(RuleEngineError):
                rules.match_one({"x": bad, "b": False})
        with pytest.raises(RuleEngineError):
            rules.match_one({"b": False})
        with pytest.raises(RuleEngineError):
            rules.match_one({"x": Decimal(150), "b": 1})


def test_classifier_when_fields_compared_with_each_other_then_no_memo() -> None:
    """Rules comparing two fields of the fact (a `Ref`) have no constant to classify
    against: no memo, every fact goes to the engine."""
    rules = compile_rules(
        [RuleSpec("r", Compare("x", ">", Ref("y"))), RuleSpec("s", Compare("y", ">", 1))]
    )
    with rules:
        assert rules.match_one({"x": 2, "y": 1}) == frozenset({"r"})
        assert rules._memos[""][0] is None


def _shipped_facts(
    kinds: dict[str, Kind], thresholds: list[Any], rng: random.Random
) -> dict[str, Any]:
    pool = [v for t in thresholds for v in _near(t)] + [0, 1, 10**6]
    fact: dict[str, Any] = {}
    for path, kind in kinds.items():
        if kind is Kind.BOOL:
            value: Any = rng.random() < 0.3
        elif kind is Kind.NUMBER:
            value = rng.choice(pool)
        else:
            value = rng.choice(("ACTIVE", "REDUCING", "HALTED", "open", "close", "x"))
        fact[path] = value
    return fact


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_match_one_when_shipped_policies_then_memo_agrees_with_the_engine(seed: int) -> None:
    """Every action's ruleset of the shipped policies, facts around every threshold
    they hold: the memoised match_one agrees with the engine on every fact."""
    policies = compile_policy_set(load_policy_set([POLICIES]))
    rng = random.Random(seed)
    try:
        governing = policies.governing_order_rules("gen", "S000", "trend_following_v1")
        for action in ORDER_ACTIONS:
            ruleset = governing.rules.load(action)
            if ruleset.param_keys:
                continue
            thresholds = [
                value for rule in ruleset.definition().values() for value in _numbers(rule)
            ]
            kinds = dict(ruleset.field_kinds)
            facts = [_shipped_facts(kinds, thresholds, rng) for _ in range(150)]
            assert _disagreements(ruleset, facts) == [], action
    finally:
        policies.close()


def _numbers(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for key, value in node.items() if key != "i" for v in _numbers(value)]
    if isinstance(node, list):
        return [v for item in node for v in _numbers(item)]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return [node]
    return []


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_match_one_when_thresholds_are_parameters_then_memo_per_values_agrees(seed: int) -> None:
    """Thresholds carried as parameters (`spec.Ref`, one ruleset shared by policies
    whose thresholds differ): each set of values has its own memo, and match_one agrees
    with the engine for each, the sets taking turns on one ruleset."""
    rng = random.Random(seed)
    thresholds: dict[str, list[Any]] = {field: [0] for field in NUMBERS}
    specs = [RuleSpec(f"r{n}", _condition(rng, 0, thresholds)) for n in range(rng.randint(2, 5))]
    specs += [RuleSpec("all_fields", AllOf(*(Compare(f, ">", 0) for f in NUMBERS)))]
    specs += [RuleSpec("flags", AllOf(*(Compare(f, "==", True) for f in BOOLS)))]
    specs += [RuleSpec("text", Compare(STRINGS[0], "==", "HALTED"))]
    moved, values = parametrize(specs, None, "p")
    other = {name: value * 2 if value else 1 for name, value in values.items()}
    for field in NUMBERS:  # facts around the other values' thresholds too
        thresholds[field] += [value * 2 for value in thresholds[field] if value] + [1]
    facts = _facts(rng, thresholds, 300)
    with compile_rules(moved) as ruleset:
        texts = [ruleset.params(values), ruleset.params(other)]
        engine = [ruleset.match(facts, text) for text in texts]
        for index, fact in enumerate(facts):
            for which, text in enumerate(texts):
                assert ruleset.match_one(fact, text) == engine[which][index], (which, fact)
        assert all(ruleset._memos[text][0] is not None for text in texts)


def test_match_one_when_many_classes_then_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memo holds at most MEMO_SIZE answers per ruleset, every set of parameters'
    values together (cleared when full), and answers as the engine does throughout."""
    monkeypatch.setattr(compiler, "MEMO_SIZE", 8)
    rules = compile_rules(
        [RuleSpec(f"over{n}", Compare("x", ">", n)) for n in range(40)]
        + [RuleSpec("f", Compare("b", "==", True))]
    )
    with rules:
        facts = [{"x": Decimal(n) + Decimal("0.5"), "b": n % 3 == 0} for n in range(-1, 41)]
        for _ in range(2):
            assert _disagreements(rules, facts) == []
            assert sum(len(answers) for _, answers in rules._memos.values()) <= 8
