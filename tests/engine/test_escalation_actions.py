"""What an escalation level's actions do (policies/escalation.yaml, passes.py).

`halt_new_positions` is enforced: while a position sits at such a level (shipped:
preservation, 3 ATR), its account is REDUCING. The other actions (monitor, roll,
stop_loss, hedge, reduce_size, emergency_exit) are the protocol's instructions for the
position: they surface in the escalation decision's `actions` for the desk or the
trading system, and restrict no order. SPY-1: long 100 from 500, ATR 5, in gen-01.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from bastion.engine.decision import Decision
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, validate_snapshot
from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

CASE = ROOT / "tests" / "cases" / "escalation" / "skips-to-preservation" / "snapshot.json"


@pytest.fixture(scope="module")
def shipped() -> Iterator[CompiledPolicySet]:
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    yield compiled
    compiled.close()


def at_price(price: Decimal | int, minutes: int = 0) -> Snapshot:
    """The case's snapshot with SPY at `price`, `minutes` after its as_of."""
    data = json.loads(CASE.read_text())
    data["market"]["SPY"]["price_usd"] = str(price)
    data["positions"][0]["price_usd"] = str(price)
    snapshot = validate_snapshot(data)
    if minutes:
        data["as_of"] = (snapshot.as_of + timedelta(minutes=minutes)).isoformat()
        snapshot = validate_snapshot(data)
    return snapshot


def escalations(decisions: tuple[Decision, ...]) -> list[Decision]:
    return [d for d in decisions if d.kind == "escalation"]


def test_evaluate_when_position_reaches_preservation_then_its_account_is_reducing(
    shipped: CompiledPolicySet,
) -> None:
    """3.2 ATR against: preservation's halt_new_positions makes gen-01 REDUCING, naming why."""
    snapshot = at_price(484)
    decisions, state = evaluate(shipped, snapshot, State(), snapshot.as_of)
    assert state.trading_state("gen-01") == "REDUCING"
    assert state.trading_state("com-01") == "ACTIVE"
    change = next(d for d in decisions if d.kind == "trading_state")
    assert "SPY-1 at level preservation (halt_new_positions)" in change.reasons[0]
    assert escalations(decisions)[0].actions == ("halt_new_positions", "emergency_exit")


def test_evaluate_when_position_stays_at_preservation_then_account_stays_reducing(
    shipped: CompiledPolicySet,
) -> None:
    """The next evaluation decides nothing new, and the restriction holds."""
    first = at_price(484)
    _, state = evaluate(shipped, first, State(), first.as_of)
    later = at_price(484, minutes=5)
    decisions, state = evaluate(shipped, later, state, later.as_of)
    assert escalations(decisions) == []
    assert state.trading_state("gen-01") == "REDUCING"


def test_evaluate_when_position_at_recovery_then_actions_are_advice_only(
    shipped: CompiledPolicySet,
) -> None:
    """2.2 ATR: recovery's stop_loss, hedge, reduce_size are in the decision; no restriction."""
    snapshot = at_price(489)
    decisions, state = evaluate(shipped, snapshot, State(), snapshot.as_of)
    (decision,) = escalations(decisions)
    assert decision.actions == ("stop_loss", "hedge", "reduce_size")
    assert state.trading_state("gen-01") == "ACTIVE"
