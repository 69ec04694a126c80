"""The published JSON Schema of a snapshot (draft 2020-12), generated from `fields`.

`SNAPSHOT_SCHEMA` is what editors and other tools validate against; the runtime
validator (`validate`, cerberus) is generated from the same tables and adds what a
schema cannot say (cross-references, non-finite numbers).
`bastion.engine.schemas.schema_text` renders schemas/snapshot.schema.json (engine/
does not write files; the CLI's ``bastion schema --out schemas/`` does);
tests/snapshot fails when the file is stale.

Numbers may be JSON numbers or numeric strings (brokers send money as strings);
strings are not range-checked by JSON Schema, the runtime validator does that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind, Record

SCHEMA_ID = "https://bastion-risk.dev/schemas/snapshot.schema.json"
NUMBER_PATTERN = r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$"
INTEGER_PATTERN = r"^-?\d+$"
TIME_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$"
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f]*\S[^\u0000-\u001f\u007f]*$"


def _value_schema(field: Field) -> dict[str, Any]:
    if field.kind is FieldKind.TEXT:
        return {"type": "string", "minLength": 1, "maxLength": 100, "pattern": TEXT_PATTERN}
    if field.kind in (FieldKind.DECIMAL, FieldKind.INTEGER):
        integer = field.kind is FieldKind.INTEGER
        number: dict[str, Any] = {"type": "integer" if integer else "number"}
        if field.positive:
            number["exclusiveMinimum"] = 0
        if field.minimum is not None:
            number["minimum"] = int(field.minimum)
        if field.maximum is not None:
            number["maximum"] = int(field.maximum)
        text = {"type": "string", "pattern": INTEGER_PATTERN if integer else NUMBER_PATTERN}
        return {"anyOf": [number, text]}
    if field.kind is FieldKind.FLAG:
        return {"type": "boolean"}
    if field.kind is FieldKind.OBJECT:
        return {"type": "object"}
    if field.kind is FieldKind.TIME:
        return {"type": "string", "format": "date-time", "pattern": TIME_PATTERN}
    if field.kind is FieldKind.CHOICE:
        return {"enum": list(field.choices)}
    reference = {"$ref": f"#/$defs/{field.record}"}
    if field.kind is FieldKind.RECORD:
        return reference
    if field.kind is FieldKind.LIST:
        return {"type": "array", "items": reference}
    return {  # BY_SYMBOL
        "type": "object",
        "propertyNames": {"minLength": 1, "maxLength": 100, "pattern": TEXT_PATTERN},
        "additionalProperties": reference,
    }


def _record_schema(record: Record) -> dict[str, Any]:
    return {
        "type": "object",
        "description": record.description,
        "properties": {
            field.name: {"description": field.description, **_value_schema(field)}
            for field in record.fields
        },
        "required": [field.name for field in record.fields if field.required],
        "additionalProperties": False,
    }


def document_schema(
    records: Mapping[str, Record], root: str, schema_id: str, title: str
) -> dict[str, Any]:
    """A draft 2020-12 schema for the document whose root record is `root`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        **_record_schema(records[root]),
        "$defs": {name: _record_schema(record) for name, record in records.items() if name != root},
    }


SNAPSHOT_SCHEMA: dict[str, Any] = document_schema(
    RECORDS, "Snapshot", SCHEMA_ID, "Bastion snapshot"
)
