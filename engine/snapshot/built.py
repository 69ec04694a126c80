"""A snapshot document assembled in code, checked against the field rules without cerberus.

The snapshot builder assembles one document per poll (``bastion serve``) or per bar close
(``bastion replay``: a year of 50 symbols is 252 documents of a few thousand values), and
cerberus costs a quarter of a second per document — most of a replay. The values of such
a document already have their types (Decimals, datetimes, strings); what still needs
checking is the *values*, because they come from a venue or a file: a negative equity, a
crossed quote, an empty symbol, a position in an unknown account.

:func:`snapshot_from_built` applies exactly the validator's rules, generated from the same
field tables (:mod:`fields`), to every value: the same coercions (`validate._to_decimal`,
``_to_int``, ``_to_utc``), the same value rules (:mod:`typed`), unknown and missing fields,
the types of nested records and lists, the keys of by-symbol records, then the
cross-reference checks (:mod:`consistency`). When anything is wrong it does not write its
own report: it hands the document to the full validator (`Snapshot.from_dict`), which
raises SnapshotInvalid listing every problem with its path, word for word as for a file.
So a document is accepted here only if the validator accepts it, and gives the same
Snapshot (tests/snapshot/test_built.py checks both on the example histories and on
documents broken field by field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bastion.engine.snapshot.consistency import check_references
from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind, Record
from bastion.engine.snapshot.model import Snapshot, build_snapshot
from bastion.engine.snapshot.typed import valid_value
from bastion.engine.snapshot.validate import (
    CONTROL_CHARACTERS,
    TEXT_MAX_LENGTH,
    _to_decimal,
    _to_int,
    _to_utc,
)

_COERCE = {FieldKind.DECIMAL: _to_decimal, FieldKind.INTEGER: _to_int, FieldKind.TIME: _to_utc}
_NAMES = {name: frozenset(field.name for field in rec.fields) for name, rec in RECORDS.items()}
_KEY_FIELD = Field("symbol", FieldKind.TEXT, "a by-symbol key")  # keys follow the text rule
Check = Callable[[object], object]


class _Refused(Exception):
    """Some value breaks a rule: the full validator reports it."""


def snapshot_from_built(document: Mapping[str, Any], *, source: str = "") -> Snapshot:
    """The Snapshot of a document assembled in code; SnapshotError (from the validator,
    listing every problem) when any value breaks a rule of the field tables."""
    normalized = normalized_document(document)
    if normalized is None or check_references(normalized):
        return Snapshot.from_dict(document, source=source)  # raises, naming every problem
    return build_snapshot(normalized)


def record_refused(record: str, values: object) -> bool:
    """Whether a field rule of ``RECORDS[record]`` refuses one record assembled in code
    (the builder leaves such a venue record out — a broken option contract — and asks
    :func:`typed.field_problems` why). Cross-references are not checked here."""
    try:
        _CHECKS[record](values)
    except Exception:  # _Refused, or a value a coercion chokes on
        return True
    return False


def normalized_document(document: object) -> dict[str, Any] | None:
    """The normalised document (as the validator returns it), or None when a field rule
    refuses a value. Cross-references are not checked here."""
    try:
        return _CHECKS["Snapshot"](document)  # type: ignore[return-value]
    except Exception:  # _Refused, or a value a coercion chokes on: the validator says why
        return None


# -- one check per field, compiled from the tables; each returns the normalised value ----


def _scalar(field: Field) -> Check:
    """Coerce as the validator does, then its value rule; the common types go straight."""
    coerce = _COERCE.get(field.kind)
    positive, low, high = field.positive, field.minimum, field.maximum

    def general(value: object) -> object:
        if coerce is not None:
            value = coerce(value)
        if not valid_value(field, value):
            raise _Refused
        return value

    if field.kind is FieldKind.DECIMAL:

        def decimal(value: object) -> object:
            if type(value) is not Decimal:
                return general(value)
            if not (
                value.is_finite()
                and (value > 0 or not positive)
                and (low is None or value >= low)
                and (high is None or value <= high)
            ):
                raise _Refused
            return value

        return decimal
    if field.kind is FieldKind.TEXT:

        def text(value: object) -> object:
            if (
                type(value) is str
                and value.strip()
                and len(value) <= TEXT_MAX_LENGTH
                and not CONTROL_CHARACTERS.search(value)
            ):
                return value
            return general(value)

        return text
    if field.kind is FieldKind.CHOICE:
        choices = frozenset(field.choices)

        def choice(value: object) -> object:
            if type(value) is str and value in choices:
                return value
            return general(value)

        return choice
    if field.kind is FieldKind.TIME:

        def time(value: object) -> object:
            if type(value) is datetime and value.tzinfo is UTC:
                return value  # aware, and already in UTC: what the coercion gives
            return general(value)

        return time
    return general


def _compile(record: Record) -> Check:
    names = _NAMES[record.name]
    steps: list[tuple[str, bool, Check]] = []
    for field in record.fields:
        kind = field.kind
        if kind is FieldKind.RECORD:
            steps.append((field.name, field.required, _Nested(field.record)))
        elif kind is FieldKind.LIST:
            steps.append((field.name, field.required, _list_of(_Nested(field.record))))
        elif kind is FieldKind.BY_SYMBOL:
            steps.append((field.name, field.required, _by_symbol(_Nested(field.record))))
        elif kind is FieldKind.OBJECT:  # free-form: only the validator checks those
            steps.append((field.name, field.required, _refuse))
        else:
            steps.append((field.name, field.required, _scalar(field)))

    def check(values: object) -> object:
        if type(values) is not dict or not values.keys() <= names:  # an unknown key
            raise _Refused
        result: dict[str, Any] = {}
        for name, required, step in steps:
            if name in values:
                result[name] = step(values[name])
            elif required:
                raise _Refused
        return result

    return check


class _Nested:
    """The check of a nested record, looked up when first used (records nest records)."""

    def __init__(self, record: str) -> None:
        self.record = record

    def __call__(self, value: object) -> object:
        return _CHECKS[self.record](value)


def _list_of(item: Check) -> Check:
    def check(value: object) -> object:
        if type(value) is not list:
            raise _Refused
        return [item(entry) for entry in value]

    return check


def _by_symbol(item: Check) -> Check:
    key_rule = _scalar(_KEY_FIELD)

    def check(value: object) -> object:
        if type(value) is not dict:
            raise _Refused
        return {key_rule(key): item(entry) for key, entry in value.items()}

    return check


def _refuse(value: object) -> object:
    raise _Refused


_CHECKS: dict[str, Check] = {name: _compile(record) for name, record in RECORDS.items()}
