"""The cerberus-free reading of plainly valid requests (`request_fast`) accepts only what
cerberus accepts, with the same values, over documents generated from the request's own
field table (valid and invalid values for every field, unknown and missing fields)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.engine.authority.request import _RULES, REQUEST_TABLE
from bastion.engine.authority.request_fast import plainly_valid
from bastion.engine.snapshot.fields import Field, FieldKind, Record
from bastion.engine.snapshot.validate import check_document

ROOT = REQUEST_TABLE.records[REQUEST_TABLE.root]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_TEXT_OK = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=100
).filter(str.strip)
_TEXT_BAD = st.sampled_from(["", "   ", "x" * 101, "a\x00b", "tab\there", "\x7f"])
_DECIMAL_OK = st.one_of(
    st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False),
    st.integers(-(10**9), 10**9),
    st.floats(-1e9, 1e9, allow_nan=False),
    st.sampled_from(["0", "12.5", "-3", "1e3", "2.50", "0.00000001", "1E-2", "007"]),
)
_DECIMAL_BAD = st.sampled_from(
    [Decimal("NaN"), Decimal("Infinity"), True, False, "abc", "1.", ".5", " 1", "1e", "NaN"]
)
_INTEGER = st.one_of(
    st.integers(-5, 10**6),
    st.sampled_from(["12", "-1", "1.0", "x", Decimal("2.0"), Decimal("2.5"), 3.0, 3.5, True]),
)
_TIME = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), UTC]),
    ).map(lambda at: at.isoformat()),
    st.sampled_from(
        [
            "2026-11-20T14:30:00Z",
            "2026-11-20T14:30Z",
            "2026-11-20T14:30:00",  # naive
            "2026-02-30T10:00:00Z",  # no such day
            "2026-11-20 14:30:00Z",
            "yesterday",
        ]
    ),
    st.datetimes().map(lambda at: at.replace(tzinfo=UTC)),
    st.datetimes(),  # naive datetime objects (Python callers)
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _value(field: Field, depth: int) -> st.SearchStrategy[Any]:
    kind = field.kind
    if kind is FieldKind.TEXT:
        good = _TEXT_OK
        bad = _TEXT_BAD
    elif kind is FieldKind.CHOICE:
        good = st.sampled_from(field.choices)
        bad = st.sampled_from([c.upper() for c in field.choices] + [" " + field.choices[0]])
    elif kind is FieldKind.DECIMAL:
        good, bad = _DECIMAL_OK, _DECIMAL_BAD
    elif kind is FieldKind.INTEGER:
        good, bad = _INTEGER, _DECIMAL_BAD
    elif kind is FieldKind.FLAG:
        good, bad = st.booleans(), st.sampled_from([0, 1, "true", None])
    elif kind is FieldKind.TIME:
        good, bad = _TIME, st.sampled_from([0, None, True])
    elif kind is FieldKind.RECORD and depth < 2:
        good = _document(REQUEST_TABLE.records[field.record], depth + 1)
        bad = st.sampled_from([[], "x", {1: 2}])
    elif kind is FieldKind.OBJECT:
        good = st.dictionaries(st.text(max_size=6), _JSON, max_size=3)
        bad = st.sampled_from([[], "x", {1: "not a text key"}, {"a": {2: "b"}}])
    else:  # lists and by-symbol maps: not in the request table today; junk covers them
        good, bad = _JUNK, _JUNK
    return st.integers(0, 19).flatmap(
        lambda roll: good if roll < 14 else bad if roll < 18 else _JUNK
    )


def _document(record: Record, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the record's fields (required ones usually in), maybe an unknown key."""
    present = {field.name: _value(field, depth) for field in record.fields}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for field in record.fields:
            wanted = draw(st.integers(0, 19)) < (19 if field.required else 4)
            if wanted:
                document[field.name] = draw(present[field.name])
        if draw(st.integers(0, 29)) == 0:
            document[draw(st.sampled_from(["unknown", "Symbol", "target"]))] = 1
        return document

    return build()


def _valid_document() -> st.SearchStrategy[dict[str, Any]]:
    """Only valid values, required fields present: the fast path must take these."""
    fields = {
        "symbol": _TEXT_OK,
        "action": st.sampled_from(["cancel", "close"]),
        "account_id": _TEXT_OK,
        "strategy_id": _TEXT_OK,
        "current_size": st.integers(0, 1000),
        "metadata": st.dictionaries(st.text(max_size=6), _JSON, max_size=3),
    }
    return st.fixed_dictionaries(
        {"symbol": fields["symbol"], "action": fields["action"]},
        optional={k: v for k, v in fields.items() if k not in ("symbol", "action")},
    )


