"""The audit record's size check is skipped when the repr bound shows the data is surely
under the limit: the bound must hold for any JSON-plain data, and data over the limit is
still replaced by its digest."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.service.audit_plain import (
    _ASCII_JSON_GROWTH,
    MAX_RECORD_BYTES,
    OVERSIZE_KEY,
    bounded,
    canonical,
)

_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=("Cs",))
)
_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _PLAIN, max_size=5))
def test_bound_when_any_plain_data_then_canonical_json_within_repr_times_growth(
    data: dict[str, Any],
) -> None:
    """Astral characters, controls, quotes, numbers: never longer than the bound says."""
    assert len(canonical(data)) <= _ASCII_JSON_GROWTH * len(repr(data))


def test_bounded_when_data_over_the_limit_then_only_its_digest_is_kept() -> None:
    """Many strings just under the cut, together over the record limit: a digest."""
    data = {f"k{i}": "x" * 1_900 for i in range(MAX_RECORD_BYTES // 1_900 + 2)}
    kept = bounded(data, [])
    assert list(kept) == [OVERSIZE_KEY]


def test_bounded_when_data_small_then_kept_as_plain_data() -> None:
    """An order check's size of record is kept whole, as it was."""
    data = {"request": {"symbol": "SPY", "target_size": 10}, "reasons": ["ok"]}
    assert bounded(data, []) == data
