"""The frozen model: round trip, immutability, and agreement with the field tables."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.snapshot.fields import RECORDS, FieldKind
from bastion.engine.snapshot.model import ABSENT_AS_EMPTY, CLASSES, KEY_FIELDS
from tests.snapshot.conftest import EXAMPLE_FILES, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_round_trip_when_example_then_from_dict_of_to_dict_equals_original(path: Path) -> None:
    """to_dict() is JSON-ready and from_dict() reads it back to an equal Snapshot."""
    snapshot = load_snapshot(path)
    data = snapshot.to_dict()
    text = json.dumps(data)  # no Decimal, no datetime left
    again = Snapshot.from_dict(json.loads(text))
    assert again == snapshot
    assert again.to_dict() == data


def test_load_when_example_then_money_is_decimal_and_times_are_utc() -> None:
    """Numbers become exact Decimals, times aware UTC datetimes."""
    snapshot = load_snapshot(EXAMPLE_FILES[0])
    account = snapshot.accounts[0]
    assert isinstance(account.equity_usd, Decimal)
    assert snapshot.as_of.tzinfo is not None
    assert snapshot.as_of.utcoffset() == UTC.utcoffset(None)


def test_snapshot_when_assigned_then_refused() -> None:
    """Frozen: attributes cannot be set and market data cannot be replaced."""
    snapshot = load_snapshot(EXAMPLE_FILES[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.as_of = datetime.now(UTC)  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.market["SPY"] = snapshot.market["SPY"]  # type: ignore[index]
    assert isinstance(snapshot.positions, tuple)


@pytest.mark.parametrize("record", sorted(RECORDS))
def test_dataclass_when_compared_with_field_table_then_same_fields_in_same_order(
    record: str,
) -> None:
    """The dataclasses mirror fields.RECORDS: names, order, and which fields are optional
    (except the documented KEY_FIELDS and ABSENT_AS_EMPTY)."""
    fields = [f for f in dataclasses.fields(CLASSES[record]) if f.name != KEY_FIELDS.get(record)]
    assert [field.name for field in fields] == [field.name for field in RECORDS[record].fields]
    optional = {
        field.name
        for field in fields
        if field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
    }
    optional |= {name for kind, name in ABSENT_AS_EMPTY if kind == record}
    assert optional == {field.name for field in RECORDS[record].fields if not field.required}


def test_option_leg_when_optional_inputs_absent_then_documented_defaults() -> None:
    """Dividend yield and rate default to 0, the multiplier to 100, delta to None."""
    data: dict[str, Any] = json.loads((EXAMPLES / "option-near-roll.json").read_text())
    leg = next(p for p in data["positions"] if p["asset_class"] == "option")["option"]
    for name in ("dividend_yield", "risk_free_rate", "multiplier", "delta"):
        leg.pop(name, None)
    option = Snapshot.from_dict(data).positions[-1].option
    assert option is not None
    assert (option.dividend_yield, option.risk_free_rate, option.multiplier, option.delta) == (
        Decimal(0),
        Decimal(0),
        Decimal(100),
        None,
    )


def test_field_table_when_read_then_every_nested_record_exists() -> None:
    """Every record a field points at is defined."""
    for record in RECORDS.values():
        for field in record.fields:
            if field.kind in (FieldKind.RECORD, FieldKind.LIST, FieldKind.BY_SYMBOL):
                assert field.record in RECORDS
