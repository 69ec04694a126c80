"""The snapshot's check and constructors, written out as code per record, are the generic
interpreters they replace, exactly (engine/snapshot/built.py, engine/snapshot/model.py).

The reference is the generic code as it was (tests/snapshot/generic_paths.py). On valid
documents — the example files (numbers and times as text: the coercions), the same
normalised (typed, as the builder assembles them), the builder's own document — and on
those broken one value or a few values at a time (every field × values of its kind:
NaN, infinities, -0, negatives, each bound and one tick beyond, wrong types, str and
datetime subclasses, naive and other-zone times, empty and control-character text,
missing and unknown fields, nested records missing or of another type, tuples for
lists), both give the same outcome: a refusal, or the same normalised document (keys,
order, and the very objects where the value was taken as it was); and both build the
same records (types, and the very values) — or raise the same error.
"""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import FrozenInstanceError, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from types import MappingProxyType
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.adapters import builder as builder_module
from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot import Snapshot, built, model
from bastion.engine.snapshot.built import (
    normalized_document,
    position_document,
    record_refused,
    snapshot_from_typed,
)
from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind
from bastion.engine.snapshot.model import CLASSES
from bastion.engine.snapshot.validate import _SCHEMA, SNAPSHOT_TABLE, check_document
from tests.snapshot.conftest import EXAMPLE_FILES, example_data
from tests.snapshot.generic_paths import generic_build, generic_check
from tests.snapshot.test_paths_property import _REGIME, AS_OF, TINY, _base, _poll

PLUS_TWO = timezone(timedelta(hours=2))
NAMED_UTC = timezone(timedelta(0), "Z")  # UTC's offset, but not the UTC object
TICK = Decimal("1E-9")


class _Text(str):
    """A str subclass: the rules take it and keep it; no fast path may."""


class _Moment(datetime):
    """A datetime subclass (as pandas' Timestamp is)."""


class _Number(Decimal):
    """A Decimal subclass."""


# -- outcomes --------------------------------------------------------------------------

Outcome = tuple[str, object]


def _checked(check: Callable[[object], object], values: object) -> Outcome:
    try:
        return "ok", check(values)
    except Exception:  # what the callers do: any exception is a refusal
        return "refused", None


def _built(build: Callable[[], object]) -> Outcome:
    try:
        return "ok", build()
    except Exception as error:  # the same error, word for word
        return "raised", (type(error), str(error))


def _reachable(document: object) -> set[int]:
    """The ids of every object in a document (keys too) through its dicts and lists: what
    a check may hand back as it is (it refuses any other container)."""
    seen, stack = set(), [document]
    while stack:
        node = stack.pop()
        seen.add(id(node))
        if type(node) is dict:
            seen.update(map(id, node))
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return seen


def _same_document(new: object, old: object, given: set[int]) -> bool:
    """The same normalised document: types, keys in order, values equal in every digit
    (Decimal("1.0") is not Decimal("1")), and the very input object wherever one of the
    two hands one back."""
    kind = type(old)
    if type(new) is not kind or (id(new) in given) != (id(old) in given):
        return False
    if kind is dict:
        assert isinstance(new, dict) and isinstance(old, dict)
        return len(new) == len(old) and all(
            type(new_key) is type(old_key)
            and new_key == old_key
            and (id(new_key) in given) == (id(old_key) in given)
            and _same_document(new[new_key], old[old_key], given)
            for new_key, old_key in zip(new, old, strict=True)
        )
    if kind is list:
        assert isinstance(new, list) and isinstance(old, list)
        return len(new) == len(old) and all(
            _same_document(new_item, old_item, given)
            for new_item, old_item in zip(new, old, strict=True)
        )
    return new is old if id(old) in given else repr(new) == repr(old)


_FIELD_NAMES = {cls: tuple(item.name for item in fields(cls)) for cls in CLASSES.values()}


