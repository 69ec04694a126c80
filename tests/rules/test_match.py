"""CompiledRuleset.match: boundary semantics as written, combinators, determinism, errors."""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import (
    AllOf,
    AnyOf,
    Compare,
    CompiledRuleset,
    Condition,
    Not,
    RuleSpec,
    _native,
    compile_rules,
)
from bastion.engine.rules.compiler import CHUNK_SIZE

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
TICK = Decimal("0.01")


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("threshold", [Decimal("2.31"), Decimal("0"), Decimal("-1.5")])
def test_match_when_value_at_below_above_threshold_then_exactly_as_written(
    op: str, threshold: Decimal
) -> None:
    """At the threshold, one tick below and one tick above: >= and > differ only at it."""
    values = [threshold - TICK, threshold, threshold + TICK]
    with compile_rules([RuleSpec("rule", Compare("breach_atr", op, threshold))]) as rules:
        got = rules.match([{"breach_atr": value} for value in values])
    assert [bool(hit) for hit in got] == [OPS[op](value, threshold) for value in values]


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_match_when_float_one_ulp_from_threshold_then_boundary_exact(op: str) -> None:
    """Floats are written so the engine reads them back bit for bit: one ulp counts."""
    threshold = 1e-05
    values = [threshold * (1 - 2**-52), threshold, threshold * (1 + 2**-52)]
    with compile_rules([RuleSpec("rule", Compare("ratio", op, threshold))]) as rules:
        got = rules.match([{"ratio": value} for value in values])
    assert [bool(hit) for hit in got] == [OPS[op](value, threshold) for value in values]


def test_match_when_int_and_decimal_and_float_mixed_then_compared_as_numbers() -> None:
    """An int fact against a Decimal threshold compares numerically, both ways."""
    specs = [
        RuleSpec("ge2", Compare("n", ">=", Decimal("2"))),
        RuleSpec("gt2", Compare("n", ">", 2)),
    ]
    with compile_rules(specs) as rules:
        got = rules.match([{"n": 2}, {"n": 2.0}, {"n": Decimal("2.000001")}, {"n": 1}])
    assert got == [{"ge2"}, {"ge2"}, {"ge2", "gt2"}, set()]


def test_match_when_all_any_not_combined_then_each_rule_reported_per_fact() -> None:
    """Combinators over numbers, bools and strings; every rule that holds is reported."""
    specs = [
        RuleSpec("crash", AllOf(Compare("drop_pct", ">=", 5), Compare("vol_ratio", ">", 3))),
        RuleSpec("either", AnyOf(Compare("drop_pct", ">=", 5), Compare("manual", "==", True))),
        RuleSpec("not_option", Not(Compare("asset_class", "==", "option"))),
        RuleSpec(
            "neither", Not(AnyOf(Compare("drop_pct", ">=", 5), Compare("manual", "==", True)))
        ),
    ]
    facts = [
        {"drop_pct": 5, "vol_ratio": 3.01, "manual": False, "asset_class": "equity"},
        {"drop_pct": 4.99, "vol_ratio": 9, "manual": True, "asset_class": "option"},
        {"drop_pct": 0, "vol_ratio": 3, "manual": False, "asset_class": "option"},
    ]
    with compile_rules(specs) as rules:
        assert rules.match(facts) == [
            {"crash", "either", "not_option"},
            {"either"},
            {"neither"},
        ]


def test_match_when_string_equality_then_exact_bytes_including_escapes() -> None:
    """Strings match only when equal: no prefix match, quotes and non-ASCII escaped alike."""
    name = 'regime "crash" é$'
    with compile_rules([RuleSpec("is", Compare("regime", "==", name))]) as rules:
        got = rules.match(
            [{"regime": name}, {"regime": name[:-1]}, {"regime": name + "x"}, {"regime": ""}]
        )
    assert got == [{"is"}, set(), set(), set()]


