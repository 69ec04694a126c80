"""The published JSON Schema: file in sync, documented, and agreeing with the validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bastion.engine.schemas import schema_text
from bastion.engine.snapshot import SnapshotInvalid, load_snapshot, validate_snapshot
from bastion.engine.snapshot.schema import SCHEMA_ID, SNAPSHOT_SCHEMA
from tests.snapshot.conftest import EXAMPLE_FILES, ROOT

SCHEMA_FILE = ROOT / "schemas" / "snapshot.schema.json"
VALIDATOR = Draft202012Validator(SNAPSHOT_SCHEMA)


def test_schema_file_when_read_then_equals_the_python_constant() -> None:
    """schemas/snapshot.schema.json is SNAPSHOT_SCHEMA, indent 2, trailing newline."""
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    assert json.loads(text) == SNAPSHOT_SCHEMA
    assert text == schema_text(SNAPSHOT_SCHEMA)
    assert text.endswith("}\n")


def test_schema_when_checked_then_valid_draft_2020_12_with_id_and_title() -> None:
    """The schema itself is valid and carries its $id and a title."""
    Draft202012Validator.check_schema(SNAPSHOT_SCHEMA)
    assert SNAPSHOT_SCHEMA["$id"] == SCHEMA_ID
    assert SNAPSHOT_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SNAPSHOT_SCHEMA["title"]


def _objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [SNAPSHOT_SCHEMA, *schema["$defs"].values()]


def test_schema_when_walked_then_every_property_has_a_description() -> None:
    """Editors show these descriptions: none may be missing or empty."""
    for definition in _objects(SNAPSHOT_SCHEMA):
        assert definition["description"]
        for name, prop in definition["properties"].items():
            assert prop.get("description"), name


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example_when_validated_then_accepted_by_json_schema_and_cerberus(path: Path) -> None:
    """Every shipped example validates against both the JSON Schema and the runtime validator."""
    assert list(VALIDATOR.iter_errors(json.loads(path.read_text()))) == []
    load_snapshot(path)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_to_dict_when_serialised_then_accepted_by_json_schema(path: Path) -> None:
    """The model's own output (numbers as strings) is valid against the published schema."""
    assert list(VALIDATOR.iter_errors(load_snapshot(path).to_dict())) == []


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        (("positions", 0, "quantity"), -1),
        (("positions", 0, "side"), "flat"),
        (("positions", 0, "surprise"), 1),
        (("as_of",), "2026-11-20T15:30:00"),
        (("market", "SPY", "bid_usd"), "abc"),
        (("system", "connectivity_ratio"), 1.5),
        (("order_flow", 0, "orders_last_minute"), 1.5),
        (("accounts", 0, "drift_flag"), 1),
    ],
)
def test_schema_when_field_invalid_then_json_schema_and_cerberus_both_refuse(
    pointer: tuple[Any, ...], value: object
) -> None:
    """Both validators refuse the same field-level mistakes."""
    data = json.loads(EXAMPLE_FILES[0].read_text())
    target = data
    for part in pointer[:-1]:
        target = target[part]
    target[pointer[-1]] = value
    assert list(VALIDATOR.iter_errors(data))
    with pytest.raises(SnapshotInvalid):
        validate_snapshot(data)