def _same_record(new: object, old: object) -> bool:
    """The same record: types all the way down, and the very values (a constructor
    converts nothing) and defaults."""
    kind = type(old)
    if type(new) is not kind:
        return False
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return all(_same_record(getattr(new, name), getattr(old, name)) for name in names)
    if kind is tuple:
        assert isinstance(new, tuple) and isinstance(old, tuple)
        return len(new) == len(old) and all(map(_same_record, new, old))
    if kind is MappingProxyType:
        assert isinstance(new, MappingProxyType) and isinstance(old, MappingProxyType)
        return list(map(id, new)) == list(map(id, old)) and all(
            _same_record(new[key], old[key]) for key in old
        )
    return new is old


def _agree(document: object, label: str = "") -> str:
    """The generated check and constructor against the generic ones, on one document (and
    each record in it, as ``record_refused`` sees them); the verdict."""
    new = _checked(built._CHECKS["Snapshot"], document)
    old = _checked(lambda values: generic_check("Snapshot", values), document)
    assert new[0] == old[0], (label, new, old)
    assert (normalized_document(document) is None) == (old[0] == "refused"), label
    if new[0] == "ok":
        assert _same_document(new[1], old[1], _reachable(document)), (label, new, old)
        normalized = old[1]
        assert isinstance(normalized, dict)
        made = _built(lambda: model._FROM_DOCUMENT["Snapshot"](normalized, ""))
        reference = _built(lambda: generic_build("Snapshot", normalized))
        assert made[0] == reference[0] == "ok", label
        assert _same_record(made[1], reference[1]) and made[1] == reference[1], label
    for record, values in _records(document):
        refused = _checked(partial(generic_check, record), values)[0] == "refused"
        assert record_refused(record, values) is refused, (label, record)
    # The constructors on the raw document too: records of any values, missing fields,
    # other mappings — the same record or the same error.
    made = _built(lambda: model._FROM_DOCUMENT["Snapshot"](document, ""))  # type: ignore[arg-type]
    reference = _built(lambda: generic_build("Snapshot", document))  # type: ignore[arg-type]
    assert made[0] == reference[0], (label, made, reference)
    if made[0] == "ok":  # (a NaN in a raw document: the same object, so equal here)
        assert _same_record(made[1], reference[1]) and made[1] == reference[1], label
    else:
        assert made[1] == reference[1], label
    return new[0]


def _records(document: object) -> Iterator[tuple[str, object]]:
    """(record name, its values) for every nested record in a document, where it is one."""
    if not isinstance(document, dict):
        return
    for field in RECORDS["Snapshot"].fields:
        value = document.get(field.name)
        if field.kind is FieldKind.RECORD:
            yield field.record, value
        elif field.kind is FieldKind.LIST and isinstance(value, list | tuple):
            yield from ((field.record, item) for item in value)
        elif field.kind is FieldKind.BY_SYMBOL and isinstance(value, dict):
            yield from ((field.record, item) for item in value.values())


# -- valid documents -------------------------------------------------------------------


def _builder_document() -> dict[str, Any]:
    """The document the adapters' builder assembles for a small poll, its positions as
    document records, plus instruments with order rules (not in the poll)."""
    seen: list[dict[str, Any]] = []

    def keep(document: Any, positions: Any, **options: Any) -> Any:
        seen.append({**document, "positions": [position_document(p) for p in positions]})
        return snapshot_from_typed(document, positions, **options)

    good = VenuePosition(
        "V1", "acc-0", "AAA", "equity", Decimal(3), "long", Decimal(90), Decimal(100), AS_OF
    )
    with mock.patch.object(builder_module, "snapshot_from_typed", keep):
        SnapshotBuilder(TINY).build(_poll([good]), now=AS_OF, state=BuilderState(), regime=_REGIME)
    document = copy.deepcopy(seen[0])
    document["instruments"] = {
        "AAA": {"asset_class": "equity", "sector": "technology", "tick_size": Decimal("0.01")},
        "BBB": {"asset_class": "crypto", "lot_size": Decimal("0.001"), "max_notional": Decimal(9)},
    }
    return document


def _typed_base() -> dict[str, Any]:
    """test_paths_property's base: accounts, market, an option leg (no default fields)."""
    rest, positions = _base()
    return {**rest, "positions": [position_document(p) for p in positions]}


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    normalized = generic_check("Snapshot", copy.deepcopy(document))
    assert isinstance(normalized, dict)
    return normalized


