"""The snapshot's instrument order rules: tick and lot size, min / max quantity and
notional — optional, positive, read the same by the validator, the fast check of
documents built in code, the typed check, and the adapters' builder.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from bastion.adapters.builder_history import instrument_records
from bastion.engine.errors import SnapshotError
from bastion.engine.snapshot import Instrument, validate_snapshot
from bastion.engine.snapshot.built import snapshot_from_built
from bastion.engine.snapshot.typed import field_problems
from tests.snapshot.conftest import example_data

RULES = {
    "tick_size": "0.01",
    "lot_size": "1",
    "min_quantity": "1",
    "max_quantity": "10000",
    "min_notional": "1",
    "max_notional": "1000000",
}


def _document(**rules: Any) -> dict[str, Any]:
    document = copy.deepcopy(example_data("calm"))
    symbol = next(iter(document["market"]))
    document["instruments"] = {symbol: {"asset_class": "equity", **rules}}
    return document


def test_instrument_when_rules_given_then_read_as_decimals_and_round_trip() -> None:
    """Every rule reads as a Decimal and writes back as given."""
    snapshot = validate_snapshot(_document(**RULES))
    (instrument,) = snapshot.instruments.values()
    assert instrument.lot_size == Decimal(1) and instrument.tick_size == Decimal("0.01")
    assert validate_snapshot(snapshot.to_dict()) == snapshot


def test_instrument_when_rules_absent_then_none() -> None:
    """Absent means the venue sets no such rule."""
    (instrument,) = validate_snapshot(_document()).instruments.values()
    assert instrument.max_notional is None and instrument.min_quantity is None


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("value", ["0", "-1"])
def test_instrument_when_rule_not_positive_then_refused_naming_it(name: str, value: str) -> None:
    """A rule of 0 or below is refused by the validator and by the fast check alike."""
    document = _document(**{name: value})
    with pytest.raises(SnapshotError) as validated:
        validate_snapshot(document)
    assert name in str(validated.value)
    with pytest.raises(SnapshotError) as built:
        snapshot_from_built(document)
    assert str(built.value) == str(validated.value)


def test_typed_check_when_rule_not_positive_then_named() -> None:
    """Instruments built in code are checked by the same field table."""
    problems = dict(field_problems("Instrument", {"asset_class": "crypto", "lot_size": Decimal(0)}))
    assert "lot_size" in problems


def test_builder_when_adapter_knows_rules_then_passed_to_the_snapshot() -> None:
    """The adapters' builder keeps the venue's rules it is given, and leaves out None."""
    known = {"BTCUSD": Instrument("BTCUSD", "crypto", lot_size=Decimal("0.0001"))}
    records = instrument_records(known, [], ["BTCUSD"])
    assert records == {"BTCUSD": {"asset_class": "crypto", "lot_size": Decimal("0.0001")}}


@pytest.mark.parametrize(
    ("low", "high"), [("min_quantity", "max_quantity"), ("min_notional", "max_notional")]
)
def test_instrument_when_minimum_above_maximum_then_refused_by_both_paths(
    low: str, high: str
) -> None:
    """A minimum above the maximum allows no order: the venue data is refused, naming it."""
    document = _document(**{low: "10", high: "5"})
    with pytest.raises(SnapshotError) as validated:
        validate_snapshot(document)
    assert f"{low}: 10 is above {high} (5)" in str(validated.value)
    with pytest.raises(SnapshotError) as built:
        snapshot_from_built(document)
    assert str(built.value) == str(validated.value)
