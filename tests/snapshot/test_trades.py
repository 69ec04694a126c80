"""Closed trades and instruments in the snapshot: format, round trip, consistency, bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.snapshot import (
    ClosedTrade,
    Snapshot,
    SnapshotInvalid,
    bounded,
    load_snapshot,
    validate_snapshot,
)
from bastion.engine.snapshot.history import DEFAULT_LOOKBACK_S, cutoff
from bastion.engine.snapshot.typed import field_problems
from tests.snapshot.conftest import EXAMPLES, example_data

EXAMPLE = EXAMPLES / "trade-history.json"


@pytest.fixture
def history() -> dict[str, Any]:
    return example_data("trade-history")


def _errors(data: object) -> list[str]:
    with pytest.raises(SnapshotInvalid) as caught:
        validate_snapshot(data)
    return [str(error) for error in caught.value.errors]


def _trade(**changes: Any) -> ClosedTrade:
    values: dict[str, Any] = {
        "id": "t-1",
        "account_id": "gen-01",
        "symbol": "AAPL",
        "side": "long",
        "strategy_id": "",
        "units": Decimal(1),
        "opened_at": datetime(2026, 11, 1, tzinfo=UTC),
        "closed_at": datetime(2026, 11, 2, tzinfo=UTC),
        "entry_price_usd": Decimal(100),
        "exit_price_usd": Decimal(99),
        "profit_usd": Decimal(-1),
        "profit_pct": Decimal(-1),
        "exit_reason": "stop_loss",
    }
    return ClosedTrade(**(values | changes))


def test_load_when_example_has_trades_then_records_are_typed_and_sorted() -> None:
    """The example's trades are ClosedTrade records in closing order, instruments by symbol."""
    snapshot = load_snapshot(EXAMPLE)
    closes = [trade.closed_at for trade in snapshot.trades]
    assert closes == sorted(closes)
    assert snapshot.trades[0].exit_reason == "stop_loss"
    assert isinstance(snapshot.trades[0].profit_usd, Decimal)
    assert snapshot.instruments["AAPL"].sector == "technology"
    assert snapshot.instruments["BTC-USD"].symbol == "BTC-USD"
    assert snapshot.instruments["BTC-USD"].sector is None


def test_load_when_strategy_absent_then_strategy_id_is_empty_and_round_trips() -> None:
    """A trade without strategy_id reads as "" and is written back without the key."""
    snapshot = load_snapshot(EXAMPLE)
    manual = next(trade for trade in snapshot.trades if trade.exit_reason == "manual")
    assert manual.strategy_id == ""
    data = snapshot.to_dict()
    written = next(t for t in data["trades"] if t["id"] == manual.id)
    assert "strategy_id" not in written
    assert Snapshot.from_dict(json.loads(json.dumps(data))) == snapshot


def test_load_when_sections_absent_then_empty_and_left_out_of_to_dict(
    calm: dict[str, Any],
) -> None:
    """Old snapshots (no trades, no instruments) still load; to_dict leaves both out."""
    snapshot = validate_snapshot(calm)
    assert snapshot.trades == ()
    assert dict(snapshot.instruments) == {}
    assert "trades" not in snapshot.to_dict()
    assert "instruments" not in snapshot.to_dict()


def test_load_when_trades_out_of_order_then_sorted_by_closed_at(history: dict[str, Any]) -> None:
    """Trades are held oldest close first whatever the file's order."""
    history["trades"].reverse()
    snapshot = validate_snapshot(history)
    closes = [trade.closed_at for trade in snapshot.trades]
    assert closes == sorted(closes)


def test_validate_when_exit_reason_unknown_then_error_lists_the_reasons(
    history: dict[str, Any],
) -> None:
    """exit_reason is one of the five reasons."""
    history["trades"][0]["exit_reason"] = "stopped"
    assert _errors(history) == [
        "trades[0].exit_reason: must be one of stop_loss, take_profit, signal, manual, "
        'liquidation, got "stopped"'
    ]


def test_validate_when_asset_class_unknown_then_error_names_the_symbol(
    history: dict[str, Any],
) -> None:
    """An instrument's asset class is one of the six."""
    history["instruments"]["AAPL"]["asset_class"] = "stock"
    assert _errors(history) == [
        'instruments["AAPL"].asset_class: must be one of equity, crypto, option, future, fx, '
        'other, got "stock"'
    ]


def test_validate_when_closed_before_opened_then_error(history: dict[str, Any]) -> None:
    """closed_at ≥ opened_at."""
    history["trades"][0]["opened_at"] = "2026-11-18T00:00:00Z"
    assert _errors(history) == [
        "trades[0].closed_at: 2026-11-17T19:02:00Z is before opened_at (2026-11-18T00:00:00Z)"
    ]


def test_validate_when_closed_after_as_of_then_error(history: dict[str, Any]) -> None:
    """closed_at ≤ as_of: a snapshot cannot hold a trade from its future."""
    history["trades"][-1]["closed_at"] = "2026-11-20T15:30:01Z"
    assert _errors(history) == [
        "trades[3].closed_at: 2026-11-20T15:30:01Z is after as_of (2026-11-20T15:30:00Z)"
    ]


