"""Snapshot validation and normalisation with cerberus; loading from JSON files.

- Numbers: JSON numbers, Decimals, ints and numeric strings (``"102345.67"``, as
  broker APIs send them) become `Decimal`; floats go through their shortest repr.
  NaN, infinities and booleans are refused wherever a number is expected.
- Times: ISO-8601 strings with a timezone become aware UTC datetimes; naive refused.
- Unknown fields are refused; every required field must be present.
- Cross-references: unique ids, positions in known accounts, market data for every
  equity/crypto symbol, an option leg exactly for option positions, bid ≤ ask,
  nothing entered or changed after `as_of`.

Every problem is reported at once, each naming its field path and what was expected:
``positions[3].entry_price_usd: must be a positive number, got "abc"``. Who catches
SnapshotError: the CLI (exit 2) and the service (the snapshot is stale, not used).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import cerberus

from bastion.engine.errors import BastionError, SnapshotError
from bastion.engine.snapshot.consistency import check_references
from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind, Record
from bastion.engine.snapshot.messages import path_text, show
from bastion.engine.snapshot.model import Snapshot, build_snapshot
from bastion.engine.snapshot.schema import INTEGER_PATTERN, NUMBER_PATTERN, TIME_PATTERN

# The same patterns as the JSON Schema, so that both accept exactly the same text.
NUMBER_TEXT = re.compile(NUMBER_PATTERN)
INTEGER_TEXT = re.compile(INTEGER_PATTERN)
TIME_TEXT = re.compile(TIME_PATTERN)
TEXT_MAX_LENGTH = 100
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True)
class Table:
    """The field tables of one document type: its root record and every record it nests."""

    root: str
    records: Mapping[str, Record]
    noun: str  # "snapshot", "request": how errors name the document

    def rules(self) -> dict[str, Any]:
        return _record_schema(self.records[self.root], self.records)


SNAPSHOT_TABLE = Table("Snapshot", RECORDS, "snapshot")


def invalid_message(noun: str, errors: Sequence[FieldError], source: str) -> str:
    count = "problem" if len(errors) == 1 else "problems"
    head = f"{source}: " if source else ""
    lines = "\n".join(f"  {error}" for error in errors)
    return f"{head}invalid {noun}, {len(errors)} {count}:\n{lines}"


class SnapshotInvalid(SnapshotError):
    """The snapshot breaks the schema; `errors` lists every problem, each with its path."""

    def __init__(self, errors: Sequence[FieldError], *, source: str = "") -> None:
        self.errors = tuple(errors)
        self.source = source
        super().__init__(invalid_message("snapshot", self.errors, source))


def load_snapshot(path: str | Path) -> Snapshot:
    """Read, parse (floats as Decimal), validate. SnapshotError names the file and place."""
    return parse_snapshot(read_text(path, "the snapshot", SnapshotError), source=str(path))


def read_text(path: str | Path, what: str, error_type: type[BastionError]) -> str:
    """A UTF-8 file's text; `error_type` names the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise error_type(f"{path}: cannot read {what}: {error}") from error


def parse_snapshot(text: str, *, source: str = "") -> Snapshot:
    """Parse JSON text and validate it; invalid JSON is reported at line:column."""
    return Snapshot.from_dict(parse_json(text, source, SnapshotError), source=source)


def parse_json(text: str, source: str, error_type: type[BastionError]) -> object:
    """JSON text → data, floats as Decimal, duplicate keys refused; `error_type` names
    the line:column of invalid JSON."""
    try:
        if not isinstance(text, str) or text.startswith("\ufeff"):  # as json.loads says it
            return json.loads(text, **_DECODING)
        return _DECODER.decode(text)  # `json.loads`, without building a decoder per call
    except json.JSONDecodeError as error:
        where = (
            f"{source}:{error.lineno}:{error.colno}" if source else f"{error.lineno}:{error.colno}"
        )
        raise error_type(f"{where}: invalid JSON: {error.msg}") from error
    except ValueError as error:  # a duplicate key, an integer of over 4,300 digits
        raise error_type(f"{source or 'input'}: invalid JSON: {error}") from error
    except RecursionError as error:
        raise error_type(f"{source or 'input'}: invalid JSON: nested too deeply") from error


def validate_snapshot(data: object, *, source: str = "") -> Snapshot:
    """The Snapshot `data` describes; raises SnapshotError listing every problem."""
    return build_snapshot(normalize_document(data, source=source))


def normalize_document(data: object, *, source: str = "") -> dict[str, Any]:
    """Validate with cerberus; return the normalised document (Decimals, UTC datetimes)."""
    problems, document = check_document(data, SNAPSHOT_TABLE, _SCHEMA)
    if not problems:
        problems = [FieldError(path, message) for path, message in check_references(document)]
    if problems:
        raise SnapshotInvalid(problems, source=source)
    return document


