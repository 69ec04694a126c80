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
from functools import partial
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
        self._kinds = dict(kinds)
        self._sparse: dict[frozenset[tuple[str, frozenset[Any]]], _Encode] = {}

    def sparse(self, omittable: Mapping[str, frozenset[Any]]) -> _Encode:
        """A fast path that leaves out a bool or string field whose value is none of the
        constants every rule reading it compares it with by equality
        (`equality_only_fields`): no rule can hold on it, present or not, and the
        engine reads fewer fields (a false flag, an ACTIVE trading state). Raises on
        anything unusual, like the fast path: fall back to `encode`."""
        key = frozenset(omittable.items())
        fast = self._sparse.get(key)
        if fast is None:
            fast = self._sparse[key] = _compile_fast(self._fields, self._kinds, omittable)
        return fast

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


def equality_only_fields(
    definition: Mapping[str, Any], keys: Mapping[str, str]
) -> dict[str, frozenset[Any]]:
    """The fact fields (paths) that every condition of a durable-rules `definition`
    compares only by equality with bool or string constants, with those constants: a
    value that is none of them and a missing field match alike (nothing), so
    `FactEncoder.sparse` may leave such a value out."""
    constants: dict[str, set[Any]] = {}
    other_keys: set[str] = set()

    def walk(condition: Any) -> None:
        if isinstance(condition, list):
            for item in condition:
                walk(item)
            return
        if not isinstance(condition, Mapping):
            return
        for key, value in condition.items():
            if key in ("$and", "$or", "all", "any", "m"):
                walk(value)
            elif key.startswith("$"):  # an operator: {"$gt": {"f3": 1.0}}
                if isinstance(value, Mapping):
                    other_keys.update(value)
            elif isinstance(value, bool | str):
                constants.setdefault(key, set()).add(value)
            else:
                other_keys.add(key)

    for rule in definition.values():
        if isinstance(rule, Mapping):
            walk(rule.get("all"))
            walk(rule.get("any"))
    return {
        path: frozenset(constants[key])
        for path, key in keys.items()
        if key in constants and key not in other_keys
    }


