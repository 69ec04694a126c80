"""Snapshot edits (`set:` lines): what each subject and field reaches, and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.engine.policytest.delta import EditError, apply_edit
from bastion.engine.snapshot import Snapshot
from tests.conftest import POLICIES

CALM = POLICIES / "tests" / "snapshots" / "calm.json"


def _calm() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CALM.read_text(encoding="utf-8"))
    return data


def test_edit_when_symbol_price_then_market_and_its_positions_move() -> None:
    """`SPY price 571.2` moves the market price and every SPY position's price."""
    data = _calm()
    apply_edit(data, "SPY price 571.2")
    assert data["market"]["SPY"]["price_usd"] == "571.2"
    assert [p["price_usd"] for p in data["positions"] if p["symbol"] == "SPY"] == ["571.2"]
    assert (
        Snapshot.from_dict(data).market["SPY"].price_usd
        == Snapshot.from_dict(data).positions[0].price_usd
    )


def test_edit_when_account_field_without_unit_then_unit_suffix_found() -> None:
    """`gen-01 equity 480000` sets equity_usd; `drift true` sets drift_flag."""
    data = _calm()
    apply_edit(data, "gen-01 equity 480000")
    apply_edit(data, "gen-01 drift true")
    account = data["accounts"][0]
    assert account["equity_usd"] == "480000" and account["drift_flag"] is True


def test_edit_when_value_ends_in_percent_then_relative_change() -> None:
    """`SPY price -3%` is 3 % below the old price, exactly."""
    data = _calm()
    apply_edit(data, "SPY price -3%")
    assert data["market"]["SPY"]["price_usd"] == "485"


@pytest.mark.parametrize(
    ("line", "where", "field", "value"),
    [
        ("system error_rate 12", ("system",), "error_rate_pct", "12"),
        ("regime severity high", ("regime",), "severity", "high"),
        ("XYZ quality 0.4", ("market", "XYZ"), "quality_score_ratio", "0.4"),
        ("PUT-1 delta -0.5", ("positions", 3, "option"), "delta", "-0.5"),
        ("gen-01/trend_following_v1 slippage 51", ("order_flow", 0), "slippage_bps", "51"),
    ],
)
def test_edit_when_subject_is_singleton_symbol_option_or_flow_then_field_set(
    line: str, where: tuple[Any, ...], field: str, value: str
) -> None:
    """Each kind of subject reaches its record."""
    data = _calm()
    apply_edit(data, line)
    record: Any = data
    for key in where:
        record = record[key]
    assert record[field] == value


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nobody equity 1", "is not system, regime, an account"),
        ("gen-01 equty 1", "no field 'equty'"),
        ("gen-01 equity", "SUBJECT FIELD VALUE"),
        ("gen-01/none slippage 1", "no order_flow row"),
        ("SPY price x%", "per-cent change needs a number"),
    ],
)
def test_edit_when_line_does_not_apply_then_edit_error_says_why(line: str, message: str) -> None:
    """A wrong edit is refused with the reason, never applied halfway."""
    data = _calm()
    with pytest.raises(EditError, match=message):
        apply_edit(data, line)
    assert data == _calm()
