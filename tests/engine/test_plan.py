"""Intents → ExecutionPlan, RiskStatus, DecisionAuthority statistics, authority state I/O."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.authority import (
    DecisionAuthority,
    OrderRequest,
    StrategyIntent,
    check,
    plan_intents,
    risk_status,
    walk,
)
from bastion.engine.authority.plan import IntentError
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, validate_snapshot
from bastion.engine.state import AuthorityState, State, StateError

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policies() -> Iterator[CompiledPolicySet]:
    compiled = compile_policy_set(load_policy_set([str(ROOT / "policies")]))
    yield compiled
    compiled.close()


def snapshot(
    *, drift: bool = False, equity: int = 1_000_000, positions: list[dict[str, Any]] | None = None
) -> Snapshot:
    market = {
        symbol: {
            "price_usd": price,
            "bid_usd": price,
            "ask_usd": price,
            "atr_usd": atr,
            "volume": 1_000_000,
            "avg_volume": 1_000_000,
            "volatility": "0.2",
            "normal_volatility": "0.2",
            "liquidity_usd": 50_000_000,
            "normal_liquidity_usd": 50_000_000,
            "correlation": "0.5",
            "normal_correlation": "0.5",
            "data_age_s": 1,
            "quality_score_ratio": 1,
        }
        for symbol, price, atr in (("ETH-USD", 2000, 50), ("MSFT", 400, 8))
    }
    return validate_snapshot(
        {
            "as_of": "2026-11-20T15:00:00Z",
            "accounts": [
                {
                    "id": "acct",
                    "type": "gen",
                    "equity_usd": equity,
                    "cash_usd": equity,
                    "day_start_equity_usd": equity,
                    "peak_equity_usd": equity,
                    "realized_pnl_usd": 0,
                    "unrealized_pnl_usd": 0,
                    "drift_flag": drift,
                }
            ],
            "positions": positions or [],
            "market": market,
            "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
            "order_flow": [],
            "regime": {"name": "calm", "severity": "low", "changed_at": "2026-11-01T00:00:00Z"},
        }
    )


def position(symbol: str, quantity: int, price: int, strategy: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{symbol}-{strategy}",
        "account_id": "acct",
        "symbol": symbol,
        "asset_class": "crypto" if "-" in symbol else "equity",
        "quantity": quantity,
        "side": "long",
        "entry_price_usd": price,
        "entered_at": "2026-10-01T00:00:00Z",
        "price_usd": price,
        "strategy_id": strategy,
        "manual": False,
        **extra,
    }


def intent(strategy: str, pair: str, kind: str = "enter", **extra: Any) -> StrategyIntent:
    return StrategyIntent(strategy_id=strategy, pair=pair, side="long", intent_type=kind, **extra)


def test_one_intent_is_confidence_weighted_and_approved(policies: CompiledPolicySet) -> None:
    plan = plan_intents(
        policies,
        [intent("a", "MSFT", desired_exposure_usd=Decimal(20000), confidence=Decimal("0.5"))],
        snapshot(),
        State(),
        NOW,
    )
    (action,) = plan.actions
    assert action.action_type == "open"
    assert not action.blocked
    assert action.target_notional_usd == Decimal(10000)  # 20,000 × 0.5
    assert action.target_base_size == Decimal(25)  # at 400 USD
    assert plan.metadata["resolutions"][0]["target_usd"] == Decimal("10000.00")
    assert len(plan.decisions) == 1 and plan.decisions[0].approved


def test_several_strategies_on_one_pair_aggregate_deterministically(
    policies: CompiledPolicySet,
) -> None:
    intents = [
        intent("b", "MSFT", desired_exposure_usd=Decimal(10000), confidence=Decimal("0.8")),
        intent("a", "MSFT", desired_exposure_usd=Decimal(20000), confidence=Decimal("0.25")),
    ]
    first = plan_intents(policies, intents, snapshot(), State(), NOW)
    second = plan_intents(policies, list(reversed(intents)), snapshot(), State(), NOW)
    assert first.plan_id == second.plan_id
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(
        second.to_dict(), sort_keys=True
    )
    (action,) = first.actions
    assert action.strategy_id == "a+b"
    assert action.target_notional_usd == Decimal(13000)  # 20,000×0.25 + 10,000×0.8
    contributions = first.metadata["resolutions"][0]["contributions"]
    assert [c["strategy_id"] for c in contributions] == ["a", "b"]


def test_strategy_cap_clamps_before_weighting(policies: CompiledPolicySet) -> None:
    # policies/limits.yaml: trend_following_v1 may hold at most 40 % of equity.
    plan = plan_intents(
        policies,
        [intent("trend_following_v1", "MSFT", desired_exposure_usd=Decimal(900_000))],
        snapshot(),
        State(),
        NOW,
    )
    part = plan.metadata["resolutions"][0]["contributions"][0]
    assert part["clamped_usd"] == Decimal("400000.00")
    assert "clamped to the strategy cap 40 %" in part["note"]
    # then the order itself meets the per-asset cap (5 %): downsized to 50,000 USD
    (action,) = plan.actions
    assert not action.blocked
    assert action.target_notional_usd == Decimal(50000)


def test_intent_without_exposure_is_sized_from_volatility(policies: CompiledPolicySet) -> None:
    # 1 % of 1,000,000 = 10,000 USD risk over 2 × ATR 8 = 16 USD a share: 625 shares.
    plan = plan_intents(policies, [intent("a", "MSFT")], snapshot(), State(), NOW)
    part = plan.metadata["resolutions"][0]["contributions"][0]
    assert part["desired_usd"] == Decimal("250000.00")  # 625 × 400
    assert part["note"] == "sized from volatility"


def test_kill_switch_blocks_entries_but_lets_exits_through(policies: CompiledPolicySet) -> None:
    held = [position("ETH-USD", 10, 2000, "a")]
    plan = plan_intents(
        policies,
        [
            intent("a", "MSFT", desired_exposure_usd=Decimal(1000)),
            StrategyIntent(strategy_id="a", pair="ETH-USD", side="flat", intent_type="exit"),
        ],
        snapshot(drift=True, positions=held),
        State(),
        NOW,
    )
    by_pair = {action.pair: action for action in plan.actions}
    assert by_pair["MSFT"].blocked
    assert any("drift" in reason for reason in by_pair["MSFT"].blocked_reasons)
    assert by_pair["ETH-USD"].action_type == "close"
    assert not by_pair["ETH-USD"].blocked
    assert by_pair["ETH-USD"].target_base_size == 0
    assert plan.metadata["risk_status"]["kill_switch_active"] is True


def test_hold_keeps_the_position(policies: CompiledPolicySet) -> None:
    held = [position("ETH-USD", 10, 2000, "a")]
    plan = plan_intents(
        policies,
        [intent("a", "ETH-USD", "hold", confidence=Decimal("0.1"))],
        snapshot(positions=held),
        State(),
        NOW,
    )
    (action,) = plan.actions
    assert action.action_type == "none"
    assert action.target_base_size == 10
    assert plan.decisions == ()


def test_malformed_intent_names_the_field() -> None:
    with pytest.raises(IntentError, match="confidence"):
        intent("a", "MSFT", confidence=Decimal("1.5"))
    with pytest.raises(IntentError, match="side"):
        StrategyIntent(strategy_id="a", pair="MSFT", side="short", intent_type="enter")


def test_risk_status(policies: CompiledPolicySet) -> None:
    held = [
        position("ETH-USD", 10, 2000, "a"),  # 20,000 USD, risk 10 × 50 × 2 = 1,000
        position("MSFT", 50, 400, "b", manual=True),  # 20,000 USD, risk 50 × 8 × 2 = 800
    ]
    status = risk_status(policies, snapshot(positions=held), State())
    assert status.total_exposure_pct == Decimal("4.0000")
    assert status.portfolio_risk_pct == Decimal("0.1800")
    assert status.per_asset_exposure_pct == {"ETH-USD": Decimal("2"), "MSFT": Decimal("2")}
    assert status.per_strategy_exposure_pct == {"a": Decimal("2"), "b": Decimal("2")}
    assert status.open_positions == 2
    assert not status.kill_switch_active
    assert status.trading_state == "ACTIVE"


def test_authority_counts_and_serialises_requests(policies: CompiledPolicySet) -> None:
    authority = DecisionAuthority(policies)
    snap = snapshot()
    request = OrderRequest(symbol="MSFT", action="open", target_size=Decimal(10))
    results = []
    barrier = threading.Barrier(8)

    def ask(offset: int) -> None:
        barrier.wait()
        for step in range(20):
            # 10 s before the snapshot, which shows them: only the submit rate binds
            when = NOW - timedelta(seconds=10) + timedelta(milliseconds=offset * 20 + step)
            results.append(authority.can_execute(request, snap, when))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = authority.statistics
    # submit_rate 100/1s: 160 requests inside one second, exactly 100 go through.
    assert stats.processed == 160
    assert stats.approved == 100
    assert stats.denied == 60
    assert sum(r.approved for r in results) == 100
    assert len(authority.state.authority.submits["acct"]) == 100


def test_authority_state_round_trips() -> None:
    memory = AuthorityState(
        submits={"acct": (NOW,)},
        trades={"acct/MSFT": (("open", NOW - timedelta(days=1)), ("close", NOW))},
        overrides={"acct/MSFT": NOW},
        grace={"acct/ETH-USD": NOW - timedelta(hours=5)},
    )
    state = State(authority=memory)
    again = State.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.authority == memory
    assert "authority" not in State().to_dict()  # written only when used
    shuffled = State.from_dict(
        {
            "version": 1,
            "authority": {
                "submits": {"acct": ["2026-11-20T15:00:01Z", "2026-11-20T14:58:00Z"]},
                "trades": {
                    "acct/X": [["close", "2026-11-20T12:00:00Z"], ["open", "2026-11-19T12:00:00Z"]]
                },
            },
        }
    ).authority
    assert list(shuffled.submits["acct"]) == sorted(shuffled.submits["acct"])
    assert [what for what, _ in shuffled.trades["acct/X"]] == ["open", "close"]
    with pytest.raises(StateError, match="malformed"):
        State.from_dict({"version": 1, "authority": {"trades": {"k": [["buy", "x"]]}}})


def test_with_authority_is_replace() -> None:
    """The hot-path constructor keeps every other field (guards a field reorder)."""
    state = State(
        trading_states={"acct": "REDUCING"},
        halted_symbols=frozenset({"X"}),
        reducing_symbols=frozenset({"Y"}),
        roll_urgencies={"p": "high"},
        unevaluable=frozenset({"u"}),
        counters={"evaluations": 3},
        evaluated_at=NOW,
    )
    memory = AuthorityState(overrides={"acct/X": NOW})
    assert state.with_authority(memory) == dataclasses.replace(state, authority=memory)


def test_reading_the_record_never_raises(
    policies: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a check's wording shows in the trace; it does not raise into the caller."""

    def broken(*_: object) -> str:
        raise ValueError("boom")

    monkeypatch.setattr(walk, "_facts_detail", broken)
    result = check.can_execute(
        policies,
        OrderRequest(symbol="MSFT", action="open", target_size=Decimal(1)),
        snapshot(),
        State(),
        NOW,
    )
    assert result.approved
    facts = next(c for c in result.decision.trace if c.name == "facts")
    assert facts.detail == "(wording unavailable: ValueError: boom)"