def _compile_fast(
    fields: Sequence[_Field],
    kinds: Mapping[str, Kind],
    sparse: Mapping[str, frozenset[Any]] | None = None,
) -> _Encode:
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
    sparse = sparse or {}
    namespace: dict[str, Any] = {}
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
        omitted = sparse.get(field.path)  # `FactEncoder.sparse`: the values compared
        if kinds[field.path] is Kind.STRING:
            lines += [f"    if type(o{n}) is not str:", "        raise _BadValue"]
            if omitted is None:
                pieces += [repr(field.prefix), f"_quote(o{n})"]
            else:  # none of the compared strings: left out
                namespace[f"_compared{n}"] = frozenset(v for v in omitted if isinstance(v, str))
                pieces.append(f'({field.prefix!r} + _quote(o{n}) if o{n} in _compared{n} else "")')
        elif omitted == frozenset({True}):  # false: left out
            lines += [f"    if type(o{n}) is not bool:", "        raise _BadValue"]
            pieces.append(f'({field.prefix + "true"!r} if o{n} else "")')
        elif omitted == frozenset({False}):  # true: left out
            lines += [f"    if type(o{n}) is not bool:", "        raise _BadValue"]
            pieces.append(f'("" if o{n} else {field.prefix + "false"!r})')
        else:
            lines += [f"    if type(o{n}) is not bool:", "        raise _BadValue"]
            pieces += [repr(field.prefix), f'("true" if o{n} else "false")']
    lines.append(f"    return {' + '.join(pieces)} + '}}'")
    namespace |= {
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


# -- match_one's memo: which facts the engine cannot tell apart ---------------------------

# A Decimal this close to a threshold (relative, or absolute near zero) is placed as the
# double the engine reads (`float`: slower); the margin is far wider than a double's
# rounding (~1.1e-16 relative), so a Decimal outside it is on the same side of the
# threshold as a double as it is exactly (compared as Decimals: cheap).
MARGIN = Decimal("1e-9")
_TINY = Decimal("1e-300")  # a non-zero value below this may underflow: the engine decides
_BIG = Decimal("1e300")  # beyond this a value may not fit in a double: the engine decides
_EXACT_INT = 2**53  # every int up to this is a double exactly
_Classify = Callable[[Mapping[str, Any]], tuple[Any, ...]]


def _nearest_class(thresholds: tuple[float, ...], value: Decimal) -> int:
    """The class of a Decimal near a threshold, as the engine sees it: the nearest
    double (what the encoder's digits are read as), compared with each threshold's
    double exactly. A non-zero value that may round to 0 raises (the engine refuses)."""
    if value and -_TINY < value < _TINY:
        raise _BadValue
    seen = float(value)
    for g, threshold in enumerate(thresholds):
        if seen < threshold:
            return 2 * g
        if seen == threshold:
            return 2 * g + 1
    return 2 * len(thresholds)


def compared_constants(definition: Mapping[str, Any]) -> dict[str, set[Any]] | None:
    """Per field key of a durable-rules `definition`, every constant a rule compares it
    with (any operator); None when a rule compares a field with another field (`$m`),
    whose value no constant bounds. The sentinel rule's fact index ``i`` is left out."""
    constants: dict[str, set[Any]] = {}
    other = False

    def walk(condition: Any) -> None:
        nonlocal other
        if isinstance(condition, list):
            for item in condition:
                walk(item)
            return
        if not isinstance(condition, Mapping):
            return
        for key, value in condition.items():
            if key in ("all", "any", "m") or key.startswith("$"):  # {"$gt": {"f3": 1.0}}
                walk(value)
            elif isinstance(value, Mapping | list):  # {"f3": {"$m": "f4"}}: another field
                other = True
            elif key != "i":
                constants.setdefault(key, set()).add(value)

    for rule in definition.values():
        if isinstance(rule, Mapping):
            walk(rule.get("all"))
            walk(rule.get("any"))
    return None if other else constants


def classifier(
    definition: Mapping[str, Any],
    keys: Mapping[str, str],
    kinds: Mapping[str, Kind],
    *,
    margin: Decimal = MARGIN,
) -> _Classify | None:
    """A function giving, for a fact, a key that facts the rules engine cannot tell
    apart share: for each compared number, its class among the thresholds compared with
    it (`_number_lines`); for each bool and string, the value itself. Every comparison
    in the rules (`>`, `>=`, `<`, `<=`, `==`, `!=` with a constant) has the same outcome
    for two facts with the same key, so the rules that fire are the same. A value of
    another type than the fast encoder takes, non-finite, too large or too small for a
    double: it raises (the caller sends the fact to the engine, which decides or says
    what is wrong). None when some rule compares two fields of the fact (no constant
    bounds them).

    The function's code depends only on the fields and how many thresholds each has;
    the thresholds are data (`b`), so rulesets whose thresholds are parameters share one
    code object for every policy's values (kept warm by the interpreter)."""
    constants = compared_constants(definition)
    if constants is None:
        return None
    bounds: list[Any] = []
    lines = ["def make(b):", "    def classify(fact):"]
    parts = []
    for n, (path, key) in enumerate(sorted(keys.items(), key=lambda item: item[1])):
        if key not in constants:
            continue  # compared by no rule left (cannot happen for a compiled ruleset)
        lookup = "fact" + "".join(f"[{part!r}]" for part in path.split("."))
        kind = kinds[path]
        if kind is Kind.BOOL:
            field = [f"k{n} = {lookup}", f"if type(k{n}) is not bool:", "    raise _Unclassified"]
        elif kind is Kind.STRING:
            field = [f"k{n} = {lookup}", f"if type(k{n}) is not str:", "    raise _Unclassified"]
        else:
            thresholds = sorted({Decimal(t) for t in constants[key]})
            field = [line[4:] for line in _number_lines(n, lookup, thresholds, margin, bounds)]
        lines += ["        " + line for line in field]
        parts.append(f"k{n}")
    lines.append(f"        return ({''.join(part + ', ' for part in parts)})")
    lines.append("    return classify")
    source = "\n".join(lines)
    make = _MAKERS.get(source)
    if make is None:
        namespace = dict(_CLASSIFY_GLOBALS)
        exec(source, namespace)
        make = namespace["make"]
        if len(_MAKERS) >= _MAX_MAKERS:
            _MAKERS.clear()
        _MAKERS[source] = make
    classify: _Classify = make(tuple(bounds))
    return classify


_MAKERS: dict[str, Callable[[tuple[Any, ...]], _Classify]] = {}  # by source: shared code
_MAX_MAKERS = 1024
_CLASSIFY_GLOBALS: dict[str, Any] = {
    "Decimal": Decimal,
    "_Unclassified": _BadValue,
    "_EXACT_INT": 2**53,
    "_inf": float("inf"),
}


def _number_lines(
    n: int, lookup: str, thresholds: list[Decimal], margin: Decimal, bounds: list[Any]
) -> list[str]:
    """The class of one numeric field's value: 2g for the open gap g between thresholds
    g-1 and g, 2g+1 for threshold g itself.

    - A float is read by the engine as that very double (`repr`), and an int up to 2**53
      converts to a double exactly: compared exactly, each threshold is a class of its
      own (the thresholds are doubles, and ints up to 2**53 or only then compared so).
    - A Decimal becomes the nearest double (`float`, what the encoder's digits are
      read as): a value outside every threshold's `margin` is in a gap, compared as
      Decimals (cheap); one within a margin is converted and compared as the engine
      compares it (`_nearest_class`); a huge or tiny one raises (the engine refuses it).
    """
    exact = all(t == float(t) and abs(t) <= _EXACT_INT for t in thresholds)

    def bound(value: Any) -> str:  # the value's place in `b`, the classifier's data
        bounds.append(value)
        return f"b[{len(bounds) - 1}]"

    lines = [f"    v = {lookup}", "    t = type(v)", "    if t is Decimal:"]
    # Decimal: gap g lies between threshold g-1 (+ margin) and threshold g (- margin).
    edges: list[tuple[Decimal, Decimal]] = []  # (lower, upper), exclusive
    lower = -_BIG
    for threshold in thresholds:
        width = max(abs(threshold) * margin, _TINY)
        edges.append((lower, threshold - width))
        lower = threshold + width
    edges.append((lower, _BIG))
    tiny = bound(_TINY)
    near = bound(partial(_nearest_class, tuple(float(t) for t in thresholds)))
    for g, (low, high) in reversed(list(enumerate(edges))):
        lo, hi = bound(low), bound(high)
        branch = "if" if g == len(edges) - 1 else "elif"
        lines += [f"        {branch} v > {lo}:", f"            if not v < {hi}:"]
        if g == len(edges) - 1:
            lines.append("                raise _Unclassified")  # huge
        else:  # within the margin of threshold g
            lines.append(f"                k{n} = {near}(v)")
            lines.append("            else:")
        indent = "                " if g != len(edges) - 1 else "            "
        if low < 0 < high:  # a non-zero value this small may round to 0
            lines += [
                f"{indent}if v < {tiny} and v > -{tiny} and v:",
                f"{indent}    raise _Unclassified",
            ]
        lines.append(f"{indent}k{n} = {2 * g}")
    lines += ["        else:", "            raise _Unclassified"]  # huge and negative
    if not exact:  # a threshold no double or int holds exactly: the engine decides
        lines += ["    else:", "        raise _Unclassified"]
        return lines
    lines.append("    elif t is float or (t is int and -_EXACT_INT <= v <= _EXACT_INT):")
    count = len(thresholds)
    for g in reversed(range(count)):
        value = thresholds[g]
        at = bound(int(value) if value == int(value) else float(value))
        branch = "if" if g == count - 1 else "elif"
        lines += [f"        {branch} v > {at}:"]
        if g == count - 1:
            lines += ["            if v == _inf:", "                raise _Unclassified"]
        lines += [
            f"            k{n} = {2 * g + 2}",
            f"        elif v == {at}:",
            f"            k{n} = {2 * g + 1}",
        ]
    lines += [
        f"        {'elif' if count else 'if'} v > -_inf:",
        f"            k{n} = 0",
        "        else:",
        "            raise _Unclassified",  # -inf, NaN
        "    else:",
        "        raise _Unclassified",
    ]
    return lines
