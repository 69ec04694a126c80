"""Text the service may keep: refuse what cannot be written to a file or a log.

A JSON body may carry a lone surrogate ("\\ud800") or a control character ("\\u0000")
as an escape; Python decodes either into a `str` that later fails to encode (every
state save would raise UnicodeEncodeError) or garbles a log line. The service refuses
such text where it enters (422, nothing applied), in the HTTP front and again in each
`Service` method that keeps what it is given (defence in depth).
"""

from __future__ import annotations

import json
import re
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


# Unicode's categories Cc (control: U+0000-001F, U+007F-009F) and Cs (surrogates): one
# regex search per string on the order hot path, not a category lookup per character.
_UNKEEPABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def problem(text: str) -> str | None:
    """Why `text` cannot be kept, or None."""
    found = _UNKEEPABLE.search(text)
    if found is None:
        return None
    char, index = found.group(), found.start()
    if "\ud800" <= char <= "\udfff":
        return f"lone surrogate U+{ord(char):04X} at character {index}: not text"
    return f"control character U+{ord(char):04X} at character {index}: not allowed"


# What may hide unkeepable text in a JSON body: any escape ("\\u0000", "\\n", "\\t")
# or a raw DEL / C1 character (the JSON parser refuses only raw U+0000-001F; raw
# surrogates never get past UTF-8 decoding).
_SUSPECT = re.compile("[\\\\\x7f-\x9f]")


def body_problems(text: str) -> list[tuple[str, str]]:
    """`text_problems` of a JSON body, parsed only when it has an escape or a raw DEL /
    C1 character: the order hot path pays one regex search, not a second parse."""
    if _SUSPECT.search(text) is None:
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
