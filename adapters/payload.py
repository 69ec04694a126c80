"""Read a venue's decoded JSON strictly: every problem is a DataError naming the field.

A missing field, a field of the wrong type, a number that does not parse or is not
finite: each raises, with ``where`` (venue and endpoint), the field's path and the value
that was found. Nothing is defaulted to zero. Numbers become ``Decimal`` from their text
(venues send most prices as strings); a JSON float goes through ``repr``, which is the
shortest text that round-trips, so ``0.1`` stays ``0.1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from bastion.engine.errors import DataError

_SHOWN = 40  # characters of a bad value quoted in a message


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def as_mapping(value: object, where: str, what: str = "payload") -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: {what} must be a JSON object, got {_shown(value)}")
    return value


def as_list(value: object, where: str, what: str = "payload") -> Sequence[object]:
    if not isinstance(value, list):
        raise DataError(f"{where}: {what} must be a JSON array, got {_shown(value)}")
    return value


def field(obj: Mapping[str, object], key: str, where: str) -> object:
    if key not in obj or obj[key] is None:
        raise DataError(f"{where}: field '{key}' is missing")
    return obj[key]


def text(obj: Mapping[str, object], key: str, where: str) -> str:
    value = field(obj, key, where)
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}: field '{key}' must be a non-empty string, got {_shown(value)}")
    return value


def boolean(obj: Mapping[str, object], key: str, where: str) -> bool:
    value = field(obj, key, where)
    if not isinstance(value, bool):
        raise DataError(f"{where}: field '{key}' must be true or false, got {_shown(value)}")
    return value


def to_decimal(value: object, where: str, name: str) -> Decimal:
    """A finite Decimal from a JSON string or number; ``name`` is the field, for the message."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise DataError(f"{where}: field '{name}' must be a number, got {_shown(value)}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise DataError(f"{where}: field '{name}' is not a number: {_shown(value)}") from None
    if not number.is_finite():
        raise DataError(f"{where}: field '{name}' is not a finite number: {_shown(value)}")
    return number


def decimal(obj: Mapping[str, object], key: str, where: str) -> Decimal:
    return to_decimal(field(obj, key, where), where, key)


def optional_decimal(obj: Mapping[str, object], key: str, where: str) -> Decimal | None:
    return None if obj.get(key) is None else decimal(obj, key, where)


def timestamp(obj: Mapping[str, object], key: str, where: str) -> datetime:
    """An RFC 3339 / ISO 8601 time with a zone (``Z`` accepted), as an aware datetime."""
    value = text(obj, key, where)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"{where}: field '{key}' is not an ISO 8601 time: {_shown(value)}"
        ) from None
    if parsed.utcoffset() is None:
        raise DataError(f"{where}: field '{key}' has no time zone: {_shown(value)}")
    return parsed


def epoch(value: object, where: str, name: str, *, unit_s: Decimal = Decimal(1)) -> datetime:
    """A UTC time from an epoch number; ``unit_s`` is 0.001 for milliseconds."""
    seconds = to_decimal(value, where, name) * unit_s
    try:
        return datetime.fromtimestamp(float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise DataError(f"{where}: field '{name}' is not a time: {_shown(value)}") from None


MILLISECONDS = Decimal("0.001")
