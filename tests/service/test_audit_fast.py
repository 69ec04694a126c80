"""The audit trail's short cuts on the order-check path: a record serialised once
(`seal` splices the hash in) and data made plain without paths (`bounded`) write the
same bytes as the long way round."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bastion.service.audit_format import content_hash, new_body, record_hmac, seal
from bastion.service.audit_plain import MAX_ITEMS, MAX_STRING_CHARS, bounded, canonical, plain

AT = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
TRICKY: dict[str, Any] = {
    "kind": "not the record's kind",
    "nested": {"kind": ',"kind":"x"', "hash": "h", "file_seq": 3, "v": [1, "two"]},
    "amount": Decimal("1.50"),
    "flags": [True, False, None],
    "text": 'quote " and \\ and ,"kind":',
}


@pytest.mark.parametrize("key", [None, b"secret"])
@pytest.mark.parametrize(
    ("kind", "principal", "subject"),
    [
        ("order_checked", "trader-1", "account:gen-01"),
        ('a,"kind":"b', None, None),
        ("k", 'p,"kind":"q"', 's,"hash":"t"'),
    ],
)
def test_seal_when_values_mimic_the_keys_then_line_is_the_canonical_record(
    key: bytes | None, kind: str, principal: str | None, subject: str | None
) -> None:
    """Strings and nested keys that look like the record's own keys do not move the
    splice: the line is `canonical` of the sealed record, hash and hmac as specified."""
    body = new_body(
        seq=7,
        file_seq=2,
        at=AT,
        kind=kind,
        principal=principal,
        subject=subject,
        data=TRICKY,
        prev="0" * 64,
    )
    line = seal(body, key)
    assert line == canonical(body) + b"\n"
    assert body["hash"] == content_hash(body)
    if key is None:
        assert "hmac" not in body
    else:
        assert body["hmac"] == record_hmac(key, body, body["hash"])


@pytest.mark.parametrize(
    "data",
    [
        TRICKY,
        {"long": "x" * (MAX_STRING_CHARS + 1)},
        {"many": list(range(MAX_ITEMS + 1))},
        {"k" * 300: 1},
        {1: "int key"},
        {"when": AT, "ratio": 0.5, "set": {"b", "a"}},
        {},
    ],
)
def test_bounded_when_data_needs_cuts_or_conversions_then_as_the_full_walk(
    data: dict[Any, Any],
) -> None:
    """Plain data takes the short cut, anything else the full walk: the same result
    and the same cuts written down either way."""
    cuts: list[str] = []
    expected = plain(data, "data", cuts)
    if cuts:
        expected["_truncated"] = cuts
    assert bounded(data, []) == expected