def _trimmed(record: str, node: dict[str, Any]) -> dict[str, Any]:
    """At most FEW items of every list and by-symbol record (the example option chain
    lists dozens of contracts): every field still there, in a few of each."""
    trimmed = dict(node)
    for field in RECORDS[record].fields:
        value = node.get(field.name)
        if field.kind is FieldKind.RECORD and isinstance(value, dict):
            trimmed[field.name] = _trimmed(field.record, value)
        elif field.kind is FieldKind.LIST and isinstance(value, list):
            trimmed[field.name] = [_trimmed(field.record, item) for item in value[:FEW]]
        elif field.kind is FieldKind.BY_SYMBOL and isinstance(value, dict):
            entries = list(value.items())[:FEW]
            trimmed[field.name] = {key: _trimmed(field.record, item) for key, item in entries}
    return trimmed


FEW = 2
RAW = {
    f"{path.stem} (text)": _trimmed("Snapshot", example_data(path.stem)) for path in EXAMPLE_FILES
}
BASES: dict[str, dict[str, Any]] = {
    **RAW,
    **{label.replace("text", "typed"): _normalized(raw) for label, raw in RAW.items()},
    "builder": _builder_document(),
    "paths property": _typed_base(),
}


# -- values to try, by field kind ------------------------------------------------------

