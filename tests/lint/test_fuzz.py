"""Property: whatever the YAML, the linter reports findings or exit 2 — never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import POLICIES

Run = Callable[..., tuple[int, str, str]]
SHIPPED = [yaml.safe_load(path.read_text()) for path in sorted(POLICIES.glob("*.yaml"))]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "bastion/v1",
            "BreakerPolicy",
            "RollPolicy",
            "LimitPolicy",
            ">=",
            "halt_all",
            "portfolio.loss_pct",
            "normal",
            "com",
            "shadow",
        ]
    ),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "apiVersion",
                    "kind",
                    "metadata",
                    "name",
                    "spec",
                    "extends",
                    "levels",
                    "breakers",
                    "when",
                    "all",
                    "x",
                ]
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


def _mutate(document: Any, path: list[int], value: Any) -> Any:
    """Replace one node, chosen by `path`, with `value`."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    key = keys[path[0] % len(keys)]
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[key] = _mutate(copy[key], path[1:], value)  # type: ignore[index]
    return copy


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _lint_text(run_cli: Run, tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    code, out, _ = run_cli("lint", str(path), "--format", "json")
    assert code in (0, 1, 2)
    if code in (0, 1):
        json.loads(out)


@SETTINGS
@given(text=st.text(max_size=300))
def test_lint_when_arbitrary_text_then_findings_never_traceback(
    run_cli: Run, tmp_path: Path, text: str
) -> None:
    """Random text: findings or exit 2, never an exception."""
    _lint_text(run_cli, tmp_path, text.encode("utf-8", "replace"))


@SETTINGS
@given(tree=trees)
def test_lint_when_arbitrary_yaml_structure_then_findings_never_traceback(
    run_cli: Run, tmp_path: Path, tree: Any
) -> None:
    """Random YAML documents built from policy-like keys and values."""
    _lint_text(run_cli, tmp_path, yaml.safe_dump(tree))


@SETTINGS
@given(
    index=st.integers(0, len(SHIPPED) - 1),
    path=st.lists(st.integers(0, 50), max_size=6),
    value=trees,
)
def test_lint_when_shipped_policy_mutated_then_findings_never_traceback(
    run_cli: Run, tmp_path: Path, index: int, path: list[int], value: Any
) -> None:
    """A shipped policy with one node replaced by anything."""
    _lint_text(run_cli, tmp_path, yaml.safe_dump(_mutate(SHIPPED[index], path, value)))
