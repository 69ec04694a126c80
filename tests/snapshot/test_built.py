"""The builder's check (engine/snapshot/built.py) agrees with the validator, exactly.

The snapshot builder checks the document it assembles with the field rules directly
instead of through cerberus. These tests hold it to the validator: over the example
histories every snapshot is EQUAL to the one the validator builds from the same document,
and on documents broken one field at a time the check refuses exactly what the validator
refuses (and then reports it with the validator's own words).
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters import builder as builder_module
from bastion.adapters.replay_frames import BarReplay, bar_files
from bastion.engine.errors import SnapshotError
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.built import (
    normalized_document,
    position_document,
    snapshot_from_built,
)
from bastion.engine.snapshot.fields import RECORDS, FieldKind
from bastion.engine.snapshot.validate import _SCHEMA, SNAPSHOT_TABLE, check_document
from tests.conftest import ROOT
from tests.snapshot.conftest import EXAMPLE_FILES, example_data

HISTORIES = [ROOT / "examples" / "replay", ROOT / "examples" / "replay" / "crash"]
BENCH_HISTORY = ROOT / "bench" / "replay" / "history.py"

BAD_VALUES: list[object] = [
    None,
    "abc",
    "",
    " ",
    "x" * 101,
    "tab\there",
    Decimal("NaN"),
    Decimal("-1"),
    Decimal(0),
    -3,
    True,
    1.5,
    "12.5",
    datetime(2024, 1, 1),  # naive
    [],
    {},
]


def _frames(history: Path, check: Any) -> list[Snapshot]:
    return _frames_of(history, history / "positions.json", check)


def _frames_of(bars: Path, book: Path, check: Any) -> list[Snapshot]:
    """Every snapshot of the replay, each made by ``check`` from the builder's document
    (its typed positions as document records); ``None``: the builder's own typed path."""
    if check is None:
        return [frame.snapshot for frame in BarReplay(bar_files(bars), book).frames()]

    def as_document(
        document: Any, positions: Any, *, source: str = "", checked: Any = None
    ) -> Snapshot:
        full = {**document, "positions": [position_document(p) for p in positions]}
        return check(full, source=source)  # type: ignore[no-any-return]

    original = builder_module.snapshot_from_typed
    builder_module.snapshot_from_typed = as_document
    try:
        return [frame.snapshot for frame in BarReplay(bar_files(bars), book).frames()]
    finally:
        builder_module.snapshot_from_typed = original


def _validated(document: Any, *, source: str = "") -> Snapshot:
    return Snapshot.from_dict(document, source=source)


def _documents(history: Path) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def keep(document: Any, *, source: str = "") -> Snapshot:
        seen.append(copy.deepcopy(document))
        return snapshot_from_built(document, source=source)

    _frames(history, keep)
    return seen


@pytest.mark.parametrize("history", HISTORIES, ids=lambda path: path.name)
def test_build_when_history_replayed_then_snapshots_equal_the_validated_ones(
    history: Path,
) -> None:
    """Every frame of an example history: the checked snapshot == the validator's, and so
    is the builder's typed one."""
    fast = _frames(history, snapshot_from_built)
    validated = _frames(history, _validated)
    assert len(fast) == len(validated) > 10
    assert fast == validated
    assert _frames(history, None) == validated


def test_build_when_bench_history_replayed_then_snapshots_equal_the_validated_ones(
    tmp_path: Path,
) -> None:
    """The benchmark's seeded history (every account type, many symbols), shortened."""
    spec = importlib.util.spec_from_file_location("bench_history", BENCH_HISTORY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bars, book = module.write_history(tmp_path, symbols=8, positions=40, days=30)
    fast = _frames_of(bars, book, snapshot_from_built)
    assert len(fast) > 20
    validated = _frames_of(bars, book, _validated)
    assert fast == validated
    assert _frames_of(bars, book, None) == validated


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_normalize_when_example_file_then_same_document_as_validator(path: Path) -> None:
    """Example snapshot files (strings for times and numbers): the same coercions."""
    data = example_data(path.stem)
    problems, document = check_document(data, SNAPSHOT_TABLE, _SCHEMA)
    assert not problems
    assert normalized_document(data) == document


def _mutations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The document with one value replaced, one field removed or one unknown field added,
    for every field of every record (the first item of each list / by-symbol record)."""

    def walk(record: str, path: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        def target(root: dict[str, Any]) -> Any:
            node: Any = root
            for part in path:
                node = node[part]
            return node

        for field in RECORDS[record].fields:
            for value in BAD_VALUES:
                changed = copy.deepcopy(document)
                target(changed)[field.name] = value
                yield f"{path}.{field.name}={value!r}", changed
            changed = copy.deepcopy(document)
            if target(changed).pop(field.name, None) is not None:
                yield f"{path}.{field.name} removed", changed
            present = target(document).get(field.name)
            if field.kind is FieldKind.RECORD and present is not None:
                yield from walk(field.record, [*path, field.name])
            elif field.kind is FieldKind.LIST and present:
                yield from walk(field.record, [*path, field.name, 0])
            elif field.kind is FieldKind.BY_SYMBOL and present:
                yield from walk(field.record, [*path, field.name, next(iter(present))])
        changed = copy.deepcopy(document)
        target(changed)["surprise"] = 1
        yield f"{path}.surprise", changed
        if record == "Snapshot":
            for key in ("", " ", 7):
                changed = copy.deepcopy(document)
                changed["market"][key] = copy.deepcopy(next(iter(document["market"].values())))
                yield f"market[{key!r}]", changed

    yield from walk("Snapshot", [])


def test_check_when_one_value_broken_then_refuses_exactly_what_the_validator_refuses() -> None:
    """Field by field: refused by the check ⇔ refused by the validator; when accepted, the
    same normalised document; when refused, the validator's report, word for word."""
    document = _documents(HISTORIES[0])[0]
    checked = 0
    for label, changed in _mutations(document):
        problems, expected = check_document(copy.deepcopy(changed), SNAPSHOT_TABLE, _SCHEMA)
        got = normalized_document(copy.deepcopy(changed))
        if problems:
            assert got is None, label
            with pytest.raises(SnapshotError) as raised:
                snapshot_from_built(changed, source="s")
            with pytest.raises(SnapshotError) as reference:
                Snapshot.from_dict(changed, source="s")
            assert str(raised.value) == str(reference.value), label
        else:
            assert got == expected, label
        checked += 1
    assert checked > 500


def test_check_when_reference_broken_then_validator_reports_it() -> None:
    """A field-valid document with a position in an unknown account is still refused."""
    document = _documents(HISTORIES[0])[0]
    document["positions"][0]["account_id"] = "nobody"
    with pytest.raises(SnapshotError, match="nobody"):
        snapshot_from_built(document, source="poll")