def check_document(
    data: object, table: Table, rules: Mapping[str, Any]
) -> tuple[list[FieldError], dict[str, Any]]:
    """Every problem of `data` against `table` (cerberus `rules` built from it), or none
    and the normalised document. Never raises for bad input."""
    try:
        return _check(data, table, rules)
    except RecursionError:  # these documents are a few levels deep; this is garbage
        return [FieldError("", f"nested too deeply to be a {table.noun}")], {}


def _check(
    data: object, table: Table, rules: Mapping[str, Any]
) -> tuple[list[FieldError], dict[str, Any]]:
    if not isinstance(data, Mapping):
        kind = "a list" if isinstance(data, list) else show(data)
        return [FieldError("", f"a {table.noun} is a JSON object, got {kind}")], {}
    bad_key = _non_string_key(data, ())
    if bad_key is not None:
        path, key = bad_key
        return [FieldError(path_text(path), f"keys must be strings, got {show(key)}")], {}
    validator = _validator(rules)
    try:
        valid = validator.validate(dict(data))
    except Exception as error:  # cerberus on input it was not written for: still a field error
        return [FieldError("", f"unreadable {table.noun}: {error}")], {}
    if not valid:
        return _field_errors(validator, data, table), {}
    document: dict[str, Any] = validator.document
    return [], document


# -- coercion: never raises; what cannot be coerced is left for the rules to refuse ------


def _to_decimal(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # NaN / inf stay non-finite and are refused
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value):
        return Decimal(value)
    return value


def _to_int(value: object) -> object:
    if isinstance(value, str):
        return int(value) if INTEGER_TEXT.fullmatch(value) else value
    number = _to_decimal(value)
    if isinstance(number, Decimal) and number.is_finite() and number == number.to_integral_value():
        return int(number)
    return value


def _to_utc(value: object) -> object:
    if isinstance(value, str):
        if not TIME_TEXT.fullmatch(value):
            return value
        try:
            value = datetime.fromisoformat(value)
        except ValueError:  # 2026-02-30 and the like
            return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


# Building a cerberus Validator validates its whole schema: ~1 ms for the request table,
# most of an order check. One validator per rules mapping and thread, reused (validate()
# resets its state on every call; it is not thread-safe, hence per thread). The rules are
# module constants, so the cache stays as small as the number of field tables.
_VALIDATORS = threading.local()


def _validator(rules: Mapping[str, Any]) -> _SnapshotValidator:
    cache: dict[int, tuple[Mapping[str, Any], _SnapshotValidator]] | None = getattr(
        _VALIDATORS, "by_rules", None
    )
    if cache is None:
        cache = _VALIDATORS.by_rules = {}
    held = cache.get(id(rules))
    if held is None or held[0] is not rules:  # an id reused by a new mapping: rebuild
        validator = _SnapshotValidator(rules)  # validates the schema, once
        # cerberus copies the root's DefinitionSchema and re-validates every field rule on
        # each normalisation (`__normalize_mapping`): most of the remaining cost. Child
        # validators hold their schema as the plain mapping; so can the root, now that it
        # has been validated and expanded.
        validator._schema = validator.schema.schema
        held = cache[id(rules)] = (rules, validator)
    return held[1]


class _SnapshotValidator(cerberus.Validator):  # type: ignore[misc]
    """cerberus plus the value rules the field tables need (docstrings: rule schemas)."""

    def _validate_decimal_range(
        self, constraint: Mapping[str, Any], field: str, value: object
    ) -> None:
        """{'type': 'dict'}"""
        if not (
            isinstance(value, Decimal)
            and value.is_finite()
            and (value > 0 or not constraint["positive"])
            and _within(value, constraint)
        ):
            self._error(field, "invalid")

    def _validate_int_range(self, constraint: Mapping[str, Any], field: str, value: object) -> None:
        """{'type': 'dict'}"""
        if isinstance(value, bool) or not isinstance(value, int) or not _within(value, constraint):
            self._error(field, "invalid")

    def _validate_utc_time(self, constraint: bool, field: str, value: object) -> None:
        """{'type': 'boolean'}"""
        if constraint and not (isinstance(value, datetime) and value.tzinfo is not None):
            self._error(field, "invalid")

    def _validate_short_text(self, constraint: bool, field: str, value: object) -> None:
        """{'type': 'boolean'}"""
        ok = (
            isinstance(value, str)
            and bool(value.strip())
            and len(value) <= TEXT_MAX_LENGTH
            and not CONTROL_CHARACTERS.search(value)
        )
        if constraint and not ok:
            self._error(field, "invalid")


def _within(value: Any, constraint: Mapping[str, Any]) -> bool:
    return within(value, constraint["minimum"], constraint["maximum"])


def within(value: Any, minimum: Any, maximum: Any) -> bool:
    """`value` is within the field's bounds (None: no bound)."""
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


# The coercions, by name, for the cerberus-free reading of plainly valid requests
# (engine/authority/request_fast.py): one definition serves both readers.
coerce_decimal, coerce_integer, coerce_time = _to_decimal, _to_int, _to_utc


