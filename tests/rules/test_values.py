"""Values on their way into durable-rules: normalised, refused with the field named, encoded."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bastion.engine.errors import BastionError, RuleEngineError
from bastion.engine.rules import encode, normalize
from bastion.engine.rules.values import encode_float


def test_normalize_when_decimal_small_then_float_encoded_with_point() -> None:
    """Decimal('0.00001') becomes 1e-05 and is written 1.0e-05, which the C parser reads."""
    value = normalize(Decimal("0.00001"))
    assert value == 1e-05
    assert isinstance(value, float)
    assert encode(value) == "1.0e-05"


@pytest.mark.parametrize(
    ("number", "text"),
    [(1e-05, "1.0e-05"), (-2.5e-07, "-2.5e-07"), (1e16, "1.0e+16"), (123.0, "123.0"), (0.1, "0.1")],
)
def test_encode_float_when_any_float_then_mantissa_has_point_and_value_round_trips(
    number: float, text: str
) -> None:
    """Every float keeps a decimal point before its exponent and parses back to itself."""
    assert encode_float(number) == text
    assert float(text) == number


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_normalize_when_float_not_finite_then_error_names_field(bad: float) -> None:
    """inf is refused by the C parser and NaN silently compares false: both are refused here."""
    with pytest.raises(RuleEngineError, match=r"^position\.breach_atr: must be a finite number"):
        normalize({"breach_atr": bad}, "position")


@pytest.mark.parametrize("bad", [Decimal("Infinity"), Decimal("NaN"), Decimal("sNaN")])
def test_normalize_when_decimal_not_finite_then_refused(bad: Decimal) -> None:
    """Non-finite Decimals are refused like floats."""
    with pytest.raises(RuleEngineError, match="must be a finite number"):
        normalize(bad, "equity_usd")


def test_normalize_when_decimal_beyond_float_range_then_refused() -> None:
    """A Decimal that would become inf, or round a non-zero to 0, is refused."""
    with pytest.raises(RuleEngineError, match="too large"):
        normalize(Decimal("1e400"), "x")
    with pytest.raises(RuleEngineError, match="too small"):
        normalize(Decimal("1e-400"), "x")


def test_normalize_when_int_beyond_64_bits_then_refused() -> None:
    """The C engine parses integers with atoll, which saturates: refuse instead."""
    assert normalize(2**63 - 1) == 2**63 - 1
    with pytest.raises(RuleEngineError, match="64 bits"):
        normalize(2**63, "count")


def test_normalize_when_bool_then_kept_as_bool_not_number() -> None:
    """Bools stay bools (True must never become 1)."""
    assert normalize(True) is True
    assert encode(normalize({"flag": False})) == '{"flag":false}'


def test_normalize_when_numeric_string_then_kept_as_string() -> None:
    """Strings are never coerced to numbers; the compiler refuses them for numeric fields."""
    assert normalize("99") == "99"
    assert encode("99") == '"99"'


def test_normalize_when_nested_then_new_containers_with_paths_in_errors() -> None:
    """Nested mappings and lists are copied; an error names the full path."""
    source = {"market": {"atr_usd": Decimal("4.12"), "bars": [1, 2.5, (Decimal("1E-7"),)]}}
    result = normalize(source)
    assert result == {"market": {"atr_usd": 4.12, "bars": [1, 2.5, [1e-07]]}}
    assert isinstance(result, dict)
    assert result["market"] is not source["market"]
    with pytest.raises(RuleEngineError, match=r"^snap\.market\.bars\[1\]: must be a finite"):
        normalize({"market": {"bars": [1, float("nan")]}}, "snap")


def test_normalize_when_unsupported_type_or_key_then_refused() -> None:
    """Objects the engine cannot compare, and non-string keys, are refused."""
    with pytest.raises(RuleEngineError, match="cannot be given to the rules engine: set"):
        normalize({1, 2}, "x")
    with pytest.raises(RuleEngineError, match="keys must be strings"):
        normalize({1: "a"}, "x")


def test_encode_when_nested_then_compact_ascii_json_parsable_by_python() -> None:
    """The encoding is valid JSON, ASCII-only, and equal to the data."""
    data = normalize({"name": 'é"x', "values": [1e-05, 2, None, True], "n": {"a": 1e300}})
    text = encode(data)
    assert text.isascii()
    assert json.loads(text) == data


def test_rule_engine_error_when_raised_then_is_bastion_error() -> None:
    """Callers catch BastionError at the boundary and turn it into a deny."""
    assert issubclass(RuleEngineError, BastionError)