ANY: tuple[object, ...] = (None, [], {}, (), "abc", 7, Decimal(1), True)
BY_KIND: dict[FieldKind, tuple[object, ...]] = {
    FieldKind.DECIMAL: (
        Decimal("NaN"),
        Decimal("-NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("-0"),
        Decimal(0),
        Decimal("0E-7"),
        Decimal(-1),
        Decimal("1.00"),
        Decimal("1E-30"),
        Decimal("1E+400"),
        _Number("0.5"),
        1.5,
        -0.0,
        float("nan"),
        float("inf"),
        3,
        -3,
        10**30,
        "12.5",
        "-0",
        "1e3",
        " 5",
        "abc",
        _Text("2.5"),
        True,
        False,
    ),
    FieldKind.TEXT: (
        "",
        " ",
        "x" * 100,
        "x" * 101,
        "a\x00b",
        "tab\there",
        "line\nbreak",
        "del\x7f",
        "nel\x85",
        "\u200b",
        "nbsp\u00a0",
        "\u2028",
        "\u3000",
        "é",
        " padded ",
        _Text("sub"),
        _Text(""),
        b"id",
        5,
    ),
    FieldKind.CHOICE: ("LONG", "", " long", "long ", _Text("long"), _Text("call"), 1),
    FieldKind.TIME: (
        datetime(2026, 11, 1, 9, 0),  # naive
        datetime(2026, 11, 1, 9, 0, tzinfo=PLUS_TWO),  # aware, not UTC: coerced
        datetime(2026, 11, 1, 9, 0, tzinfo=NAMED_UTC),  # UTC's offset, another tzinfo
        datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        _Moment(2026, 11, 1, 9, 0, tzinfo=UTC),
        date(2026, 11, 1),
        "2026-11-01T09:00:00Z",
        "2026-11-01T09:00:00+02:00",
        "2026-11-01T09:00:00",
        "2026-02-30T00:00:00Z",
        "soon",
        0,
    ),
    FieldKind.FLAG: (True, False, 1, 0, "true", _Text("x")),
    FieldKind.INTEGER: (
        0,
        1,
        2,
        -1,
        10**20,
        1.5,
        2.0,
        True,
        "2",
        "-1",
        " 2",
        Decimal(2),
        Decimal("2.5"),
        Decimal("1E+2"),
        Decimal("NaN"),
    ),
}


def _values(field: Field, present: object) -> tuple[object, ...]:
    """Values to try in ``field``: its kind's, its own bounds and one tick beyond, its
    choices, and for nested records other shapes of the present value."""
    values: list[object] = [*ANY]
    if field.kind in BY_KIND:
        values += BY_KIND[field.kind]
    for bound in (field.minimum, field.maximum):
        if bound is not None:
            values += [bound, bound - TICK, bound + TICK, int(bound), str(bound)]
    values += [*field.choices, *(_Text(choice) for choice in field.choices)]
    if isinstance(present, dict):
        values += [
            OrderedDict(present),
            MappingProxyType(dict(present)),
            [present],
            {**present, "surprise": 1},
            {_Text(key) if isinstance(key, str) else key: value for key, value in present.items()},
        ]
    if isinstance(present, list):
        values += [tuple(present), [*present, None], [*present, *present[:1]], []]
    return tuple(values)


_REMOVED = object()


@contextmanager
def _changed(node: dict[Any, Any], key: object, value: object = _REMOVED) -> Iterator[None]:
    """``node[key]`` set to ``value`` (or removed) for a while, then as it was, in order."""
    items = list(node.items())
    if value is _REMOVED:
        node.pop(key, None)
    else:
        node[key] = value
    try:
        yield
    finally:
        node.clear()
        node.update(items)


def _mutations(document: dict[str, Any]) -> Iterator[tuple[str, object]]:
    """The document with one value replaced, one field removed or an unknown one added,
    for every field of every record (the first item of each list and by-symbol record),
    and the by-symbol keys replaced. Changed in place, and back after each."""

    def walk(record: str, node: dict[str, Any], path: str) -> Iterator[tuple[str, object]]:
        for field in RECORDS[record].fields:
            name, present = field.name, node.get(field.name)
            for value in _values(field, present):
                with _changed(node, name, value):
                    yield f"{path}.{name}={value!r}"[:120], document
            if name in node:
                with _changed(node, name):
                    yield f"{path}.{name} removed", document
            if field.kind is FieldKind.RECORD and isinstance(present, dict):
                yield from walk(field.record, present, f"{path}.{name}")
            elif field.kind is FieldKind.LIST and present:
                yield from walk(field.record, present[0], f"{path}.{name}[0]")
            elif field.kind is FieldKind.BY_SYMBOL and present:
                first = next(iter(present))
                yield from walk(field.record, present[first], f"{path}.{name}[{first!r}]")
                for key in ("", " ", "a\tb", "x" * 101, _Text(first), 7, None, "\u200b"):
                    with _changed(present, key, present[first]):
                        yield f"{path}.{name}[{key!r}]", document
        for key in ("surprise", _Text("surprise")):
            with _changed(node, key, 1):
                yield f"{path}.{key!r}", document

    yield from walk("Snapshot", document, "")
    yield "a document of another type", OrderedDict(document)
    yield "no document", None


# -- exhaustive, one value at a time ---------------------------------------------------


@pytest.mark.parametrize("label", list(BASES))
def test_check_when_valid_document_then_generated_and_generic_agree(label: str) -> None:
    """Each valid document: accepted by both, the same normalised document, the same
    Snapshot records."""
    assert _agree(BASES[label], label) == "ok"


# The examples calm, atr-breach, crash-day and option-near-roll have one shape: one of them.
EXHAUSTIVE = [
    label
    for label in BASES
    if not label.startswith(("atr-breach", "crash-day", "option-near-roll"))
]


@pytest.mark.parametrize("label", EXHAUSTIVE)
def test_check_when_one_value_broken_then_generated_and_generic_agree(label: str) -> None:
    """Every field × every value of its kind (and removed, and an unknown field beside
    it): the same refusal or the same normalised document and records."""
    verdicts = {"ok": 0, "refused": 0}
    for mutation, changed in _mutations(BASES[label]):
        verdicts[_agree(changed, f"{label}: {mutation}")] += 1
    assert verdicts["refused"] > 500, verdicts
    assert verdicts["ok"] > 50, verdicts  # coercible values, bounds met, optional fields


# -- generated: a few values broken at once --------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _slots(document: dict[str, Any]) -> list[tuple[tuple[Any, ...], Field]]:
    """(path, field) for every field of every record in the document, present or not."""
    slots: list[tuple[tuple[Any, ...], Field]] = []

    def walk(record: str, node: object, path: tuple[Any, ...]) -> None:
        if not isinstance(node, dict):
            return
        for field in RECORDS[record].fields:
            slots.append(((*path, field.name), field))
            value = node.get(field.name)
            if field.kind is FieldKind.RECORD:
                walk(field.record, value, (*path, field.name))
            elif field.kind is FieldKind.LIST and isinstance(value, list):
                for index, item in enumerate(value):
                    walk(field.record, item, (*path, field.name, index))
            elif field.kind is FieldKind.BY_SYMBOL and isinstance(value, dict):
                for key, item in value.items():
                    walk(field.record, item, (*path, field.name, key))

    walk("Snapshot", document, ())
    return slots


SLOTS = {label: _slots(document) for label, document in BASES.items()}


def _record_at(document: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any] | None:
    node: Any = document
    for part in path:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_dict or in_list):
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