def _field_rules(field: Field, records: Mapping[str, Record]) -> dict[str, Any]:
    rules: dict[str, Any] = {"required": field.required}
    if field.kind is FieldKind.TEXT:
        rules["short_text"] = True
    elif field.kind is FieldKind.DECIMAL:
        bounds = {"positive": field.positive, "minimum": field.minimum, "maximum": field.maximum}
        rules.update(coerce=_to_decimal, decimal_range=bounds)
    elif field.kind is FieldKind.INTEGER:
        bounds = {"minimum": field.minimum, "maximum": field.maximum}
        rules.update(coerce=_to_int, int_range=bounds)
    elif field.kind is FieldKind.FLAG:
        rules["type"] = "boolean"
    elif field.kind is FieldKind.OBJECT:
        rules["type"] = "dict"
    elif field.kind is FieldKind.TIME:
        rules.update(coerce=_to_utc, utc_time=True)
    elif field.kind is FieldKind.CHOICE:
        rules.update(type="string", allowed=list(field.choices))
    elif field.kind is FieldKind.RECORD:
        rules.update(type="dict", schema=_record_schema(records[field.record], records))
    elif field.kind is FieldKind.LIST:
        item = {"type": "dict", "schema": _record_schema(records[field.record], records)}
        rules.update(type="list", schema=item)
    else:  # BY_SYMBOL
        rules.update(
            type="dict",
            keysrules={"type": "string", "short_text": True},
            valuesrules={"type": "dict", "schema": _record_schema(records[field.record], records)},
        )
    return rules


def _record_schema(record: Record, records: Mapping[str, Record]) -> dict[str, Any]:
    return {field.name: _field_rules(field, records) for field in record.fields}


_SCHEMA = SNAPSHOT_TABLE.rules()


def _field_errors(
    validator: cerberus.Validator, data: Mapping[str, Any], table: Table
) -> list[FieldError]:
    """One message per field path, in document order, from cerberus' error tree."""
    found: dict[tuple[object, ...], FieldError] = {}
    for error in _leaves(validator._errors):
        path = tuple(error.document_path)
        if "keysrules" in error.schema_path:
            key_error = FieldError(
                path_text(path[:-1]), f"key {show(path[-1])} must be a non-empty symbol"
            )
            found.setdefault((*path, "<key>"), key_error)
            continue
        found.setdefault(path, FieldError(path_text(path), _message(error, path, data, table)))
    return list(found.values())


def _leaves(errors: Sequence[Any]) -> list[Any]:
    leaves: list[Any] = []
    for error in errors:
        if error.is_group_error:
            leaves.extend(_leaves(error.child_errors))
        else:
            leaves.append(error)
    return leaves


def _message(error: Any, path: tuple[object, ...], data: Mapping[str, Any], table: Table) -> str:
    field, parent, is_item = _field_at(path, table)
    if error.code == cerberus.errors.REQUIRED_FIELD.code:
        return "is required"
    if error.code == cerberus.errors.UNKNOWN_FIELD.code or field is None:
        known = ", ".join(known.name for known in parent.fields) if parent else ""
        return f"unknown field (known: {known})" if known else "unknown field"
    expected = f"an object ({field.record})" if is_item else field.expectation
    return f"must be {expected}, got {show(_raw_value(data, path, error.value))}"


def _field_at(path: tuple[object, ...], table: Table) -> tuple[Field | None, Record | None, bool]:
    """The field a document path points at, the record holding it, and whether the path
    ends on one item of a list / by-symbol field rather than on the field itself."""
    record: Record | None = table.records[table.root]
    field: Field | None = None
    parent = record
    position = 0
    while position < len(path):
        part = path[position]
        if record is None or not isinstance(part, str):
            return None, parent, False
        parent, field = record, record.field(part)
        if field is None:
            return None, parent, False
        if field.kind in (FieldKind.LIST, FieldKind.BY_SYMBOL):
            position += 1  # the index or symbol
            if position == len(path) - 1:
                return field, parent, True
        record = table.records[field.record] if field.record else None
        position += 1
    return field, parent, False


def _raw_value(data: Mapping[str, Any], path: tuple[object, ...], fallback: object) -> object:
    value: object = data
    for part in path:
        try:
            value = value[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return fallback
    return value


def _non_string_key(
    node: object, path: tuple[object, ...]
) -> tuple[tuple[object, ...], object] | None:
    """The first mapping key that is not a string (JSON has none; Python callers may)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                return path, key
            found = _non_string_key(value, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            found = _non_string_key(value, (*path, index))
            if found is not None:
                return found
    return None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {json.dumps(key)}")
        result[key] = value
    return result


_DECODING: dict[str, Any] = {
    "parse_float": Decimal,
    "parse_constant": Decimal,  # NaN / Infinity reach the validator, which names them
    "object_pairs_hook": _refuse_duplicate_keys,
}
# One decoder for every text (an order check parses one): `json.loads(text, **_DECODING)`
# builds one per call. Shared across threads, as json's own default decoder is.
_DECODER = json.JSONDecoder(**_DECODING)
