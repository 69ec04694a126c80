"""Audit data made JSON-plain and bounded: Decimal, times, enums, paths and records as
exact text; client strings, labels and lists cut to a bound, each cut written down under
`_truncated`; data still over the record limit kept as its keys and SHA-256."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from bastion.engine.jsontext import CanonicalEncoder

# Bounds on what one record may hold: client-supplied strings are cut, and a record
# that is still too large keeps only a digest of its data. Each cut is written down.
MAX_STRING_CHARS = 2_000
MAX_LABEL_CHARS = 200  # principal, subject, kind, dict keys
MAX_ITEMS = 1_000
MAX_RECORD_BYTES = 64 * 1024
TRUNCATED_KEY = "_truncated"
OVERSIZE_KEY = "_oversize"
# JSON-plain data (text, whole numbers, true / false / null, objects, lists) is at most
# this many times longer as canonical JSON than its Python repr: a character of text is
# one character or more in the repr, 12 bytes at most escaped to ASCII (an astral
# character: two \\uXXXX escapes); numbers and literals are as long; separators shorter.
_ASCII_JSON_GROWTH = 12


def bounded(data: Mapping[str, Any], cuts: list[str]) -> dict[str, Any]:
    """JSON-plain data with long strings and lists cut; the cut paths under `_truncated`."""
    try:  # the common record (an order check's) has nothing to cut: no paths to build
        plain_data = _plain_uncut(data) if type(data) is dict else plain(data, "data", cuts)
    except _NeedsPaths:
        plain_data = plain(data, "data", cuts)
    assert isinstance(plain_data, dict)
    if not cuts and len(repr(plain_data)) * _ASCII_JSON_GROWTH <= MAX_RECORD_BYTES:
        return plain_data  # surely under the limit: not serialised twice (the seal does it)
    if cuts:
        plain_data[TRUNCATED_KEY] = cuts[:20] + (
            [f"… {len(cuts) - 20} more"] if len(cuts) > 20 else []
        )
    size = len(canonical(plain_data))
    if size > MAX_RECORD_BYTES:
        return {
            OVERSIZE_KEY: {
                "bytes": size,
                "limit": MAX_RECORD_BYTES,
                "keys": sorted(plain_data)[:50],
                "sha256": hashlib.sha256(canonical(plain_data)).hexdigest(),
                "note": "data over the record limit: only its keys and digest are kept",
            }
        }
    return plain_data


def plain(value: Any, path: str, cuts: list[str]) -> Any:
    """JSON-ready: Decimal, times, enums and paths as text; records via `to_dict()`."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            cuts.append(f"{path} ({len(value)} chars)")
            return value[:MAX_STRING_CHARS] + f"…[cut {len(value) - MAX_STRING_CHARS} chars]"
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return plain(value.value, path, cuts)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes sha256:{hashlib.sha256(value).hexdigest()[:16]}>"
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return plain(to_dict(), path, cuts)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return plain(fields, path, cuts)
    if isinstance(value, Mapping):
        return {
            label(str(k), f"{path} key", cuts): plain(v, f"{path}.{k}", cuts)
            for k, v in list(value.items())[:MAX_ITEMS]
        } | ({} if len(value) <= MAX_ITEMS else _cut_items(path, len(value), cuts))
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        if len(items) > MAX_ITEMS:
            cuts.append(f"{path} ({len(items)} items)")
        return [plain(v, f"{path}[{i}]", cuts) for i, v in enumerate(items[:MAX_ITEMS])]
    return plain(str(value), path, cuts)


class _NeedsPaths(Exception):
    """`_plain_uncut` met what it does not take: `plain` does it all again."""


def _plain_uncut(value: Any) -> Any:
    """`plain` for data of plain Python types with nothing to cut, without building a
    path per value (a third of an order check's record); raises _NeedsPaths on anything
    else — a long string, key or list, a type `plain` converts otherwise."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING_CHARS:
            raise _NeedsPaths
        return value
    if value is None or kind is bool or kind is int:
        return value
    if kind is Decimal:
        return str(value)
    if kind is dict:
        if len(value) > MAX_ITEMS:
            raise _NeedsPaths
        result = {}
        for key, item in value.items():
            if type(key) is not str or len(key) > MAX_LABEL_CHARS:
                raise _NeedsPaths
            # Short text and literals inline (most values of a record): no call each.
            item_kind = type(item)
            short_text = item_kind is str and len(item) <= MAX_STRING_CHARS
            literal = item is None or item_kind is bool or item_kind is int
            result[key] = item if short_text or literal else _plain_uncut(item)
        return result
    if kind is list or kind is tuple:
        if len(value) > MAX_ITEMS:
            raise _NeedsPaths
        return [
            item if type(item) is str and len(item) <= MAX_STRING_CHARS else _plain_uncut(item)
            for item in value
        ]
    raise _NeedsPaths


def canonical(value: Any) -> bytes:
    """The one serialisation: sorted keys, compact, ASCII only, no NaN."""
    return _CANONICAL.encode(value)


# One encoder for every record; audit data is plain data (`plain`), never cyclic: a
# cycle fails as RecursionError rather than ValueError, and is still not written. The
# standard library's bytes, written by orjson where they are provably the same
# (`bastion.engine.jsontext`).
_CANONICAL = CanonicalEncoder(allow_nan=False)


def format_time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"audit times must be timezone-aware, got {at!r}")
    utc = at.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad the year to 4 digits; isoformat does
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # `strftime("%Y-%m-%dT%H:%M:%S.%fZ")`, the same text: isoformat skips the C library's
    # strftime (and its time zone look-up), written once per audit record.
    return utc.isoformat(timespec="microseconds")[:26] + "Z"


def label(text: str, path: str, cuts: list[str]) -> str:
    if len(text) <= MAX_LABEL_CHARS:
        return text
    cuts.append(f"{path} ({len(text)} chars)")
    return text[:MAX_LABEL_CHARS] + "…"


def _cut_items(path: str, count: int, cuts: list[str]) -> dict[str, Any]:
    cuts.append(f"{path} ({count} items)")
    return {}
