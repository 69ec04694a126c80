"""Field checks for records built in code (typed already), without cerberus.

The snapshot builder assembles closed trades as :class:`ClosedTrade` objects; a week of
a busy account is thousands of them, and cerberus costs ~0.3 ms per trade record — a
poll's worth of seconds. Values built in code need no coercion, only the value rules of
the field table (the same rules the validator applies: non-empty short text, finite
numbers within bounds, aware times, choices), which this module checks directly.
Generated from :mod:`fields`, so it cannot drift from the validator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind
from bastion.engine.snapshot.messages import show
from bastion.engine.snapshot.validate import CONTROL_CHARACTERS, TEXT_MAX_LENGTH


def field_problems(record: str, values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, problem) for each value of ``values`` that breaks its field's rule in
    ``RECORDS[record]``; a required field absent from ``values`` is a problem. Only the
    scalar kinds are checked (text, decimal, integer, flag, time, choice)."""
    for field in RECORDS[record].fields:
        if field.name not in values:
            if field.required:
                yield field.name, "is required"
            continue
        value = values[field.name]
        if not valid_value(field, value):
            yield field.name, f"must be {field.expectation}, got {show(value)}"


def valid_value(field: Field, value: object) -> bool:
    """Whether ``value`` (already coerced) meets the value rule of a scalar ``field``."""
    kind = field.kind
    if kind is FieldKind.TEXT:
        return (
            isinstance(value, str)
            and bool(value.strip())
            and len(value) <= TEXT_MAX_LENGTH
            and not CONTROL_CHARACTERS.search(value)
        )
    if kind is FieldKind.DECIMAL:
        return (
            isinstance(value, Decimal)
            and value.is_finite()
            and (value > 0 or not field.positive)
            and _within(field, value)
        )
    if kind is FieldKind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool) and _within(field, value)
    if kind is FieldKind.FLAG:
        return isinstance(value, bool)
    if kind is FieldKind.TIME:
        return isinstance(value, datetime) and value.utcoffset() is not None
    if kind is FieldKind.CHOICE:
        return isinstance(value, str) and value in field.choices
    return True  # nested records are not built this way


def _within(field: Field, value: Decimal | int) -> bool:
    low, high = field.minimum, field.maximum
    return (low is None or value >= low) and (high is None or value <= high)
