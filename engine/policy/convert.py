"""Conversions from validated YAML values to model types, done once at the boundary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any


def dec(value: Any) -> Decimal:
    """YAML numbers arrive as int or float; str() of a float is its shortest form."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"expected a number, got {value!r}")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def strs(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(value) for value in values)


def dec_map(values: Mapping[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    """A frozen, sorted mapping (a tuple of pairs keeps the model hashable)."""
    return tuple(sorted((str(key), dec(value)) for key, value in values.items()))
