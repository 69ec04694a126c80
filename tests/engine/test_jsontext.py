"""Canonical JSON (`bastion.engine.jsontext`): orjson's fast path gives the standard
library's bytes for every value, or the standard library writes (or refuses) it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.jsontext import CanonicalEncoder

ALLOWING = CanonicalEncoder(allow_nan=True)
STRICT = CanonicalEncoder(allow_nan=False)


def reference(value: Any, *, allow_nan: bool) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan, check_circular=False
    ).encode("ascii")


# Text that stresses the escapes: control characters, DEL, quotes, backslashes, BMP and
# astral characters, lone surrogates, and text that looks like a number after a colon.
TEXT = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.characters(min_codepoint=0, max_codepoint=0x7F),
            st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF),
            st.sampled_from(["\ud800", "\udfff", '"', "\\", "\u2028", "\x7f"]),
        ),
        max_size=12,
    ),
    st.sampled_from([":1e5", "a,2.5", "[3E"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(TEXT, inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(JSON_VALUES)
def test_canonical_when_plain_value_then_same_bytes_as_json(value: Any) -> None:
    """Any JSON-plain value: the same bytes as `json.dumps(..., sort_keys=True, compact)`."""
    assert ALLOWING.encode(value) == reference(value, allow_nan=True)
    assert STRICT.encode(value) == reference(value, allow_nan=False)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1e-05, "b": 1e16, "c": 0.1},  # floats orjson writes otherwise
        {"z": "x", "a": {"é": "→", "😀": ["\x7f", "\x1f", "\ud800"]}},
        {"big": 2**64, "small": -(2**63) - 1},
        {"time": "12:30.5", "n": [1, 2.5]},
        [],
        {},
    ],
)
def test_canonical_when_edge_value_then_same_bytes_as_json(value: Any) -> None:
    """Floats, non-ASCII and DEL, integers beyond 64 bits: the standard library's bytes."""
    assert STRICT.encode(value) == reference(value, allow_nan=False)


def test_canonical_when_keys_not_text_then_converted_as_json_does() -> None:
    """Integer keys: written as `json` writes them (orjson refuses them)."""
    value = {2: "a", 1: "b"}
    assert ALLOWING.encode(value) == reference(value, allow_nan=True)


def test_canonical_when_nan_and_not_allowed_then_value_error() -> None:
    """A NaN next to another float is refused as `json` refuses it (allow_nan=False)."""
    with pytest.raises(ValueError):
        STRICT.encode({"a": math.nan, "b": 1.5})
    assert ALLOWING.encode({"a": math.inf, "b": 1.5}) == b'{"a":Infinity,"b":1.5}'


@dataclass
class _Record:
    x: int


@pytest.mark.parametrize(
    "value", [{"t": datetime(2026, 1, 1, tzinfo=UTC)}, {"d": Decimal("1.5")}, {"r": _Record(1)}]
)
def test_canonical_when_not_plain_then_type_error_as_json(value: Any) -> None:
    """Times, Decimals and dataclasses are not plain data: refused, as `json` refuses them
    (orjson would have written the time and the dataclass)."""
    with pytest.raises(TypeError):
        STRICT.encode(value)
