"""Golden order checks: tests/cases/check/<case>/ with snapshot, request and case.

case.json holds a description and, under `limits`, the LimitPolicy spec changes the case
makes to the loose shipped limits (conftest.LOOSE_LIMITS); the shipped ProtectionPolicy
governs too. can_execute on snapshot.json and request.json, at the snapshot's as_of with
an empty state, must give exactly expected.json: outcome, approved size, what blocks and
every reason, word for word. A new control comes with its cases here.

With `"breakers": true` the shipped BreakerPolicy is in the set too, and the snapshot is
evaluated first: the order is checked against the state that evaluation leaves (the
breakers it trips), as the service does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.authority import can_execute
from bastion.engine.authority.request import load_request
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from tests.authority.conftest import PolicyFactory
from tests.conftest import ROOT

CASES = sorted(path for path in (ROOT / "tests" / "cases" / "check").iterdir() if path.is_dir())


def run_case(case: Path, policies: PolicyFactory) -> dict[str, Any]:
    """Check one case's request; the summary that expected.json holds."""
    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    compiled = policies(limits=meta.get("limits", True), breakers=meta.get("breakers", False))
    snapshot = load_snapshot(case / "snapshot.json")
    state = State()
    if meta.get("breakers", False):
        _, state = evaluate(compiled, snapshot, state, snapshot.as_of)
    result = can_execute(
        compiled, load_request(case / "request.json"), snapshot, state, snapshot.as_of
    )
    approved_size = result.approved_size
    return {
        "outcome": result.outcome,
        "approved_size": None if approved_size is None else str(approved_size),
        "blocking": list(result.blocking),
        "reasons": list(result.reasons),
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_can_execute_when_golden_case_then_expected_answer(
    case: Path, policies: PolicyFactory
) -> None:
    """The outcome, approved size, blocks and reasons are exactly the expected ones."""
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    assert run_case(case, policies) == expected