def test_match_when_nested_field_path_then_read_from_nested_mapping() -> None:
    """A dotted field path reads nested mappings."""
    with compile_rules([RuleSpec("wide", Compare("market.spread_bps", ">", 50))]) as rules:
        assert rules.match([{"market": {"spread_bps": 51}}, {"market": {"spread_bps": 50}}]) == [
            {"wide"},
            set(),
        ]


def test_match_when_same_input_twice_then_same_output() -> None:
    """Determinism: same rules and facts give the same result, across instances too."""
    specs = [RuleSpec(f"r{k}", Compare(f"m{k % 4}", ">=", k)) for k in range(12)]
    facts = [{f"m{j}": (i * 7 + j * 3) % 13 for j in range(4)} for i in range(600)]
    with compile_rules(specs) as first, compile_rules(specs) as second:
        assert first.match(facts) == first.match(facts) == second.match(facts)
        assert first.fingerprint == second.fingerprint


def test_match_when_more_facts_than_a_chunk_then_same_as_one_by_one() -> None:
    """Chunking is invisible: a big batch equals matching each fact alone."""
    specs = [RuleSpec("hi", Compare("x", ">", 50)), RuleSpec("lo", Compare("x", "<=", 10))]
    facts = [{"x": i % 100} for i in range(CHUNK_SIZE * 2 + 7)]
    with compile_rules(specs) as rules:
        assert rules.match(facts) == [rules.match_one(fact) for fact in facts]


def test_match_when_no_facts_then_empty_list() -> None:
    """An empty batch is an empty answer, not an error."""
    with compile_rules([RuleSpec("r", Compare("x", ">", 1))]) as rules:
        assert rules.match([]) == []


