"""How values are written into decisions: exact digits, never an exponent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine import decision
from bastion.engine.decision import render_value, shown


def _reference(value: Decimal) -> str:
    """The rule as first written: normalise a whole number, format without exponent."""
    exact = value.normalize() if value == value.to_integral() else value
    text = format(exact, "f")
    return text if text != "-0" else "0"


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**20), 10**20), st.integers(-12, 8))
def test_render_value_when_any_decimal_within_precision_then_as_the_rule_says(
    digits: int, exponent: int
) -> None:
    value = Decimal(digits).scaleb(exponent)
    assert render_value(value) == _reference(value)
    assert "E" not in render_value(value) and "e" not in render_value(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("100.00", "100"),
        ("2.50", "2.50"),
        ("-0", "0"),
        ("-0.000", "0"),
        ("1E+5", "100000"),
        ("1E-7", "0.0000001"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_render_value_when_edge_decimals_then_plain_text(value: str, text: str) -> None:
    assert render_value(Decimal(value)) == text


def test_render_value_when_other_types_then_their_text() -> None:
    assert render_value(True) == "true"
    assert render_value(datetime(2026, 11, 21, tzinfo=UTC)) == "2026-11-21T00:00:00+00:00"
    assert render_value("x") == "x"
    assert shown(Decimal("2.345")) == "2.34" and shown(Decimal("7")) == "7"


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**12), 10**12), st.integers(-8, 4))
def test_render_value_when_rendered_again_then_the_remembered_text_is_the_rule(
    digits: int, exponent: int
) -> None:
    """A Decimal's text is remembered after its first rendering: the second answer (from
    the look-up) is the same rule's, for whole numbers, trailing zeros and -0 alike."""
    value = Decimal(digits).scaleb(exponent)
    first = render_value(value)
    assert render_value(value) == first == _reference(value)
    assert render_value(-value) == _reference(-value)


def test_render_value_when_the_remembered_texts_are_full_then_still_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The look-up is bounded: once full it starts again, and every value still renders."""
    monkeypatch.setattr(decision, "_RENDERED", {})
    monkeypatch.setattr(decision, "_RENDERED_MAX", 3)
    values = [Decimal(text) for text in ("1.00", "2.50", "-0.0", "7", "0.10", "1.00")]
    assert [render_value(v) for v in values] == ["1", "2.50", "0", "7", "0.10", "1"]
    assert len(decision._RENDERED) <= 3
