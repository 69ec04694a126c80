"""Manual escalation: an operator's floor under a position's level, with a ttl (fake clock)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate, polling_interval_s
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.state import ManualEscalation, State
from tests.conftest import POLICIES, ROOT

CALM = ROOT / "examples" / "snapshots" / "calm.json"
POSITION = "SPY-101"


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledPolicySet]:
    result = compile_policy_set(load_policy_set([POLICIES]))
    yield result
    result.close()


@pytest.fixture(scope="module")
def calm() -> Snapshot:
    return load_snapshot(CALM)


def _manual(snapshot: Snapshot, level: str = "recovery", ttl_s: int | None = 600) -> State:
    until = None if ttl_s is None else snapshot.as_of + timedelta(seconds=ttl_s)
    manual = ManualEscalation(level, "alice", "earnings call", snapshot.as_of, until)
    return State(manual_escalations={POSITION: manual})


def test_evaluate_when_manual_escalation_active_then_level_is_at_least_the_floor(
    compiled: CompiledPolicySet, calm: Snapshot
) -> None:
    """A calm position held by hand at recovery is at recovery, and the decision says why."""
    decisions, state = evaluate(compiled, calm, _manual(calm), calm.as_of)
    assert state.escalations[POSITION].level_name == "recovery"
    (decision,) = [d for d in decisions if d.subject.id == POSITION and d.kind == "escalation"]
    assert decision.outcome == "escalate"
    assert "manual escalation by alice: earnings call, until " in decision.reasons[0]
    assert polling_interval_s(compiled, state) == Decimal(30)


def test_evaluate_when_manual_floor_held_then_no_repeated_decision(
    compiled: CompiledPolicySet, calm: Snapshot
) -> None:
    """The next cycle within the ttl keeps the level and says nothing new (no flapping)."""
    _, state = evaluate(compiled, calm, _manual(calm), calm.as_of)
    later = calm.as_of + timedelta(seconds=400)  # past the dwell: would step down unheld
    decisions, again = evaluate(compiled, calm, state, later)
    assert again.escalations[POSITION].level_name == "recovery"
    assert not [d for d in decisions if d.subject.id == POSITION and d.kind == "escalation"]


def test_evaluate_when_ttl_ends_then_floor_dropped_and_position_steps_down(
    compiled: CompiledPolicySet, calm: Snapshot
) -> None:
    """Past `until` the floor is gone from the state and the breach rules again."""
    _, state = evaluate(compiled, calm, _manual(calm, ttl_s=600), calm.as_of)
    decisions, after = evaluate(compiled, calm, state, calm.as_of + timedelta(seconds=601))
    assert POSITION not in after.manual_escalations
    assert after.escalations[POSITION].level_name == "enhanced"  # one level at a time
    assert any(d.outcome == "deescalate" for d in decisions if d.subject.id == POSITION)


def test_evaluate_when_manual_level_below_computed_then_computed_level_stands(
    compiled: CompiledPolicySet, calm: Snapshot
) -> None:
    """A floor under the level the breach set changes nothing: max(computed, manual)."""
    _, state = evaluate(compiled, calm, _manual(calm, level="preservation"), calm.as_of)
    lower = replace(state, manual_escalations=_manual(calm, level="enhanced").manual_escalations)
    decisions, after = evaluate(compiled, calm, lower, calm.as_of + timedelta(seconds=1))
    assert after.escalations[POSITION].level_name == "preservation"
    assert not [d for d in decisions if d.subject.id == POSITION and d.kind == "escalation"]


def test_evaluate_when_manual_escalation_cleared_then_breach_rules_again(
    compiled: CompiledPolicySet, calm: Snapshot
) -> None:
    """Clearing (removing it from the state) lets the position step down after its dwell."""
    _, state = evaluate(compiled, calm, _manual(calm, ttl_s=None), calm.as_of)
    cleared = replace(state, manual_escalations={})
    _, after = evaluate(compiled, calm, cleared, calm.as_of + timedelta(seconds=400))
    assert after.escalations[POSITION].level_name == "enhanced"


def test_state_when_manual_escalation_serialised_then_read_back_equal(calm: Snapshot) -> None:
    """The floor round-trips through the state file; a file without it still loads."""
    state = _manual(calm)
    assert State.from_dict(state.to_dict()) == state
    assert "manual_escalations" not in State().to_dict()
    assert State.from_dict(State().to_dict()).manual_escalations == {}
