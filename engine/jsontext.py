"""Canonical JSON text at orjson's speed, byte for byte what the standard library writes.

Two things are hashed as canonical JSON — a decision's content (its id, `decision.py`)
and an audit record (its chain, `service/audit_plain.py`) — in one form: keys sorted,
no spaces, ASCII only (`json.dumps(value, sort_keys=True, separators=(",", ":"))`).
Writing them was a tenth of what an order check costs the service; orjson writes the
same text in a tenth of the time (with the checks below, about a third). Not the same
text in every case, though, so orjson is used only where its bytes are provably the
standard library's:

- text: orjson writes UTF-8 and escapes quotes, backslashes and control characters as
  `json` does (`\\n`, `\\u001f`, lowercase hex); DEL and every non-ASCII character are
  then escaped here as `json` escapes them with `ensure_ascii` (`\\u007f`, surrogate
  pairs above U+FFFF);
- numbers: whole numbers are written alike; a float may not be (`1e-05` against
  `0.00001`, and NaN as `null`): any output that may hold a float — a fraction or an
  exponent right before a `,`, `}` or `]`, as every float in a container ends — is
  written again by `json` (a float alone, too). Text that merely looks like that only
  costs the slower path;
- anything orjson refuses (keys that are not text, integers beyond 64 bits) or turns
  into text that `json` would refuse (times, dataclasses): written by `json`, which
  converts or raises exactly as before.

A NaN or an infinity orjson writes as `null`, with no float left to see; the values
hashed here never hold one (the audit turns them into text first, `audit_plain.plain`;
decisions carry Decimals as text), and tests/engine/test_jsontext.py compares both writers on
generated values.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

import orjson

# How orjson ends a float that stands as a value: a fraction (`.5`) or an exponent
# (`e-7`, `e+16`) right before the `,`, `}` or `]` that follows every value but the
# whole document. Each pattern starts with a literal, so the scan runs at C speed and
# stops only at dots and e's; text that looks like one inside a string (".5]", "e-1,")
# only costs the slower path.
_FRACTION_END = re.compile(rb"\.[0-9]+[,}\]]")
_EXPONENT_END = re.compile(rb"e[-+]?[0-9]+[,}\]]")
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | (orjson.OPT_PASSTHROUGH_DATACLASS)
)
_ESCAPE_ERRORS = "bastion-json-ascii"


def _refuse(value: Any) -> Any:
    raise TypeError(f"not plain JSON data: {type(value).__name__}")


def _escape(error: UnicodeError) -> tuple[str, int]:
    """The `ensure_ascii` escapes of the characters ASCII cannot encode: `\\uXXXX`,
    lowercase hex, a surrogate pair above U+FFFF."""
    assert isinstance(error, UnicodeEncodeError)
    escaped = []
    for character in error.object[error.start : error.end]:
        code = ord(character)
        if code < 0x10000:
            escaped.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            escaped.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
    return "".join(escaped), error.end


codecs.register_error(_ESCAPE_ERRORS, _escape)


def _may_hold_float(text: bytes) -> bool:
    """Whether orjson's `text` (a container) may hold a float (`_FRACTION_END`)."""
    return _FRACTION_END.search(text) is not None or _EXPONENT_END.search(text) is not None


class CanonicalEncoder:
    """`encode(value) -> bytes`: `json.JSONEncoder(sort_keys=True, separators=(",", ":"),
    allow_nan=..., check_circular=False).encode(value)` as ASCII bytes."""

    def __init__(self, *, allow_nan: bool = True) -> None:
        self._json = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), allow_nan=allow_nan, check_circular=False
        )

    def encode(self, value: Any) -> bytes:
        try:
            fast = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
        except TypeError:  # not text keys, big integers, a type json may convert or refuse
            return self.slow(value)
        if type(value) is float or _may_hold_float(fast):
            return self.slow(value)
        if not fast.isascii():
            fast = fast.decode("utf-8").encode("ascii", _ESCAPE_ERRORS)
        if b"\x7f" in fast:  # DEL: ASCII, yet escaped by `ensure_ascii`
            fast = fast.replace(b"\x7f", b"\\u007f")
        return fast

    def slow(self, value: Any) -> bytes:
        """The standard library's text (the reference the fast path is held to)."""
        return self._json.encode(value).encode("ascii")
