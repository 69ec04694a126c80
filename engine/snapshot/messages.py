"""How snapshot errors name places and values: ``positions[3].entry_price_usd``, ``"abc"``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from bastion.engine.snapshot.fields import RECORDS, FieldKind

_MAX_SHOWN = 60
_KEYED_FIELDS = frozenset(
    field.name
    for record in RECORDS.values()
    for field in record.fields
    if field.kind is FieldKind.BY_SYMBOL
)


def path_text(path: Sequence[object]) -> str:
    """``("positions", 3, "price_usd")`` → ``positions[3].price_usd``; symbol keys quoted:
    ``market["BTC-USD"].atr_usd``."""
    text = ""
    previous: object = None
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif previous in _KEYED_FIELDS:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:
            text += f".{part}" if text else str(part)
        previous = part
    return text


def show(value: object) -> str:
    """A value as the user wrote it, shortened: ``"abc"``, ``NaN``, ``true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 4] + '..."'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``: ``2026-11-20T15:30:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
