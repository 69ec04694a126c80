"""The reference: the generic field-table interpreters the snapshot's check and builder
were before they were written out as code per record (engine/snapshot/built.py
``_compile_check``, engine/snapshot/model.py ``_compile_builder``).

Kept verbatim, with tables of their own (so nothing here calls the generated code), for
tests/snapshot/test_compiled_checks.py, which holds the generated code to these on
many documents: the same normalised documents, the same refusals, the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind, Record
from bastion.engine.snapshot.model import ABSENT_AS_EMPTY, CLASSES, KEY_FIELDS
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


def generic_check(record: str, values: object) -> object:
    """built.py's check of one record, as it was: the normalised record, or an exception."""
    return _CHECKS[record](values)


def generic_build(record: str, document: Mapping[str, Any], key: str = "") -> object:
    """model.py's constructor of one record, as it was."""
    return _FROM_DOCUMENT[record](document, key)


# -- engine/snapshot/built.py, as it was -------------------------------------------------


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


# -- engine/snapshot/model.py, as it was -------------------------------------------------


def _compile_from_document(record: str) -> Callable[[Mapping[str, Any], str], object]:
    """The constructor of one record from its validated document, the field table walked
    once here rather than on every record (a replay builds hundreds of thousands)."""
    cls, key_field = CLASSES[record], KEY_FIELDS.get(record)
    steps = [
        (field.name, field.kind, field.record, (record, field.name) in ABSENT_AS_EMPTY)
        for field in RECORDS[record].fields
    ]

    def build(document: Mapping[str, Any], key: str) -> object:
        values: dict[str, Any] = {}
        if key_field is not None:
            values[key_field] = key
        for name, kind, nested, absent_as_empty in steps:
            if name not in document:
                if absent_as_empty:
                    values[name] = ""
                continue  # optional: the dataclass default applies
            value = document[name]
            if kind is FieldKind.RECORD:
                value = _FROM_DOCUMENT[nested](value, "")
            elif kind is FieldKind.LIST:
                item = _FROM_DOCUMENT[nested]
                value = tuple([item(entry, "") for entry in value])
            elif kind is FieldKind.BY_SYMBOL:
                item = _FROM_DOCUMENT[nested]
                value = MappingProxyType({sym: item(entry, sym) for sym, entry in value.items()})
            values[name] = value
        return cls(**values)

    return build


_FROM_DOCUMENT = {name: _compile_from_document(name) for name in CLASSES}
