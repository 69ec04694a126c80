"""Validation: every rejection names its field; numeric strings coerced; all errors at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.errors import SnapshotError
from bastion.engine.snapshot import (
    SnapshotInvalid,
    load_snapshot,
    parse_snapshot,
    validate_snapshot,
)


def _errors(data: object) -> list[str]:
    with pytest.raises(SnapshotInvalid) as caught:
        validate_snapshot(data)
    return [str(error) for error in caught.value.errors]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("NaN"), "NaN"),
        (Decimal("Infinity"), "Infinity"),
        (Decimal("-Infinity"), "-Infinity"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (True, "true"),
        (False, "false"),
        ("abc", '"abc"'),
        ("NaN", '"NaN"'),
        ("1e5 ", '"1e5 "'),
        (Decimal("-1"), "-1"),
        (0, "0"),
        (None, "null"),
        ([1], "a list"),
    ],
)
def test_validate_when_price_not_a_positive_finite_number_then_error_names_field(
    calm: dict[str, Any], value: object, shown: str
) -> None:
    """NaN, infinities, bools, text, negatives and zero are refused for a price."""
    calm["positions"][3]["entry_price_usd"] = value
    assert _errors(calm) == [
        f"positions[3].entry_price_usd: must be a positive number, got {shown}"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("102345.67", Decimal("102345.67")), ("-12.5", Decimal("-12.5")), ("1E+2", Decimal("100"))],
)
def test_validate_when_numeric_string_then_coerced_to_exact_decimal(
    calm: dict[str, Any], text: str, expected: Decimal
) -> None:
    """Money as broker APIs send it ("102345.67") becomes the exact Decimal."""
    calm["accounts"][0]["cash_usd"] = text
    cash = validate_snapshot(calm).accounts[0].cash_usd
    assert cash == expected
    assert str(cash) == text


def test_validate_when_python_float_then_shortest_repr_decimal(calm: dict[str, Any]) -> None:
    """A float becomes the Decimal of its shortest repr: 0.1 → Decimal('0.1')."""
    calm["market"]["SPY"]["volatility"] = 0.1
    assert validate_snapshot(calm).market["SPY"].volatility == Decimal("0.1")


def test_validate_when_integer_field_given_text_or_fraction_then_coerced_or_refused(
    calm: dict[str, Any],
) -> None:
    """Counts accept "3" and 3.0 as 3; 1.5 and true are refused."""
    flow = calm["order_flow"][0]
    flow["orders_last_minute"] = "3"
    flow["consecutive_losses"] = Decimal("2.0")
    parsed = validate_snapshot(calm).order_flow[0]
    assert (parsed.orders_last_minute, parsed.consecutive_losses) == (3, 2)
    flow["orders_last_minute"], flow["consecutive_losses"] = Decimal("1.5"), True
    assert _errors(calm) == [
        "order_flow[0].consecutive_losses: must be a whole number ≥ 0, got true",
        "order_flow[0].orders_last_minute: must be a whole number ≥ 0, got 1.5",
    ]


def test_validate_when_unknown_field_then_error_lists_known_fields(calm: dict[str, Any]) -> None:
    """Unknown fields are refused (a typo never silently drops a value)."""
    calm["system"]["error_rate"] = 1
    (error,) = _errors(calm)
    assert error.startswith("system.error_rate: unknown field (known: error_rate_pct,")


def test_validate_when_required_field_missing_then_is_required(calm: dict[str, Any]) -> None:
    """A missing required field is named."""
    del calm["market"]["BTC-USD"]["atr_usd"]
    assert _errors(calm) == ['market["BTC-USD"].atr_usd: is required']


@pytest.mark.parametrize(
    ("moment", "ok"),
    [
        ("2026-11-20T15:30:00Z", True),
        ("2026-11-20T16:30:00+01:00", True),
        ("2026-11-20T15:30:00", False),
        ("2026-11-20 15:30:00Z", False),
        ("2026-02-30T00:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_validate_when_time_given_then_needs_iso_8601_with_timezone(
    calm: dict[str, Any], moment: str, ok: bool
) -> None:
    """Times need a timezone and are held in UTC."""
    calm["as_of"] = moment
    if ok:
        assert validate_snapshot(calm).as_of.isoformat() == "2026-11-20T15:30:00+00:00"
    else:
        assert _errors(calm)[0].startswith("as_of: must be an ISO-8601 time with a timezone")


def test_validate_when_many_problems_then_all_reported_at_once(calm: dict[str, Any]) -> None:
    """Every problem is listed, each with its path, in one SnapshotError."""
    calm["positions"][0]["side"] = "flat"
    calm["accounts"][2]["type"] = "xyz"
    calm["market"]["QQQ"]["quality_score_ratio"] = "1.01"
    calm["regime"]["name"] = ""
    with pytest.raises(SnapshotError) as caught:
        validate_snapshot(calm, source="calm.json")
    message = str(caught.value)
    assert message.startswith("calm.json: invalid snapshot, 4 problems:")
    for expected in (
        'positions[0].side: must be one of long, short, got "flat"',
        'accounts[2].type: must be one of gen, rev, com, got "xyz"',
        'market["QQQ"].quality_score_ratio: must be a number from 0 to 1, got "1.01"',
        'regime.name: must be a non-empty string (at most 100 characters), got ""',
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["positions"][0].update(account_id="nope"),
            'positions[0].account_id: no account "nope" in accounts',
        ),
        (
            lambda d: d["positions"][1].update(symbol="MSFT"),
            'positions[1].symbol: no market data for "MSFT": add it under market',
        ),
        (
            lambda d: d["positions"][2].update(asset_class="option"),
            "positions[2].option: is required for an option position",
        ),
        (
            lambda d: d["market"]["SPY"].update(bid_usd=Decimal("594.37")),
            'market["SPY"].bid_usd: 594.37 is above the ask (594.36)',
        ),
        (
            lambda d: d["accounts"][1].update(id="gen-01"),
            'accounts[1].id: "gen-01" is also accounts[0].id',
        ),
        (
            lambda d: d["positions"][3].update(entered_at="2026-11-20T15:30:01Z"),
            "positions[3].entered_at: 2026-11-20T15:30:01Z is after as_of (2026-11-20T15:30:00Z)",
        ),
        (
            lambda d: d["order_flow"][1].update(account_id="x"),
            'order_flow[1].account_id: no account "x" in accounts',
        ),
    ],
)
def test_validate_when_cross_reference_broken_then_error_names_field(
    calm: dict[str, Any], mutate: Any, expected: str
) -> None:
    """Checks a per-field schema cannot make are reported the same way."""
    mutate(calm)
    assert expected in _errors(calm)


def test_validate_when_not_an_object_then_snapshot_error() -> None:
    """The top level must be a JSON object."""
    assert _errors([1, 2]) == ["a snapshot is a JSON object, got a list"]


def test_parse_when_invalid_json_then_line_and_column(tmp_path: Path) -> None:
    """Invalid JSON is reported at file:line:column."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "as_of": "2026-11-20T15:30:00Z",\n  "accounts": [,]\n}\n')
    with pytest.raises(SnapshotError, match=r"broken\.json:3:16: invalid JSON: Expecting value"):
        load_snapshot(path)


