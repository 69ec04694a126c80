"""FactEncoder: the generated fast path writes exactly what the checked path writes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import Compare, RuleSpec, compile_rules
from bastion.engine.rules.compiler import LIVE_FACTS
from bastion.engine.rules.facts import FactEncoder
from bastion.engine.rules.spec import Kind

KINDS = {
    "market.price": Kind.NUMBER,
    "market.atr": Kind.NUMBER,
    "risk": Kind.NUMBER,
    "account.halted": Kind.BOOL,
    "order.symbol": Kind.STRING,
}

numbers = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(
        allow_nan=False, allow_infinity=False, min_value=-(10**300), max_value=10**300
    ).filter(lambda d: d == 0 or float(d) != 0)
)


def _fact(price: object, atr: object, risk: object, halted: object, symbol: object) -> Any:
    return {
        "market": {"price": price, "atr": atr},
        "risk": risk,
        "account": {"halted": halted},
        "order": {"symbol": symbol},
    }


@settings(max_examples=300, deadline=None)
@given(numbers, numbers, numbers, st.booleans(), st.text(max_size=12))
def test_encode_when_well_formed_then_fast_path_equals_checked_path(
    price: object, atr: object, risk: object, halted: bool, symbol: str
) -> None:
    """Ints, floats (exponents, -0.0) and Decimals; bools; any Unicode string."""
    encoder = FactEncoder(KINDS)
    fact = _fact(price, atr, risk, halted, symbol)
    text = encoder.encode(7, fact)
    assert text == encoder._encode_checked(7, fact)
    decoded = json.loads(text)
    assert decoded["i"] == 7
    assert decoded[encoder.keys["order.symbol"]] == symbol
    assert decoded[encoder.keys["account.halted"]] is halted
    for path, value in (("market.price", price), ("market.atr", atr), ("risk", risk)):
        assert float(decoded[encoder.keys[path]]) == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("risk", True, r"facts\[3\]\.risk: expected a number, got bool"),
        ("risk", "1.5", r"facts\[3\]\.risk: expected a number, got str"),
        ("risk", Decimal("NaN"), r"facts\[3\]\.risk: must be a finite number"),
        ("risk", float("inf"), r"facts\[3\]\.risk: must be a finite number"),
        ("risk", Decimal("1E-400"), r"facts\[3\]\.risk: .*too small"),
        ("risk", 2**64, r"facts\[3\]\.risk: .*does not fit in 64 bits"),
        ("account.halted", 1, r"facts\[3\]\.account\.halted: expected a bool, got int"),
        ("order.symbol", 5, r"facts\[3\]\.order\.symbol: expected a string, got int"),
    ],
)
def test_encode_when_value_of_wrong_kind_then_error_names_fact_and_field(
    field: str, value: object, message: str
) -> None:
    """The fast path refuses what the checked path refuses, and the error says where."""
    fact = _fact(Decimal("410.5"), 4, 1.5, False, "SPY")
    parts = field.split(".")
    (fact[parts[0]] if len(parts) == 2 else fact)[parts[-1]] = value
    with pytest.raises(RuleEngineError, match=message):
        FactEncoder(KINDS).encode(3, fact)


def test_encode_when_field_missing_then_error_names_it() -> None:
    fact = _fact(1, 2, 3, True, "SPY")
    del fact["market"]["atr"]
    with pytest.raises(RuleEngineError, match=r"facts\[0\]\.market\.atr: missing"):
        FactEncoder(KINDS).encode(0, fact)


def test_encode_when_exponent_float_then_mantissa_has_a_point() -> None:
    """durable-rules reads `1e-05` wrongly; the encoder writes `1.0e-05`."""
    text = FactEncoder({"x": Kind.NUMBER}).encode(0, {"x": 1e-05})
    assert text == '{"i":0,"f0":1.0e-05}'


def test_encode_when_no_fields_then_index_only() -> None:
    assert FactEncoder({}).encode(4, {"anything": 1}) == '{"i":4}'


decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30, places=None
).filter(lambda d: d == 0 or abs(d) > Decimal("1e-300"))


@settings(max_examples=300, deadline=None)
@given(st.lists(decimals, min_size=1, max_size=8))
def test_decimal_digits_when_matched_then_engine_reads_the_double_float_gives(
    values: list[Decimal],
) -> None:
    """A Decimal goes to the engine as its own digits; the engine must read exactly
    float(value) — the double its threshold went through — so ==, < and > agree."""
    for value in values:
        threshold = float(value)
        specs = [
            RuleSpec("eq", Compare("x", "==", threshold)),
            RuleSpec("lt", Compare("x", "<", threshold)),
            RuleSpec("gt", Compare("x", ">", threshold)),
        ]
        with compile_rules(specs) as rules:
            assert rules.match([{"x": value}]) == [frozenset({"eq"})]
            assert rules.match_one({"x": value}) == frozenset({"eq"})


@pytest.mark.parametrize(
    "value", ["100", "-0", "1E+5", "1E-7", "123456789012345678901234567890.5", "0.000001"]
)
def test_decimal_digits_when_whole_exponent_or_long_then_still_a_double(value: str) -> None:
    """Whole numbers get ``.0`` (a double, never an int that could overflow 64 bits);
    exponents and long digit strings go through float, as the checked path says."""
    text = FactEncoder({"x": Kind.NUMBER}).encode(0, {"x": Decimal(value)})
    written = text.split('"f0":')[1].rstrip("}")
    assert "." in written and "E" not in written
    assert float(written) == float(Decimal(value))


def test_match_one_when_same_fact_many_times_then_fires_every_time() -> None:
    """The kept session is renewed every few facts, and each fact is asserted under a
    fresh index: a repeat of the same fact (which durable-rules would ignore) fires."""
    with compile_rules([RuleSpec("r", Compare("x", ">=", 1))]) as rules:
        results = [rules.match_one({"x": 1 + k % 2}) for k in range(5 * LIVE_FACTS + 3)]
        assert set(results) == {frozenset({"r"})}
        assert rules.match_one({"x": 0}) == frozenset()
