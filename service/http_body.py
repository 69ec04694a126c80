"""What the HTTP front checks in a JSON body before any view sees it.

Every POST body is parsed once here, with hooks that look at each number's text before
Python turns it into a value (`json.loads(parse_float=..., parse_int=...,
parse_constant=...)`), then walked once. It is refused (422, nothing applied) when:

- it is not UTF-8, not JSON, or has a duplicate key (said as the views say it);
- a number is not finite (`NaN`, `Infinity`, `1e999999`), has more than 20 significant
  digits, is 1e15 or more in magnitude, or has digits beyond the 20th decimal place;
- a string or a key holds a lone surrogate or a control character (`safe_text`), a
  string is over 8,192 characters, a key over 128;
- it nests deeper than 16 levels or holds more than 2,048 values.

The views then get the original bytes and parse them their own way: what passed here
is plain JSON their parsers agree on. The messages name the field and never repeat more
than a few dozen characters of the client's text, so no answer or log line grows with
the input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.service.safe_text import problem as text_problem

MAX_SIGNIFICANT_DIGITS = 20
MAX_DECIMAL_PLACES = 20
MAX_MAGNITUDE_EXPONENT = 15  # |x| < 1e15
MAX_NUMBER_CHARS = 64  # a number's text over this is refused before it is converted
MAX_STRING_CHARS = 8192
MAX_KEY_CHARS = 128
MAX_DEPTH = 16
MAX_VALUES = 2048
MAX_PROBLEMS = 5  # named in one answer
_SHOWN_CHARS = 24  # of a client's number, in a message


@dataclass(frozen=True, slots=True)
class BodyRefused:
    """Why a body is refused: one message and the fields at fault (path, message)."""

    message: str
    errors: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "errors": [{"path": path, "message": message} for path, message in self.errors],
        }


@dataclass(frozen=True, slots=True)
class _BadNumber:
    """What a parse hook returns for a number the front refuses (found by the walk)."""

    reason: str


class _DuplicateKey(Exception):  # not a ValueError: json.loads must not wrap it
    pass


def check_json_body(body: bytes) -> tuple[Any, BodyRefused | None]:
    """(the parsed body, None) when it may reach a view, else (None, why not). An empty
    body (whitespace only) is (None, None): the route decides what that means."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, BodyRefused(f"body: not UTF-8 text ({error.reason})")
    if not text.strip():
        return None, None
    try:
        data = json.loads(
            text,
            parse_float=_number,
            parse_int=_number,
            parse_constant=_constant,
            object_pairs_hook=_pairs,
        )
    except json.JSONDecodeError as error:
        return None, BodyRefused(f"body:{error.lineno}:{error.colno}: invalid JSON: {error.msg}")
    except _DuplicateKey as error:
        return None, BodyRefused(f"body: invalid JSON: duplicate key {error}")
    except RecursionError:
        return None, BodyRefused("body: invalid JSON: nested too deeply")
    # Text to look at when the body has an escape (`\\n`, `\\u0000`, `\\ud800`...) or a raw
    # DEL / C1 control. Raw C0 controls are refused by the parser and raw surrogates by
    # UTF-8 decoding: a body with neither (an order, as a rule) has its strings' lengths
    # checked, no more.
    problems = _Walk(_SUSPECT.search(text) is not None).problems(data)
    if problems:
        listed = "".join(f"\n  {path}: {message}" for path, message in problems)
        count = f"{len(problems)} problem(s)" if len(problems) < MAX_PROBLEMS else "problems"
        return None, BodyRefused(f"body: refused, {count}:{listed}", tuple(problems))
    return data, None


def _number(text: str) -> Decimal | _BadNumber:
    shown = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
    if len(text) > MAX_NUMBER_CHARS:
        return _BadNumber(f"number {shown} is {len(text)} characters long; send a plain decimal")
    try:
        value = Decimal(text)
    except InvalidOperation:  # an exponent beyond what decimal holds: not finite for us
        return _BadNumber(f"number {shown} is out of range")
    if not value.is_finite():
        return _BadNumber(f"number {shown} is not finite")
    # No arithmetic here (abs, normalize): on an exponent like 1e999999999 it would
    # overflow the context. The digits and the exponent say it all.
    _sign, digits, exponent = value.as_tuple()
    if not any(digits):
        return value  # zero, whatever its exponent
    trailing = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    significant, exponent = len(digits) - trailing, int(exponent) + trailing
    if value.adjusted() >= MAX_MAGNITUDE_EXPONENT:
        return _BadNumber(f"number {shown} is out of range (magnitude under 1e15)")
    if significant > MAX_SIGNIFICANT_DIGITS:
        limit = MAX_SIGNIFICANT_DIGITS
        return _BadNumber(f"number {shown} has {significant} significant digits (at most {limit})")
    if exponent < -MAX_DECIMAL_PLACES:
        return _BadNumber(f"number {shown} has digits beyond the 20th decimal place")
    return value


def _constant(text: str) -> _BadNumber:
    return _BadNumber(f"{text} is not a number JSON allows")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(json.dumps(key[:MAX_KEY_CHARS]))
        result[key] = value
    return result


_SUSPECT = re.compile("[\\\\\x7f-\x9f]")  # a backslash (any escape), DEL, C1

# A place in the body: () is the body itself, then keys (str) and list indexes (int).
_Path = tuple[str | int, ...]


class _Walk:
    """One pass over the parsed body: numbers, text, sizes; the first few problems.
    A value's place is written out only for a problem (`_shown`)."""

    def __init__(self, look_at_text: bool = True) -> None:
        self.found: list[tuple[str, str]] = []
        self.values = 0
        self.look_at_text = look_at_text

    def problems(self, data: Any) -> list[tuple[str, str]]:
        self._visit(data, (), 1)
        return self.found[:MAX_PROBLEMS]

    def _note(self, path: _Path, message: str) -> None:
        self.found.append((_shown(path) or "body", message))

    def _visit(self, value: Any, path: _Path, depth: int) -> None:
        if len(self.found) >= MAX_PROBLEMS:
            return
        self.values += 1
        if self.values == MAX_VALUES + 1:
            self._note((), f"more than {MAX_VALUES} values; send one request per call")
        if depth > MAX_DEPTH:
            self._note(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        if isinstance(value, _BadNumber):
            self._note(path, value.reason)
        elif isinstance(value, str):
            self._text(value, path, MAX_STRING_CHARS, "string")
        elif isinstance(value, dict):
            for key, item in value.items():
                where = (*path, key)
                if self._text(key, where, MAX_KEY_CHARS, "key"):
                    self._visit(item, where, depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._visit(item, (*path, index), depth + 1)

    def _text(self, text: str, path: _Path, limit: int, what: str) -> bool:
        if len(text) > limit:
            self._note(path, f"{what} of {len(text)} characters (at most {limit})")
            return False
        message = text_problem(text) if self.look_at_text else None
        if message is not None:
            self._note(path, message)
            return False
        return True


def _shown(path: _Path) -> str:
    """A place as the views name fields (`a.b[0]`); a key too long or with characters
    that cannot be kept is shown as <key>, never the characters themselves."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text = f"{text}[{part}]"
        else:
            shown = part if len(part) <= MAX_KEY_CHARS and text_problem(part) is None else "<key>"
            text = f"{text}.{shown}" if text else shown
    return text
