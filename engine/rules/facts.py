"""Facts encoded for the engine: only the compared fields, checked, as one JSON object.

Each fact becomes ``{"i":<index>,"f0":...,"f1":...}``: its position in the batch and
the fields the rules compare, under short keys (never escaped, never clashing with
durable-rules' ``$`` operators). Every value is checked against the kind its rules
compare it to; numbers are written so that the C parser (glibc `atof`) reads the double
Python would: a float as its `repr` (``.0`` added before a bare exponent, which the
parser misreads), a Decimal as its exact digits (rounded by the parser exactly as
`float(value)` rounds them — the thresholds went through `float` — without a float
round trip in Python, the costliest part of a fact).

Well-formed facts take a fast path: a function generated for the ruleset's fields
reads and type-checks each one inline and writes them with one %-format. Anything
unusual falls back to the checked path, which either encodes the fact field by field
(the same text) or raises RuleEngineError naming ``facts[i].<field path>``.
"""

from __future__ import annotations

import json
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


class _BadValue(Exception):
    """Raised by an encoder; the caller adds the fact index and field path."""


def _encode_number(value: object) -> str:
    try:
        if isinstance(value, float):
            return encode_float(finite_float(value))
        if isinstance(value, Decimal):
            text = str(value)  # exact digits: the engine rounds them as `float` would
            if "E" not in text and len(text) <= 40 and text[-1].isdigit():
                return text if "." in text else text + ".0"
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


_Encode = Callable[[int, Mapping[str, Any]], str]


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
        self._fast = _compile_fast(self._fields, kinds)

    def encode(self, index: int, fact: Mapping[str, Any]) -> str:
        """The fact as engine JSON; the fast path handles well-formed facts in one call."""
        try:
            return self._fast(index, fact)
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


def _compile_fast(fields: Sequence[_Field], kinds: Mapping[str, Kind]) -> _Encode:
    """A function written for these fields, as `dataclasses` writes `__init__`.

    It reads each field with plain indexing and checks its type inline. A Decimal is
    written as its own exact digits (``str``; ``.0`` added to a whole number, so the
    engine reads a double, as `float` would give): the engine's parser (glibc `atof`)
    rounds them to the nearest double, exactly what `float(value)` gives and what the
    thresholds went through — without a float round trip in Python, the costliest part
    of a fact. Digits with an exponent, more than 40 characters (an overflow or an
    underflow is possible), NaN or an infinity, anything unusual: raise, and `encode`
    falls back to the checked path. Field names enter the source only as `repr`
    literals.
    """
    lines = ["def fast(index, fact):"]
    numbers = [field for field in fields if kinds[field.path] is Kind.NUMBER]
    for n, field in enumerate(numbers):
        lookup = "fact" + "".join(f"[{part!r}]" for part in field.parts)
        lines += [
            f"    v = {lookup}",
            "    t = type(v)",
            "    if t is Decimal:",
            f"        n{n} = str(v)",
            f"        if 'E' in n{n} or len(n{n}) > 40 or not n{n}[-1].isdigit():",
            "            raise _BadValue",
            f"        if '.' not in n{n}:",
            f"            n{n} += '.0'",
            "    elif t is float:",
            "        if v - v != 0:",  # NaN or an infinity
            "            raise _BadValue",
            f"        n{n} = repr(v)",
            f"        if 'e' in n{n}:",
            f"            n{n} = _encode_float(v)",  # 1e-05 -> 1.0e-05
            "    elif t is int and INT64_MIN <= v <= INT64_MAX:",
            f"        n{n} = str(v)",
            "    else:",
            "        raise _BadValue",
        ]
    names = "".join(f"n{n}, " for n in range(len(numbers)))
    number_format = '{"i":%d' + "".join(f"{field.prefix}%s" for field in numbers)
    lines.append(f"    text = {number_format!r} % (index, {names})")
    pieces = ["text"]
    for n, field in enumerate(fields[len(numbers) :]):
        lookup = "fact" + "".join(f"[{part!r}]" for part in field.parts)
        lines.append(f"    o{n} = {lookup}")
        if kinds[field.path] is Kind.STRING:
            lines += [f"    if type(o{n}) is not str:", "        raise _BadValue"]
            pieces += [repr(field.prefix), f"_quote(o{n})"]
        else:
            lines += [f"    if type(o{n}) is not bool:", "        raise _BadValue"]
            pieces += [repr(field.prefix), f'("true" if o{n} else "false")']
    lines.append(f"    return {' + '.join(pieces)} + '}}'")
    namespace: dict[str, Any] = {
        "Decimal": Decimal,
        "INT64_MIN": INT64_MIN,
        "INT64_MAX": INT64_MAX,
        "_BadValue": _BadValue,
        "_encode_float": encode_float,
        "_quote": _quote,
    }
    exec("\n".join(lines), namespace)
    fast: _Encode = namespace["fast"]
    return fast


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
