"""evaluate(left_out=...): a record the builder could not use is one unevaluable subject."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bastion.engine.authority.check import can_execute
from bastion.engine.authority.request import request_from_dict
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

CALM = ROOT / "examples" / "snapshots" / "calm.json"


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledPolicySet]:
    result = compile_policy_set(load_policy_set([POLICIES]))
    yield result
    result.close()


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return load_snapshot(CALM)


def _dust(snapshot: Snapshot) -> Unevaluable:
    account = snapshot.accounts[0].id
    return Unevaluable("dust-1", account, "DOGE", "value 0 and no quote to price it from")


def test_evaluate_when_a_record_is_left_out_then_its_account_reduces_with_a_decision(
    compiled: CompiledPolicySet, snapshot: Snapshot
) -> None:
    """The left-out record's account goes REDUCING, and one decision says which record and why."""
    dust = _dust(snapshot)
    decisions, state = evaluate(compiled, snapshot, State(), snapshot.as_of, left_out=[dust])
    left = [d for d in decisions if d.kind == "snapshot"]
    assert len(left) == 1
    assert left[0].outcome == "unevaluable"
    assert left[0].actions == ("reduce_only",)
    assert left[0].subject.id == "dust-1"
    assert "value 0 and no quote" in left[0].reasons[0]
    assert state.trading_state(dust.account_id) == "REDUCING"
    others = [a.id for a in snapshot.accounts if a.id != dust.account_id]
    baseline = evaluate(compiled, snapshot, State(), snapshot.as_of)[1]
    for account in others:  # every other account is evaluated as without the record
        assert state.trading_state(account) == baseline.trading_state(account)


def test_evaluate_when_the_record_stays_out_then_no_second_decision_and_still_reducing(
    compiled: CompiledPolicySet, snapshot: Snapshot
) -> None:
    """Decided once; the restriction holds on every cycle the record stays out."""
    dust = _dust(snapshot)
    _, state = evaluate(compiled, snapshot, State(), snapshot.as_of, left_out=[dust])
    later = snapshot.as_of + timedelta(minutes=5)
    decisions, state = evaluate(compiled, snapshot, state, later, left_out=[dust])
    assert not [d for d in decisions if d.kind == "snapshot"]
    assert state.trading_state(dust.account_id) == "REDUCING"


def test_evaluate_when_the_record_is_usable_again_then_the_account_is_restored(
    compiled: CompiledPolicySet, snapshot: Snapshot
) -> None:
    """Once the builder no longer leaves the record out, the account's restriction lifts."""
    dust = _dust(snapshot)
    baseline = evaluate(compiled, snapshot, State(), snapshot.as_of)[1]
    _, state = evaluate(compiled, snapshot, State(), snapshot.as_of, left_out=[dust])
    later = snapshot.as_of + timedelta(minutes=5)
    _, state = evaluate(compiled, snapshot, state, later)
    assert state.trading_state(dust.account_id) == baseline.trading_state(dust.account_id)
    assert "record:dust-1" not in state.unevaluable


def test_can_execute_when_an_account_has_a_left_out_record_then_opens_are_denied(
    compiled: CompiledPolicySet, snapshot: Snapshot
) -> None:
    """Fail safe reaches orders: an open approved without the record is denied with it."""
    dust = _dust(snapshot)
    request = request_from_dict(
        {"account_id": dust.account_id, "symbol": "QQQ", "action": "open", "target_size": "1"}
    )
    clean = evaluate(compiled, snapshot, State(), snapshot.as_of)[1]
    _, state = evaluate(compiled, snapshot, State(), snapshot.as_of, left_out=[dust])
    assert can_execute(compiled, request, snapshot, clean, snapshot.as_of).outcome == "approved"
    result = can_execute(compiled, request, snapshot, state, snapshot.as_of)
    assert result.outcome == "denied"
    assert "limit.trading_state" in result.blocking