def test_validate_when_closed_exactly_at_as_of_then_valid(history: dict[str, Any]) -> None:
    """The boundary: a trade closed at as_of belongs to the snapshot."""
    history["trades"][-1]["closed_at"] = "2026-11-20T15:30:00Z"
    assert validate_snapshot(history).trades[-1].closed_at == datetime(
        2026, 11, 20, 15, 30, tzinfo=UTC
    )


def test_validate_when_account_unknown_then_error(history: dict[str, Any]) -> None:
    """A trade names an account of the snapshot."""
    history["trades"][1]["account_id"] = "gen-99"
    assert _errors(history) == ['trades[1].account_id: no account "gen-99" in accounts']


def test_validate_when_same_id_twice_in_one_account_then_error(history: dict[str, Any]) -> None:
    """Trade ids are unique per account (other accounts may reuse them)."""
    history["trades"][1]["id"] = history["trades"][0]["id"]
    assert _errors(history) == ['trades[1].id: "ord-7301" is also trades[0].id in account "gen-01"']
    history["trades"][2]["id"] = history["trades"][0]["id"]  # rev-01: allowed
    assert len(_errors(history)) == 1


def test_validate_when_profit_sign_contradicts_side_then_error(history: dict[str, Any]) -> None:
    """A long trade that fell cannot show a profit: side, prices or sign are wrong."""
    trade = history["trades"][0]  # long AAPL 229.40 -> 224.80, -2.0096 %
    trade["profit_pct"] = "2.0096"
    trade["profit_usd"] = "184.40"
    (error,) = _errors(history)
    assert error.startswith("trades[0].profit_pct: 2.0096 does not fit a long trade from 229.40")


def test_validate_when_fees_lower_profit_within_allowance_then_valid(
    history: dict[str, Any],
) -> None:
    """Fees may lower the realised percentage below the price move, by up to one point."""
    trade = history["trades"][0]  # price move -2.0052 %
    trade["profit_pct"] = "-3.0"
    trade["profit_usd"] = "-275.28"
    validate_snapshot(history)
    trade["profit_pct"] = "-3.1"
    assert len(_errors(history)) == 1


def test_validate_when_profit_usd_and_pct_disagree_in_sign_then_error(
    history: dict[str, Any],
) -> None:
    """profit_usd and profit_pct say the same thing."""
    history["trades"][1]["profit_usd"] = "-124.80"
    assert _errors(history) == [
        "trades[1].profit_usd: -124.80 and profit_pct 1.0557 have opposite signs"
    ]


def test_validate_when_short_trade_rose_then_loss_is_consistent(history: dict[str, Any]) -> None:
    """A short whose price rose is a loss (the example's BTC-USD stop-out)."""
    trade = validate_snapshot(history).trades[2]
    assert (trade.side, trade.profit_usd < 0, trade.profit_pct < 0) == ("short", True, True)


def test_bounded_when_cutoff_given_then_keeps_closes_at_or_after_it_sorted() -> None:
    """bounded keeps exactly what closed at or after the cutoff (boundary included)."""
    at = datetime(2026, 11, 10, tzinfo=UTC)
    trades = [
        _trade(id="late", closed_at=at + timedelta(hours=1)),
        _trade(id="edge", closed_at=at),
        _trade(id="early", closed_at=at - timedelta(microseconds=1)),
    ]
    assert [trade.id for trade in bounded(trades, at)] == ["edge", "late"]


def test_cutoff_when_no_lookback_given_then_seven_days() -> None:
    """The default window is 7 days until the policies' longest lookback is passed."""
    now = datetime(2026, 11, 20, tzinfo=UTC)
    assert DEFAULT_LOOKBACK_S == 7 * 86_400
    assert cutoff(now) == datetime(2026, 11, 13, tzinfo=UTC)
    assert cutoff(now, 3600) == datetime(2026, 11, 19, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("units", Decimal(0)),
        ("units", Decimal("NaN")),
        ("entry_price_usd", Decimal(-1)),
        ("symbol", ""),
        ("symbol", "A\nB"),
        ("symbol", "X" * 101),
        ("side", "flat"),
        ("exit_reason", "stopped"),
        ("opened_at", datetime(2026, 11, 1)),  # naive
        ("profit_usd", 3),  # an int is not a Decimal in typed records
    ],
)
def test_field_problems_when_value_breaks_rule_then_validator_refuses_it_too(
    history: dict[str, Any], name: str, value: object
) -> None:
    """The typed checks (for built records) and the validator (for files) agree."""
    record = {field: getattr(_trade(), field) for field in _trade().__slots__}
    del record["strategy_id"]  # "" is written as absent
    record[name] = value
    assert [field for field, _ in field_problems("ClosedTrade", record)] == [name]
    if name != "profit_usd":  # the validator coerces numbers, as a file may hold ints
        history["trades"][0][name] = value.isoformat() if isinstance(value, datetime) else value
        assert any(f"trades[0].{name}" in error for error in _errors(history))
