"""Facts encoded for the engine: only the compared fields, checked, as one JSON object.

Each fact becomes ``{"i":<index>,"f0":...,"f1":...}``: its position in the batch and
the fields the rules compare, under short keys (never escaped, never clashing with
durable-rules' ``$`` operators). Every value is checked against the kind its rules
compare it to; numbers are written so the C parser reads them back bit for bit.

Well-formed facts take a fast path: the numeric fields are read with one
`operator.itemgetter` and written with one %-format (NaN and infinities caught by a
single sum). Anything unusual falls back to the checked path, which either encodes
the fact field by field or raises RuleEngineError naming ``facts[i].<field path>``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules.spec import Kind
from bastion.engine.rules.values import (
    INT64_MAX,
    INT64_MIN,
    decimal_to_float,
    encode_float,
    finite_float,
)

_BARE_EXPONENT = re.compile(r"(:-?\d+)e")  # 1e-05 -> 1.0e-05


class _BadValue(Exception):
    """Raised by an encoder; the caller adds the fact index and field path."""


def _encode_number(value: object) -> str:
    try:
        if isinstance(value, float):
            return encode_float(finite_float(value))
        if isinstance(value, Decimal):
            return encode_float(decimal_to_float(value))
    except ValueError as error:
        raise _BadValue(str(error)) from None
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _BadValue(f"{value} does not fit in 64 bits")
        return str(int(value))
    raise _BadValue(f"expected a number, got {_describe(value)}")


def _encode_bool(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    raise _BadValue(f"expected a bool, got {_describe(value)}")


def _encode_string(value: object) -> str:
    if isinstance(value, str):
        return _quote(value)  # = json.dumps(value): ASCII escapes, C compares canonical bytes
    raise _BadValue(f"expected a string, got {_describe(value)}")


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _describe(value: object) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"


_ENCODERS: dict[Kind, Callable[[object], str]] = {
    Kind.NUMBER: _encode_number,
    Kind.BOOL: _encode_bool,
    Kind.STRING: _encode_string,
}


@dataclass(frozen=True, slots=True)
class _Field:
    path: str
    parts: tuple[str, ...]
    prefix: str  # ',"f3":'
    encode: Callable[[object], str]


class FactEncoder:
    """Encodes facts for one ruleset: its fields (path → kind) under keys f0, f1, ..."""

    def __init__(self, kinds: Mapping[str, Kind]) -> None:
        # Numbers first: they are encoded by one %-format (see `encode`).
        paths = sorted(kinds, key=lambda path: (kinds[path] is not Kind.NUMBER, path))
        self.keys: Mapping[str, str] = {path: f"f{index}" for index, path in enumerate(paths)}
        self._fields = tuple(
            _Field(path, tuple(path.split(".")), f',"{self.keys[path]}":', _ENCODERS[kinds[path]])
            for path in paths
        )
        numbers = [field for field in self._fields if kinds[field.path] is Kind.NUMBER]
        self._others = self._fields[len(numbers) :]
        self._get_numbers = _tuple_getter([field.parts for field in numbers])
        self._number_format = '{"i":%d' + "".join(f"{field.prefix}%r" for field in numbers)

    def encode(self, index: int, fact: Mapping[str, Any]) -> str:
        """The fact as engine JSON; the fast path handles well-formed facts in one format."""
        try:
            numbers = [
                value if type(value) is float else _plain_number(value)
                for value in self._get_numbers(fact)
            ]
            total = sum(numbers)
            if total - total != 0:  # NaN or an infinity somewhere (or an overflowing sum)
                raise _BadValue
            text = self._number_format % (index, *numbers)
            if "e" in text:  # only float exponents can put an "e" here
                text = _BARE_EXPONENT.sub(r"\1.0e", text)
            for field in self._others:
                parts = field.parts
                value = fact[parts[0]] if len(parts) == 1 else _lookup(fact, parts)
                text += field.prefix + field.encode(value)
            return text + "}"
        except Exception:  # the checked path below says exactly what is wrong
            return self._encode_checked(index, fact)

    def _encode_checked(self, index: int, fact: Mapping[str, Any]) -> str:
        if not isinstance(fact, Mapping):
            raise RuleEngineError(f"facts[{index}]: expected a mapping, got {_describe(fact)}")
        pieces = ['{"i":', str(index)]
        for field in self._fields:
            try:
                value = _lookup(fact, field.parts)
                pieces.append(field.prefix)
                pieces.append(field.encode(value))
            except _BadValue as error:
                raise RuleEngineError(f"facts[{index}].{field.path}: {error}") from None
        pieces.append("}")
        return "".join(pieces)


def _plain_number(value: object) -> int | float:
    """A value `%r` writes as engine JSON: an exact int in range or a finite float."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    if type(value) is Decimal:
        return decimal_to_float(value)
    raise _BadValue  # bools, strings, subclasses, out of range: the checked path decides


def _tuple_getter(paths: Sequence[tuple[str, ...]]) -> Callable[[Any], tuple[object, ...]]:
    """Read several fields at C speed when they are all top-level keys."""
    if not paths:
        return lambda fact: ()
    if all(len(parts) == 1 for parts in paths):
        if len(paths) == 1:
            key = paths[0][0]
            return lambda fact: (fact[key],)
        return operator.itemgetter(*(parts[0] for parts in paths))
    if all(len(parts) == 2 for parts in paths):  # `group.metric`, the evaluator's shape
        if len(paths) == 1:
            ((group, name),) = paths
            return lambda fact: (fact[group][name],)
        pairs = tuple((parts[0], parts[1]) for parts in paths)
        # Plain indexing: any surprise (a missing key, a non-mapping) raises, and the
        # caller falls back to the checked path, which names the field.
        return lambda fact: tuple(fact[group][name] for group, name in pairs)
    return lambda fact: tuple(_lookup(fact, parts) for parts in paths)


def _lookup(fact: Mapping[str, Any], parts: tuple[str, ...]) -> object:
    value: object = fact
    for part in parts:
        if not isinstance(value, Mapping):
            raise _BadValue(f"expected a mapping at {part!r}, got {_describe(value)}")
        try:
            value = value[part]
        except KeyError:
            raise _BadValue("missing; every field the rules compare must be present") from None
    return value
