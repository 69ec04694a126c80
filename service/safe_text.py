"""Text the service may keep: refuse what cannot be written to a file or a log.

A JSON body may carry a lone surrogate ("\\ud800") or a control character ("\\u0000")
as an escape; Python decodes either into a `str` that later fails to encode (every
state save would raise UnicodeEncodeError) or garbles a log line. The service refuses
such text where it enters (422, nothing applied), in the HTTP front and again in each
`Service` method that keeps what it is given (defence in depth).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from typing import Any

MAX_REPORTED = 5  # problems named in one answer


def text_problems(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, message) for every string (key or value) in `value` that cannot be kept:
    a lone surrogate, or a control character (tab and newline included: none of the
    fields the service keeps is multi-line). Empty when all text is fine."""
    problems = []
    for where, text in _strings(value, path):
        message = problem(text)
        if message is not None:
            problems.append((where, message))
            if len(problems) == MAX_REPORTED:
                break
    return problems


def problem(text: str) -> str | None:
    """Why `text` cannot be kept, or None."""
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cs":
            return f"lone surrogate U+{ord(char):04X} at character {index}: not text"
        if category == "Cc":
            return f"control character U+{ord(char):04X} at character {index}: not allowed"
    return None


def body_problems(text: str) -> list[tuple[str, str]]:
    """`text_problems` of a JSON body, parsed only when it has a \\u escape (raw control
    characters are refused by the JSON parser, raw surrogates by UTF-8 decoding): the
    order hot path pays a substring search, not a second parse."""
    if "\\u" not in text:
        return []
    try:
        data = json.loads(text)
    except ValueError:  # the caller's own parser names the place
        return []
    return text_problems(data)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path or "body", value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{_shown(key)}" if path else _shown(key)
            yield where, str(key)
            yield from _strings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _shown(key: Any) -> str:
    """A key as a path shows it: never the bad characters themselves."""
    text = str(key)
    return text if problem(text) is None else repr(text.encode("utf-8", "backslashreplace"))
