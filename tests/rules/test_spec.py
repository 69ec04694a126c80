"""The rule input format: validation with the rule named, and negation compiled away."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import AllOf, AnyOf, Compare, Condition, Kind, Not, RuleSpec
from bastion.engine.rules.spec import field_kinds, to_negation_normal_form


def test_negation_normal_form_when_not_compare_then_operator_flipped() -> None:
    """not (x > t) is x <= t, and so on for every operator."""
    flips = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
    for op, flipped in flips.items():
        assert to_negation_normal_form(Not(Compare("x", op, 1))) == Compare("x", flipped, 1)


def test_negation_normal_form_when_not_of_combinators_then_de_morgan() -> None:
    """not (a and b) is (not a) or (not b); double negation cancels."""
    a, b = Compare("a", ">", 1), Compare("b", "==", "x")
    assert to_negation_normal_form(Not(AllOf(a, b))) == AnyOf(
        Compare("a", "<=", 1), Compare("b", "!=", "x")
    )
    assert to_negation_normal_form(Not(AnyOf(a, Not(b)))) == AllOf(Compare("a", "<=", 1), b)
    assert to_negation_normal_form(Not(Not(a))) == a


def test_field_kinds_when_valid_then_kind_per_field() -> None:
    """Each compared field gets the kind of the values it is compared to."""
    specs = [
        RuleSpec(
            "r1", AllOf(Compare("market.atr_usd", ">", Decimal("1")), Compare("manual", "==", True))
        ),
        RuleSpec("r2", Not(Compare("asset_class", "!=", "option"))),
    ]
    assert field_kinds(specs) == {
        "market.atr_usd": Kind.NUMBER,
        "manual": Kind.BOOL,
        "asset_class": Kind.STRING,
    }


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([RuleSpec("a", Compare("x", ">", 1)), RuleSpec("a", Compare("x", "<", 1))], "used twice"),
        ([RuleSpec("", Compare("x", ">", 1))], "non-empty string"),
        ([RuleSpec("a", Compare("x", "=>", 1))], "unknown operator '=>'"),
        ([RuleSpec("a", Compare("x y", ">", 1))], "dotted path"),
        ([RuleSpec("a", Compare("x", ">", True))], "> needs a number; a bool takes == or !="),
        ([RuleSpec("a", Compare("x", "<", "b"))], "< needs a number; a string takes"),
        ([RuleSpec("a", Compare("x", "==", None))], "cannot compare to NoneType"),  # type: ignore[arg-type]
        ([RuleSpec("a", AllOf())], "AllOf() needs at least one condition"),
        ([RuleSpec("a", "x > 1")], "unknown condition str"),  # type: ignore[arg-type]
        (
            [RuleSpec("a", Compare("x", ">", 1)), RuleSpec("b", Compare("x", "==", "1"))],
            "field 'x' is compared to a string here and to a number elsewhere",
        ),
    ],
)
def test_field_kinds_when_invalid_then_error_names_rule_and_fix(
    specs: list[RuleSpec], message: str
) -> None:
    """Every malformed rule is refused with the rule named and what to change."""
    with pytest.raises(RuleEngineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        field_kinds(specs)


def test_field_kinds_when_nested_too_deep_then_refused_not_recursion_error() -> None:
    """A pathological nesting is a RuleEngineError, never a RecursionError."""
    condition: Condition = Compare("x", ">", 1)
    for _ in range(5_000):
        condition = Not(condition)
    with pytest.raises(RuleEngineError, match="nest deeper than 32 levels"):
        field_kinds([RuleSpec("deep", condition)])
