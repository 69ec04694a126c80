"""A closed trade the builder left out: named as a trade, and its account reduce-only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.state import State
from tests.conftest import POLICIES
from tests.snapshot.conftest import EXAMPLES

BAD_TRADE = Unevaluable(
    "ord-9", "gen-01", "AAPL", "closed trade unusable: profit_pct: 2 does not fit", "trade"
)


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledPolicySet]:
    result = compile_policy_set(load_policy_set([POLICIES]))
    yield result
    result.close()


def test_unevaluable_when_trade_then_text_and_dict_say_trade() -> None:
    """A left-out trade reads as a trade; a position keeps its old form (no kind key)."""
    assert str(BAD_TRADE).startswith("trade ord-9 (AAPL, account gen-01): closed trade")
    assert BAD_TRADE.to_dict()["kind"] == "trade"
    position = Unevaluable("p-1", "gen-01", "DOGE", "dust")
    assert str(position).startswith("position p-1") and "kind" not in position.to_dict()


def test_evaluate_when_trade_left_out_then_account_reducing_and_decision_names_the_trade(
    compiled: CompiledPolicySet,
) -> None:
    """Fail closed: the account of an unusable trade takes no new risk; the decision says
    which trade and why."""
    snapshot = load_snapshot(EXAMPLES / "trade-history.json")
    decisions, state = evaluate(compiled, snapshot, State(), snapshot.as_of, left_out=[BAD_TRADE])
    (left,) = [d for d in decisions if d.kind == "snapshot"]
    assert left.reasons[0].startswith("trade ord-9 (AAPL) left out of the snapshot")
    assert state.trading_state("gen-01") == "REDUCING"