def exact(value: Any) -> Any:
    """A value with its exact text: Decimal('1.0') and Decimal('1') differ here."""
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [exact(item) for item in value]
    if isinstance(value, Decimal | datetime):
        return (type(value).__name__, str(value), repr(getattr(value, "tzinfo", None)))
    return (type(value).__name__, value)


@SETTINGS
@given(_document(ROOT))
def test_read_when_any_document_then_fast_path_agrees_with_cerberus_or_defers(
    data: dict[str, Any],
) -> None:
    """A document the fast path takes is one cerberus takes, normalised to the same
    values (exact Decimal text, the same UTC times); anything else is left to cerberus."""
    fast = plainly_valid(data, REQUEST_TABLE)
    problems, document = check_document(data, REQUEST_TABLE, _RULES)
    if fast is not None:
        assert problems == []
        assert exact(fast) == exact(document)


@SETTINGS
@given(_valid_document())
def test_read_when_plainly_valid_then_fast_path_takes_it(data: dict[str, Any]) -> None:
    """Well-formed requests skip cerberus, and build the same request as through it."""
    fast = plainly_valid(data, REQUEST_TABLE)
    problems, document = check_document(data, REQUEST_TABLE, _RULES)
    assert problems == []
    assert fast is not None
    assert exact(fast) == exact(document)


def test_read_when_not_a_dict_or_unknown_field_then_cerberus_decides() -> None:
    """Lists, text, unknown fields, missing required fields and nulls all defer."""
    for data in (
        [],
        "x",
        None,
        {"symbol": "SPY"},
        {"symbol": "SPY", "action": "open", "nope": 1},
        {"symbol": "SPY", "action": "open", "target_size": None},
        {"symbol": "SPY", "action": "open", 1: 2},
    ):
        assert plainly_valid(data, REQUEST_TABLE) is None


def test_read_when_request_is_the_readme_example_then_values_are_exact() -> None:
    """Numbers keep their text (a string "2.50" stays 2.50), times become UTC."""
    fast = plainly_valid(
        {
            "account_id": "gen-01",
            "symbol": "QQQ",
            "action": "open",
            "target_size": "2.50",
            "position": {"entry_at": "2026-11-20T09:30:00-05:00"},
        },
        REQUEST_TABLE,
    )
    assert fast is not None
    assert str(fast["target_size"]) == "2.50"
    assert fast["position"]["entry_at"] == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


_BAD_EXAMPLES: dict[FieldKind, tuple[Any, ...]] = {
    FieldKind.TEXT: ("", "   ", "x" * 101, "a\x00b", "tab\there", "\x7f", 1, None, True),
    FieldKind.CHOICE: ("", "OPEN", "open ", 1, None),
    FieldKind.DECIMAL: (
        *(Decimal("NaN"), Decimal("Infinity"), Decimal("-0.00000001"), Decimal(0)),
        *(True, False, "abc", "1.", " 1", "-1", -1, None, 10**30, "1e400", 1.5e300),
    ),
    FieldKind.INTEGER: ("1.5", "x", Decimal("2.5"), 2.5, True, -1, None, 10**30),
    FieldKind.FLAG: (0, 1, "true", None),
    FieldKind.TIME: ("2026-11-20T14:30:00", "2026-02-30T10:00:00Z", "x", 0, datetime(2026, 1, 1)),
    FieldKind.RECORD: ([], "x", {1: 2}, {"unknown": 1}, None),
    FieldKind.OBJECT: ([], "x", {1: "a"}, {"a": {2: "b"}}, None),
}


def _every_field(record: Record, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Field]]:
    found = []
    for field in record.fields:
        found.append(((*path, field.name), field))
        if field.kind is FieldKind.RECORD:
            found += _every_field(REQUEST_TABLE.records[field.record], (*path, field.name))
    return found


def test_read_when_each_field_has_each_bad_value_then_never_taken_unless_cerberus_agrees() -> None:
    """Every field of the table (nested ones too), each boundary and wrong-type value, in
    an otherwise valid request: the fast path defers, or agrees with cerberus exactly."""
    checked = 0
    for path, field in _every_field(ROOT):
        for bad in _BAD_EXAMPLES.get(field.kind, (None, [], "x")):
            data: dict[str, Any] = {"symbol": "SPY", "action": "cancel"}
            holder = data
            for part in path[:-1]:
                holder = holder.setdefault(part, {})
            holder[path[-1]] = bad
            fast = plainly_valid(data, REQUEST_TABLE)
            problems, document = check_document(data, REQUEST_TABLE, _RULES)
            if fast is not None:
                assert problems == [], (path, bad)
                assert exact(fast) == exact(document), (path, bad)
            checked += 1
    assert checked > 100