def test_match_when_called_from_many_threads_then_every_result_correct() -> None:
    """Thread safety: concurrent callers on one ruleset each get their own correct answer."""
    rules = compile_rules([RuleSpec("hi", Compare("x", ">=", 50))])
    errors: list[str] = []

    def worker(offset: int) -> None:
        for round_ in range(50):
            facts = [{"x": (offset + round_ + i) % 100} for i in range(20)]
            expected = [{"hi"} if fact["x"] >= 50 else set() for fact in facts]
            if rules.match(facts) != expected:
                errors.append(f"thread {offset} round {round_}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rules.close()
    assert errors == []


def test_compile_when_definition_copy_mutated_then_ruleset_and_specs_unchanged() -> None:
    """definition() is a fresh copy; compiling and matching never mutate specs or facts."""
    specs = [RuleSpec("r", AllOf(Compare("x", ">", 1), Not(Compare("y", "==", "a"))))]
    specs_before = copy.deepcopy(specs)
    facts = [{"x": 2, "y": "b", "extra": [1, 2]}]
    facts_before = copy.deepcopy(facts)
    with compile_rules(specs) as rules:
        definition = rules.definition()
        definition["r0"]["all"][0]["m"] = {"$lt": {"f0": 0}}
        assert rules.definition() != definition
        assert rules.match(facts) == [{"r"}]
    assert specs == specs_before
    assert facts == facts_before


@pytest.mark.parametrize(
    ("fact", "message"),
    [
        ({"x": "99"}, r"facts\[0\]\.x: expected a number, got str '99'"),
        ({"x": True}, r"facts\[0\]\.x: expected a number, got bool True"),
        ({"x": None}, r"facts\[0\]\.x: expected a number, got null"),
        ({"x": float("nan")}, r"facts\[0\]\.x: must be a finite number, got nan"),
        ({"x": Decimal("Infinity")}, r"facts\[0\]\.x: must be a finite number"),
        ({"x": 2**64}, r"facts\[0\]\.x: \d+ does not fit in 64 bits"),
        ({"y": 1}, r"facts\[0\]\.x: missing"),
    ],
)
def test_match_when_fact_value_wrong_kind_then_error_names_fact_and_field(
    fact: Mapping[str, Any], message: str
) -> None:
    """Strings never reach a numeric comparison; bad values are refused, never guessed."""
    rules = compile_rules([RuleSpec("r", Compare("x", ">", 1))])
    with pytest.raises(RuleEngineError, match=message):
        rules.match([fact])


def test_match_when_fact_not_a_mapping_then_error() -> None:
    """A fact must be a mapping."""
    rules = compile_rules([RuleSpec("r", Compare("x", ">", 1))])
    with pytest.raises(RuleEngineError, match=r"facts\[1\]: expected a mapping, got list"):
        rules.match([{"x": 2}, [1]])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "failing", ["assert_facts", "start_action_for_state", "complete_and_start_action"]
)
def test_match_when_engine_fails_mid_match_then_rule_engine_error_and_next_match_works(
    monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """An exception inside matching surfaces as RuleEngineError; the ruleset then recovers."""
    rules = compile_rules([RuleSpec("r", Compare("x", ">", 1))])

    def boom(*_: object) -> None:
        raise _native._engine.error("Could not assert facts, error code: 101")

    with monkeypatch.context() as patch:
        patch.setattr(_native._engine, failing, boom)
        with pytest.raises(RuleEngineError, match="out of memory"):
            rules.match([{"x": 2}])
    assert rules.match([{"x": 2}, {"x": 0}]) == [{"r"}, set()]
    rules.close()


def test_match_when_unexpected_python_error_then_wrapped_as_rule_engine_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even a non-engine exception inside the match loop is a RuleEngineError for callers."""
    rules = compile_rules([RuleSpec("r", Compare("x", ">", 1))])
    monkeypatch.setattr(_native, "start_action", lambda *_: '{"r9":[]}')  # unknown rule name
    with pytest.raises(RuleEngineError, match="KeyError"):
        rules.match([{"x": 2}])
    monkeypatch.undo()
    assert rules.match([{"x": 2}]) == [{"r"}]
    rules.close()


# -- property: the engine agrees with the plain meaning of the condition -----------------

FIELDS = ("a", "b", "c")
leaves = st.builds(
    Compare,
    st.sampled_from(FIELDS),
    st.sampled_from(sorted(OPS)),
    st.integers(-3, 3) | st.sampled_from([Decimal("0.5"), -1.25, 1e-05]),
)
conditions = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda cs: AllOf(*cs)),
        st.lists(children, min_size=1, max_size=3).map(lambda cs: AnyOf(*cs)),
        children.map(Not),
    ),
    max_leaves=8,
)
facts_strategy = st.lists(
    st.fixed_dictionaries(
        {name: st.integers(-3, 3) | st.sampled_from([0.5, -1.25, 1e-05, 2.0]) for name in FIELDS}
    ),
    min_size=1,
    max_size=8,
)


def _holds(condition: Condition, fact: Mapping[str, Any]) -> bool:
    if isinstance(condition, Compare):
        return OPS[condition.op](fact[condition.field], condition.value)
    if isinstance(condition, Not):
        return not _holds(condition.condition, fact)
    results = [_holds(child, fact) for child in condition.conditions]
    return all(results) if isinstance(condition, AllOf) else any(results)


@settings(max_examples=150, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=4), facts_strategy)
def test_match_when_random_conditions_then_agrees_with_their_meaning(
    conditions_: list[Condition], facts: list[dict[str, Any]]
) -> None:
    """For random condition trees and facts, the engine reports exactly the rules that hold."""
    specs = [RuleSpec(f"rule{k}", condition) for k, condition in enumerate(conditions_)]
    rules: CompiledRuleset = compile_rules(specs)
    expected = [{spec.rule_id for spec in specs if _holds(spec.condition, fact)} for fact in facts]
    assert rules.match(facts) == expected
    rules.close()


@pytest.mark.parametrize("value", ["1E-400", "-1E-400", "NaN", "Infinity", "-Infinity"])
def test_match_when_decimal_unrepresentable_then_error_names_field(value: str) -> None:
    """Decimals that are not finite, or round a non-zero to 0.0, are refused by name."""
    with (
        compile_rules([RuleSpec("r", Compare("market.x", ">", 1))]) as rules,
        pytest.raises(RuleEngineError, match=r"facts\[0\]\.market\.x"),
    ):
        rules.match([{"market": {"x": Decimal(value)}}])
