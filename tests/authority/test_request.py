"""Reading order requests: every problem named by its field path, numbers as Decimal,
NaN / booleans / unknown fields refused, sizes that contradict the action refused."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.authority import (
    OrderRequest,
    RequestError,
    parse_request,
    request_from_dict,
)
from bastion.engine.authority.request import (
    PortfolioContext,
    PositionContext,
    RequestInvalid,
    resized,
)


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(RequestInvalid) as caught:
        request_from_dict(data)
    return [(error.path, error.message) for error in caught.value.errors]


def only_problem(data: Any) -> tuple[str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def order(**fields: Any) -> dict[str, Any]:
    return {"symbol": "XYZ", "action": "open", **fields}


# -- what is read ---------------------------------------------------------------------


def test_request_when_complete_then_every_field_read() -> None:
    result = request_from_dict(
        order(
            id="r-1",
            account_id="acct-1",
            action="increase",
            side="short",
            current_size="10",
            target_size=12.5,
            current_score="0.35",
            target_score=1,
            strategy_id="momentum",
            reason="signal",
            size_increment="0.5",
            position={
                "entry_at": "2026-11-01T10:00:00Z",
                "score_below_since": "2026-11-19T00:00:00Z",
            },
            portfolio={"allocation_pct": "4.5", "active_positions": 3},
            metadata={"desk": "A", "n": [1, 2]},
        )
    )
    assert isinstance(result, OrderRequest)
    assert (result.id, result.account_id, result.action, result.side) == (
        "r-1",
        "acct-1",
        "increase",
        "short",
    )
    assert result.current_size == Decimal("10")
    assert result.target_size == Decimal("12.5")
    assert result.current_score == Decimal("0.35")
    assert result.size_increment == Decimal("0.5")
    assert result.position.entry_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert result.position.score_below_since == datetime(2026, 11, 19, tzinfo=UTC)
    assert result.portfolio.allocation_pct == Decimal("4.5")
    assert result.portfolio.active_positions == 3
    assert dict(result.metadata) == {"desk": "A", "n": [1, 2]}


@pytest.mark.parametrize(
    ("fields", "name", "expected"),
    [
        ({"target_size": "2.50"}, "target_size", "2.50"),
        ({"target_size": 3}, "target_size", "3"),
        ({"action": "increase", "current_size": "1", "target_size": "2"}, "current_size", "1"),
        ({"current_score": "-0.25"}, "current_score", "-0.25"),
        ({"size_increment": "0.001"}, "size_increment", "0.001"),
        ({"position": {"entry_size": "7.5"}}, "position.entry_size", "7.5"),
    ],
    ids=["target-text", "target-int", "current", "score", "increment", "nested"],
)
def test_request_when_numeric_then_exact_decimal(
    fields: dict[str, Any], name: str, expected: str
) -> None:
    value: Any = request_from_dict(order(**fields))
    for part in name.split("."):
        value = getattr(value, part)
    assert type(value) is Decimal
    assert value == Decimal(expected)
    assert str(value) == expected


def test_request_when_json_number_then_decimal_keeps_its_digits() -> None:
    result = parse_request('{"symbol": "XYZ", "action": "open", "target_size": 0.1}')
    assert result.target_size == Decimal("0.1")  # not the float 0.1000000000000000055...


def test_request_when_defaults_then_long_no_sizes_tiny_increment() -> None:
    result = request_from_dict(order())
    assert (result.side, result.current_size, result.target_size) == ("long", None, None)
    assert result.size_increment == Decimal("0.00000001")
    assert result.account_id is None


# -- values refused, named by path -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("target_size", "-1", 'must be a number ≥ 0, got "-1"'),
        ("target_size", "abc", 'must be a number ≥ 0, got "abc"'),
        ("target_size", "NaN", 'must be a number ≥ 0, got "NaN"'),
        ("target_size", float("nan"), "must be a number ≥ 0, got nan"),
        ("target_size", "Infinity", 'must be a number ≥ 0, got "Infinity"'),
        ("target_size", True, "must be a number ≥ 0, got true"),
        ("current_size", False, "must be a number ≥ 0, got false"),
        ("current_score", True, "must be a number, got true"),
        ("current_score", "nan", 'must be a number, got "nan"'),
        ("size_increment", 0, "must be a positive number, got 0"),
        (
            "action",
            "buy",
            'must be one of open, close, increase, decrease, cancel, modify, got "buy"',
        ),
        ("side", "flat", 'must be one of long, short, got "flat"'),
    ],
)
def test_request_when_value_invalid_then_error_names_field(
    field: str, value: Any, expected: str
) -> None:
    assert only_problem(order(**{field: value})) == (field, expected)


def test_request_when_message_then_reads_path_colon_problem() -> None:
    with pytest.raises(RequestError, match=r'target_size: must be a number ≥ 0, got "abc"'):
        request_from_dict(order(target_size="abc"))


def test_request_when_nan_in_json_text_then_refused() -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_request('{"symbol": "XYZ", "action": "open", "target_size": NaN}')
    assert [e.path for e in caught.value.errors] == ["target_size"]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (order(bogus=1), "bogus"),
        (order(position={"bogus": 1}), "position.bogus"),
        (order(portfolio={"allocation": 1}), "portfolio.allocation"),
    ],
    ids=["top", "position", "portfolio"],
)
def test_request_when_unknown_field_then_refused_with_its_path(data: Any, path: str) -> None:
    found_path, message = only_problem(data)
    assert found_path == path
    assert message.startswith("unknown field")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"action": "open"}, ("symbol", "is required")),
        ({"symbol": "XYZ"}, ("action", "is required")),
        (
            order(position={"entry_at": "2026-01-01T00:00:00"}),
            (
                "position.entry_at",
                'must be an ISO-8601 time with a timezone, e.g. "2026-11-20T14:30:00Z", '
                'got "2026-01-01T00:00:00"',
            ),
        ),
        (
            order(portfolio={"allocation_pct": "150"}),
            ("portfolio.allocation_pct", 'must be a number from 0 to 100, got "150"'),
        ),
    ],
    ids=["no-symbol", "no-action", "naive-time", "pct-range"],
)
def test_request_when_required_or_nested_field_wrong_then_path_named(
    data: Any, problem: tuple[str, str]
) -> None:
    assert only_problem(data) == problem


def test_request_when_several_problems_then_all_listed() -> None:
    found = problems({"symbol": "XYZ", "action": "buy", "target_size": "-1", "bogus": 1})
    assert sorted(path for path, _ in found) == ["action", "bogus", "target_size"]


@pytest.mark.parametrize("data", [[1, 2], "open", None, 3])
def test_request_when_not_an_object_then_refused(data: Any) -> None:
    with pytest.raises(RequestInvalid):
        request_from_dict(data)


def test_request_when_json_invalid_then_line_and_column_named() -> None:
    with pytest.raises(RequestError, match=r"1:12: invalid JSON"):
        parse_request('{"symbol": }')


def test_request_when_json_has_duplicate_key_then_refused() -> None:
    with pytest.raises(RequestError, match="duplicate key"):
        parse_request('{"symbol": "XYZ", "action": "open", "symbol": "ABC"}')


# -- sizes that contradict the action ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"action": "decrease", "current_size": 10},
            ("target_size", "is required for decrease (the size wanted after it)"),
        ),
        (
            {"action": "increase", "current_size": 10, "target_size": 10},
            ("target_size", "an increase must exceed current_size 10"),
        ),
        (
            {"action": "increase", "current_size": 10, "target_size": 9},
            ("target_size", "an increase must exceed current_size 10"),
        ),
        (
            {"action": "decrease", "current_size": 10, "target_size": 10},
            ("target_size", "a decrease must be below current_size 10"),
        ),
        (
            {"action": "close", "target_size": 1},
            ("target_size", "a close goes to 0: leave it out or use decrease"),
        ),
        (
            {"action": "open", "current_size": 1},
            ("current_size", "an open starts from no position: leave it out or 0"),
        ),
        (
            {"action": "open", "target_size": 0},
            ("target_size", "open to 0 adds nothing: leave it out to size it"),
        ),
    ],
    ids=[
        "decrease-without-target",
        "increase-to-current",
        "increase-below-current",
        "decrease-to-current",
        "close-above-zero",
        "open-from-a-position",
        "open-to-zero",
    ],
)
def test_request_when_sizes_contradict_action_then_refused(
    fields: dict[str, Any], problem: tuple[str, str]
) -> None:
    assert only_problem(order(**fields)) == problem


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "close"},
        {"action": "close", "target_size": 0},
        {"action": "decrease", "current_size": 10, "target_size": 0},
        {"action": "increase", "current_size": 10, "target_size": "10.01"},
        {"action": "open", "current_size": 0, "target_size": 5},
        {"action": "open"},
        {"action": "cancel"},
    ],
    ids=["close", "close-to-0", "decrease-to-0", "increase", "open-from-0", "open-sized", "cancel"],
)
def test_request_when_sizes_agree_with_action_then_read(fields: dict[str, Any]) -> None:
    assert request_from_dict(order(**fields)).action == fields["action"]


def test_resized_when_every_field_set_then_equals_dataclasses_replace() -> None:
    """`resized` (the generated copy a bracket's children and a modify use) keeps every
    other field of the request, exactly as `dataclasses.replace` would."""
    when = datetime(2026, 11, 1, tzinfo=UTC)
    request = OrderRequest(
        symbol="XYZ",
        action="open",
        id="r-1",
        account_id="acct-1",
        side="short",
        current_size=Decimal(3),
        target_size=Decimal(5),
        current_score=Decimal("0.4"),
        target_score=Decimal(1),
        strategy_id="momentum",
        reason="signal",
        modified_order_id="o-9",
        size_increment=Decimal("0.5"),
        order_type="stop_limit",
        price=Decimal(10),
        trigger_price=Decimal(11),
        reduce_only=True,
        time_in_force="gtd",
        expire_at=when,
        position=PositionContext(entry_at=when),
        portfolio=PortfolioContext(active_positions=2),
        metadata={"desk": "A"},
    )
    made = resized(request, action="decrease", current_size=Decimal(5), target_size=Decimal(2))
    expected = replace(request, action="decrease", current_size=Decimal(5), target_size=Decimal(2))
    assert made == expected
    assert all(
        getattr(made, item.name) is getattr(request, item.name)
        for item in fields(OrderRequest)
        if item.name not in {"action", "current_size", "target_size"}
    )
