"""Golden evaluation cases: tests/cases/<kind>/<case>/ with snapshot, optional policy and state.

Each case evaluates the shipped policies (plus the case's own policy.yaml, if any)
on snapshot.json (with state.json, at case.json's `now` or the snapshot's as_of)
and must produce exactly expected.json: every decision's kind, subject, rule,
outcome, actions and mode, and every account's trading state.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate, polling_interval_s
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

KINDS = ("escalation", "breakers", "roll")
CASES = sorted(
    path for kind in KINDS for path in (ROOT / "tests" / "cases" / kind).iterdir() if path.is_dir()
)


def run_case(case: Path, tmp: Path) -> dict[str, Any]:
    """Evaluate one case; the summary that expected.json holds."""
    policies = tmp / "policies"
    shutil.copytree(POLICIES, policies)
    if (case / "policy.yaml").exists():
        shutil.copy(case / "policy.yaml", policies / "case-policy.yaml")
    meta = json.loads((case / "case.json").read_text())
    snapshot = load_snapshot(case / "snapshot.json")
    state_file = case / "state.json"
    state = State.from_dict(json.loads(state_file.read_text())) if state_file.exists() else State()
    now = snapshot.as_of if "now" not in meta else snapshot.as_of.fromisoformat(meta["now"])
    compiled = compile_policy_set(load_policy_set([policies]))
    decisions, new_state = evaluate(compiled, snapshot, state, now)
    summary = {
        "decisions": [
            {
                "kind": d.kind,
                "subject": d.subject.label(),
                "rule": d.rule,
                "outcome": d.outcome,
                "actions": list(d.actions),
                "mode": d.mode,
            }
            for d in decisions
        ],
        "trading_states": dict(new_state.trading_states),
        "reducing_symbols": sorted(new_state.reducing_symbols),
        "halted_symbols": sorted(new_state.halted_symbols),
        "polling_interval_s": str(polling_interval_s(compiled, new_state)),
    }
    if new_state.high_water:  # only the cases with a trailing stop keep marks
        summary["high_water"] = new_state.to_dict()["high_water"]
    compiled.close()
    return summary


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_evaluate_when_golden_case_then_expected_decisions_and_states(
    case: Path, tmp_path: Path
) -> None:
    """The decisions and trading states are exactly the expected ones."""
    expected = json.loads((case / "expected.json").read_text())
    assert run_case(case, tmp_path) == expected