def test_parse_when_duplicate_key_or_nan_literal_then_refused() -> None:
    """A key given twice is refused; a NaN literal reaches the validator and is named."""
    with pytest.raises(SnapshotError, match='invalid JSON: duplicate key "as_of"'):
        parse_snapshot('{"as_of": 1, "as_of": 2}')
    with pytest.raises(SnapshotInvalid) as caught:
        parse_snapshot('{"as_of": NaN}')
    assert "as_of: must be an ISO-8601 time with a timezone, e.g." in str(caught.value)


def test_load_when_file_missing_then_snapshot_error_names_file(tmp_path: Path) -> None:
    """An unreadable file is a SnapshotError naming it (the CLI exits 2)."""
    with pytest.raises(SnapshotError, match=r"nope\.json: cannot read the snapshot"):
        load_snapshot(tmp_path / "nope.json")


def test_validate_when_mapping_key_not_a_string_then_refused_with_path(
    calm: dict[str, Any],
) -> None:
    """Python callers can build keys JSON cannot hold; they are refused, never crash."""
    calm["market"]["SPY"][None] = 1
    assert _errors(calm) == ['market["SPY"]: keys must be strings, got null']


def test_parse_when_nested_absurdly_deep_then_snapshot_error_not_recursion_error() -> None:
    """Deeply nested JSON (text or Python data) is refused, never a RecursionError."""
    with pytest.raises(SnapshotError, match="nested too deeply"):
        parse_snapshot("[" * 100_000 + "]" * 100_000)
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(5_000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(SnapshotError, match="nested too deeply"):
        validate_snapshot(nested)
