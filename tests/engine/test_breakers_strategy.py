"""Strategy breakers restrict the accounts the strategy trades, with or without positions.

Issue 13: a breaker on orders.consecutive_losses tripped for a strategy that had been
stopped out (flat), but its account stayed ACTIVE and new opens were approved —
strategies were mapped to accounts only through open positions. The snapshot's
order_flow records say which account a strategy trades; they map it too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from bastion.engine.authority import can_execute
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.evaluation.facts import accounts_by_strategy
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, validate_snapshot
from bastion.engine.state import State
from tests.authority.builders import NOW, SYMBOL, account, market, position, request
from tests.conftest import POLICIES

POLICY = """\
apiVersion: bastion/v1
kind: BreakerPolicy
metadata: {name: losing-streak}
precedence: 5
spec:
  breakers:
    - id: losing_streak
      metric: orders.consecutive_losses
      comparison: ">="
      threshold: 3
      action: reduce_only
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledPolicySet]:
    """The shipped policies plus a losing-streak breaker (3 in a row: reduce only)."""
    folder = tmp_path_factory.mktemp("streak") / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "streak.yaml").write_text(POLICY)
    result = compile_policy_set(load_policy_set([folder]))
    yield result
    result.close()


def _flow(account_id: str, strategy: str, losses: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "strategy_id": strategy,
        "orders_last_minute": 0,
        "slippage_bps": 0,
        "consecutive_losses": losses,
    }


def _snapshot(flows: list[dict[str, Any]], positions: Sequence[dict[str, Any]] = ()) -> Snapshot:
    """Two accounts (acct-1, acct-2), XYZ market data, the given order flow and positions."""
    return validate_snapshot(
        {
            "version": 1,
            "as_of": NOW.isoformat(),
            "accounts": [account("acct-1"), account("acct-2")],
            "positions": list(positions),
            "market": {SYMBOL: market()},
            "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
            "order_flow": flows,
            "regime": {"name": "calm", "severity": "low", "changed_at": NOW.isoformat()},
        }
    )


def test_accounts_by_strategy_when_strategy_is_flat_then_its_order_flow_account_counts() -> None:
    """A strategy with no position is mapped to the accounts its order flow names."""
    snap = _snapshot(
        [_flow("acct-1", "meanrev", 4)], [position(account="acct-2", strategy="trend")]
    )
    assert accounts_by_strategy(snap) == {
        "meanrev": frozenset({"acct-1"}),
        "trend": frozenset({"acct-2"}),
    }


def test_evaluate_when_flat_strategy_loses_in_a_row_then_its_account_denies_new_opens(
    compiled: CompiledPolicySet,
) -> None:
    """The streak trips the strategy's breaker; its account goes REDUCING and can_execute
    denies an open there (closes pass); the other account is untouched."""
    snap = _snapshot([_flow("acct-1", "meanrev", 4), _flow("acct-2", "trend", 0)])
    decisions, state = evaluate(compiled, snap, State(), NOW)
    assert [(d.subject.label(), d.outcome) for d in decisions if d.kind == "breaker"] == [
        ("strategy:meanrev", "trip")
    ]
    assert state.trading_states == {"acct-1": "REDUCING", "acct-2": "ACTIVE"}
    order = request("open", account_id="acct-1", strategy_id="meanrev", target_size=10)
    denied = can_execute(compiled, order, snap, state, NOW)
    assert denied.outcome == "denied"
    assert "limit.trading_state" in denied.blocking
    elsewhere = request("open", account_id="acct-2", strategy_id="trend", target_size=10)
    assert can_execute(compiled, elsewhere, snap, state, NOW).approved


def test_evaluate_when_streak_below_threshold_then_account_stays_active(
    compiled: CompiledPolicySet,
) -> None:
    """One loss short of the threshold: nothing trips, nothing is restricted."""
    snap = _snapshot([_flow("acct-1", "meanrev", 2)])
    decisions, state = evaluate(compiled, snap, State(), NOW)
    assert [d for d in decisions if d.kind == "breaker"] == []
    assert state.trading_state("acct-1") == "ACTIVE"
