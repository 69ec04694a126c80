"""Thresholds carried in the fact (`Ref` parameters) and the bounded ruleset cache.

A threshold moved out of the rule and into the fact must decide exactly as the rule's
own threshold did: both go through the same conversion (the nearest double, written
the same way), so equal values stay equal — tested at the threshold, one double either
side, and with Decimal digits that round to the threshold's double.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import AllOf, Compare, Not, RuleSpec, compile_rules
from bastion.engine.rules.cache import RulesetCache
from bastion.engine.rules.spec import Ref, parameters, parametrize, thresholds

OPS = (">", ">=", "<", "<=", "==", "!=")


def _pair(op: str, threshold: int | float | Decimal) -> tuple[Any, Any, str]:
    """The rule with the threshold written in, and with it as a parameter."""
    written = compile_rules([RuleSpec("r", Compare("x", op, threshold))])
    moved = compile_rules([RuleSpec("r", Compare("x", op, Ref("_t0")))])
    return written, moved, moved.params({"_t0": threshold})


def _neighbours(value: Decimal) -> list[Any]:
    """The value, the doubles either side, and digits that round to its double."""
    nearest = float(value)
    return [
        value,
        nearest,
        Decimal(nearest),  # the double's exact digits
        math.nextafter(nearest, -math.inf),
        math.nextafter(nearest, math.inf),
        Decimal(math.nextafter(nearest, -math.inf)),
        Decimal(math.nextafter(nearest, math.inf)),
        value + Decimal("1e-30"),  # rounds to the same double
        value - Decimal("1e-30"),
    ]


THRESHOLDS = [
    Decimal("0.1"),
    Decimal("0.4"),
    Decimal("10"),
    Decimal("10.000"),
    Decimal("86400"),
    Decimal("0.35"),
    Decimal("1.0000000000000000001"),  # more digits than a double: rounds to 1.0
    Decimal("99999.99"),
    Decimal("-5.5"),
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("threshold", THRESHOLDS, ids=str)
def test_match_one_when_threshold_in_fact_then_decides_as_written_threshold(
    op: str, threshold: Decimal
) -> None:
    """At the threshold, one double either side, and digits rounding to its double."""
    written, moved, params = _pair(op, threshold)
    with written, moved:
        for value in _neighbours(threshold):
            fact = {"x": value}
            assert moved.match_one(fact, params) == written.match_one(fact), (op, value)
            assert moved.match([fact], params) == written.match([fact]), (op, value)


@pytest.mark.parametrize("op", OPS)
def test_match_one_when_integer_threshold_in_fact_then_decides_as_written_threshold(
    op: str,
) -> None:
    """Counts (open positions, submits) stay integers on both sides."""
    written, moved, params = _pair(op, 10)
    with written, moved:
        for value in (9, 10, 11, Decimal("9.999999999999999999"), 10.0, Decimal("10.5")):
            fact = {"x": value}
            assert moved.match_one(fact, params) == written.match_one(fact), (op, value)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(OPS),
    threshold=st.decimals(min_value=-1_000_000, max_value=1_000_000, places=6),
    offset=st.sampled_from([0, 1, -1, 2, -2]),
)
def test_match_one_when_any_decimal_threshold_then_parameter_agrees(
    op: str, threshold: Decimal, offset: int
) -> None:
    """Any threshold, against values a few doubles away from it."""
    written, moved, params = _pair(op, threshold)
    value = float(threshold)
    for _ in range(abs(offset)):
        value = math.nextafter(value, math.inf if offset > 0 else -math.inf)
    with written, moved:
        for candidate in (value, Decimal(value), threshold):
            fact = {"x": candidate}
            assert moved.match_one(fact, params) == written.match_one(fact)


def test_parametrize_when_rules_nested_then_slots_numbered_in_order() -> None:
    """Slots follow `thresholds` order; strings and bools never move."""
    specs = [
        RuleSpec("a", AllOf(Compare("s", "==", "x"), Compare("n", ">", Decimal(5)))),
        RuleSpec("b", Not(AllOf(Compare("m", "<", 3), Compare("f", "==", True)))),
    ]
    assert thresholds(specs) == [Decimal(5), 3]
    moved, values = parametrize(specs, {1}, "_l")
    assert values == {"_l1": 3}
    assert moved[0] == specs[0]
    assert moved[1] == RuleSpec(
        "b", Not(AllOf(Compare("m", "<", Ref("_l1")), Compare("f", "==", True)))
    )
    assert parameters(moved) == {"_l1"}


def test_match_one_when_parameters_missing_then_error_not_a_silent_miss() -> None:
    """A ruleset with parameters refuses a fact without them (no comparison is skipped)."""
    with compile_rules([RuleSpec("r", Compare("x", ">", Ref("_t0")))]) as moved:
        with pytest.raises(RuleEngineError, match="parameters required"):
            moved.match_one({"x": 1})
        with pytest.raises(RuleEngineError, match="take"):
            moved.params({})
        with pytest.raises(RuleEngineError, match="expected a number"):
            moved.params({"_t0": True})


def _specs(threshold: int) -> list[RuleSpec]:
    return [RuleSpec("big", Compare("x", ">", threshold))]


def test_ruleset_cache_when_equal_rules_then_one_ruleset_shared() -> None:
    """Equal rule lists share one compiled ruleset; an int and a Decimal 5 do not."""
    cache = RulesetCache(bound=8)
    try:
        first = cache.get(_specs(5))
        assert cache.get(_specs(5)) == first
        assert cache.get([RuleSpec("big", Compare("x", ">", Decimal(5)))]) != first
        assert len(cache) == 2 and cache.compiled == 2
    finally:
        cache.close()


def test_ruleset_cache_when_beyond_bound_then_evicts_and_recompiles_the_same() -> None:
    """The least recently used ruleset is closed beyond the bound; asked again, it is
    compiled again and decides the same."""
    cache = RulesetCache(bound=2)
    try:
        _, first = cache.get(_specs(1))
        before = [first.match_one({"x": value}) for value in (0, 1, 2)]
        token_two, _ = cache.get(_specs(2))
        cache.touch(token_two)
        cache.get(_specs(3))  # evicts the least recently used: threshold 1
        assert len(cache) == 2 and cache.evicted == 1
        assert first.closed
        _, again = cache.get(_specs(1))
        assert again is not first and not again.closed
        assert again.fingerprint == first.fingerprint
        assert [again.match_one({"x": value}) for value in (0, 1, 2)] == before
        assert len(cache) == 2
    finally:
        cache.close()
    assert again.closed and len(cache) == 0