@st.composite
def _broken(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    label = draw(st.sampled_from(sorted(BASES)))
    document = copy.deepcopy(BASES[label])
    for _ in range(draw(st.integers(1, 3))):
        path, field = draw(st.sampled_from(SLOTS[label]))
        node = _record_at(document, path[:-1])
        if node is None:  # an earlier change took the way there away
            continue
        action = draw(st.sampled_from(["value", "value", "json", "remove"]))
        if action == "remove":
            node.pop(path[-1], None)
        elif action == "json":
            node[path[-1]] = draw(JSON)
        else:
            node[path[-1]] = draw(st.sampled_from(_values(field, node.get(path[-1]))))
    return label, document


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_broken())
def test_check_when_values_broken_at_random_then_generated_and_generic_agree(
    case: tuple[str, dict[str, Any]],
) -> None:
    """One to three values replaced (by a value of the field's kind or any JSON) or
    removed, anywhere: both paths give the same outcome."""
    label, document = case
    _agree(document, label)


def test_check_when_cerberus_normalised_then_constructors_agree() -> None:
    """The validator's own normalised documents (what build_snapshot gets from it)."""
    for label, raw in RAW.items():
        problems, document = check_document(copy.deepcopy(raw), SNAPSHOT_TABLE, _SCHEMA)
        assert not problems, label
        made = model._FROM_DOCUMENT["Snapshot"](document, "")
        reference = generic_build("Snapshot", document)
        assert _same_record(made, reference) and made == reference, label


# -- the twin stands in only where it is the class's own __init__ ----------------------


def test_builders_when_model_as_shipped_then_every_record_written_out() -> None:
    """Every record of the model has its written-out constructor (none left generic)."""
    for name in CLASSES:
        assert model._FROM_DOCUMENT[name].__name__ == f"build_{name}", name


def test_twin_when_class_has_post_init_then_generic_constructor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A class whose __init__ does more than store its arguments is built by it."""

    @dataclass(frozen=True, slots=True)
    class Regime:
        name: str
        severity: str
        changed_at: datetime

        def __post_init__(self) -> None:
            object.__setattr__(self, "name", self.name.upper())

    monkeypatch.setitem(CLASSES, "Regime", Regime)
    assert model.unfrozen_twin("Regime") is None
    build = model._compile_builder("Regime", {})
    made = build({"name": "calm", "severity": "low", "changed_at": AS_OF}, "")
    assert isinstance(made, Regime) and made.name == "CALM"


def test_built_when_written_out_then_records_behave_as_the_class_own() -> None:
    """Records from the written-out constructors: frozen, hashable, picklable, copied and
    replaced like those from the classes' own __init__ (generic_paths)."""
    normalized = _normalized(BASES["builder"])
    made = model.build_snapshot(normalized)
    reference = generic_build("Snapshot", normalized)
    assert isinstance(reference, Snapshot)
    market, expected = made.market["AAA"], reference.market["AAA"]
    assert hash(market) == hash(expected) and repr(market) == repr(expected)
    with pytest.raises(FrozenInstanceError):
        market.price_usd = Decimal(1)  # type: ignore[misc]
    assert made == reference and replace(made) == made  # (a Snapshot's mappings: no pickle)
    assert pickle.loads(pickle.dumps(market)) == market and copy.deepcopy(market) == market
    assert replace(market, price_usd=Decimal(1)).price_usd == Decimal(1)
