"""Property tests: no input makes the validator fail with anything but SnapshotError."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.engine.errors import SnapshotError
from bastion.engine.snapshot import Snapshot, parse_snapshot, validate_snapshot
from tests.snapshot.conftest import EXAMPLES

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
CALM: dict[str, Any] = json.loads((EXAMPLES / "calm.json").read_text())


def _validate(data: object) -> None:
    with contextlib.suppress(SnapshotError):
        assert isinstance(validate_snapshot(data), Snapshot)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_validate_when_arbitrary_json_then_snapshot_error_or_snapshot(data: object) -> None:
    """Arbitrary JSON values never crash the validator."""
    _validate(data)


def _leaf_paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [prefix] + [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(node, list):
        return [prefix] + [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


PATHS = [path for path in _leaf_paths(CALM) if path]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JSON, st.booleans())
def test_validate_when_example_field_replaced_or_deleted_then_snapshot_error_or_snapshot(
    path: tuple[Any, ...], value: object, delete: bool
) -> None:
    """Near-valid snapshots (one field replaced by random JSON, or deleted) never crash."""
    data = copy.deepcopy(CALM)
    target = data
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    _validate(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_when_arbitrary_text_then_snapshot_error_or_snapshot(text: str) -> None:
    """Any text given as a snapshot file yields a Snapshot or a SnapshotError."""
    with contextlib.suppress(SnapshotError):
        parse_snapshot(text, source="fuzz.json")
