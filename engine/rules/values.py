"""Values on their way into durable-rules: checked in Python, written as JSON its C parser reads.

What the C engine does with values that are not checked first (measured, 2.0.28):

- a float with an exponent but no decimal point (``1e-05``, ``1e+16``: what `repr` and
  `json.dumps` print) is refused with error 204; ``1.0e-05`` is read exactly;
- ``Infinity`` is refused (error 202); ``NaN`` is read as null, so every comparison with
  it is silently false;
- `Decimal` is refused by `json.dumps`; integers beyond 64 bits saturate in `atoll`;
- a string compared with a number is compared as text (``"99" > 100`` holds) and a bool
  with a number as 0/1 (``true >= 1`` holds).

`normalize` therefore keeps bools, numbers and strings apart, converts `Decimal` to the
nearest float once, and refuses non-finite and out-of-range numbers with an error that
names the field. `encode` writes JSON with every float in the ``1.0e-05`` form, ASCII
only (so that string equality in C is byte equality of canonical escapes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeAlias

from bastion.engine.errors import RuleEngineError

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def normalize(value: object, field: str = "value") -> JsonValue:
    """Return `value` as plain JSON data the engine compares correctly, or raise.

    Recurses into mappings (string keys only) and lists/tuples, always building new
    containers, so the result never aliases the input. `field` names the value in
    errors; nested paths extend it (``facts[2].market.atr_usd``).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        return normalize_number(value, field)
    if isinstance(value, Mapping):
        result: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RuleEngineError(f"{field}: keys must be strings, got {key!r}")
            result[key] = normalize(item, f"{field}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [normalize(item, f"{field}[{index}]") for index, item in enumerate(value)]
    raise RuleEngineError(
        f"{field}: cannot be given to the rules engine: {type(value).__name__} "
        "(use a number, bool, string, null, list or mapping)"
    )


def normalize_number(value: int | float | Decimal, field: str) -> int | float:
    """A finite int in 64-bit range, or a finite float; a Decimal becomes the nearest float."""
    if isinstance(value, bool):
        raise RuleEngineError(f"{field}: expected a number, got the bool {value}")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise RuleEngineError(f"{field}: {value} does not fit in 64 bits")
        return value
    try:
        if isinstance(value, Decimal):
            return decimal_to_float(value)
        return finite_float(value)
    except ValueError as error:
        raise RuleEngineError(f"{field}: {error}") from None


def finite_float(value: float) -> float:
    """`value` as a plain float; ValueError for NaN and infinities."""
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return float(value)


def decimal_to_float(value: Decimal) -> float:
    """The nearest float; ValueError when that is not finite or rounds a non-zero to zero."""
    if not value.is_finite():
        raise ValueError(f"must be a finite number, got {value}")
    converted = float(value)
    if math.isinf(converted):
        raise ValueError(f"{value} is too large for the rules engine")
    if converted == 0.0 and value != 0:
        raise ValueError(f"{value} is too small for the rules engine (rounds to 0)")
    return converted


def encode_float(value: float) -> str:
    """`repr`, with ``.0`` added before a bare exponent (``1e-05`` → ``1.0e-05``)."""
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}.0e{exponent}"
    return text


def encode(value: object) -> str:
    """Compact ASCII JSON for normalised data, every float written as `encode_float` does."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(key)}:{encode(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(item) for item in value) + "]"
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    raise RuleEngineError(f"cannot encode {type(value).__name__}: normalize() it first")
