"""Breaker state machine: trip, cooldown, re-arm, manual reset; boundaries via durable-rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.engine.decision import Subject
from bastion.engine.evaluation import breakers
from bastion.engine.evaluation.breakers import ManualReset, Observation
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.kinds.breakers import Breaker
from bastion.engine.policy.model import Policy
from bastion.engine.state import ARMED, COOLDOWN, TRIPPED, BreakerState
from tests.conftest import POLICIES

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
ACCOUNT = Subject("account", "acc-1", account_id="acc-1")
POLICY_SET = load_policy_set([POLICIES])
COMPILED = compile_policy_set(POLICY_SET)
DEFAULT = COMPILED.policies[("BreakerPolicy", "default-breakers")]


def _breaker(breaker_id: str) -> Breaker:
    assert DEFAULT.policy.spec is not None
    return next(b for b in DEFAULT.policy.spec.breakers if b.id == breaker_id)


def _fires(breaker_id: str, **metrics: str) -> bool:
    """Ask the compiled single-breaker ruleset, as the evaluator does."""
    assert DEFAULT.breakers is not None
    fact: dict[str, dict[str, Decimal]] = {}
    for dotted, value in metrics.items():
        group, name = dotted.split("__")
        fact.setdefault(group, {})[name] = Decimal(value)
    return breaker_id in DEFAULT.breakers.single_rules[breaker_id].match_one(fact)


@pytest.mark.parametrize(
    ("breaker_id", "metric", "below", "at", "above"),
    [
        ("portfolio_loss", "portfolio__loss_pct", "4.99", "5", "5.01"),
        ("daily_loss_usd", "account__daily_loss_usd", "999.99", "1000", "1000.01"),
        ("drawdown", "account__drawdown_pct", "14.99", "15", "15.01"),
        ("drawdown_emergency", "account__drawdown_pct", "19.99", "20", "20.01"),
        ("system_error_rate", "system__error_rate_pct", "9.99", "10", "10.01"),
        ("volatility_spike", "market__volatility_multiple", "1.99", "2", "2.01"),
        ("stale_data", "system__data_age_s", "599", "600", "601"),
    ],
)
def test_breaker_when_metric_at_threshold_with_ge_then_trips_at_and_above(
    breaker_id: str, metric: str, below: str, at: str, above: str
) -> None:
    """`>=` breakers: one tick below holds, exactly at and above trip."""
    assert not _fires(breaker_id, **{metric: below})
    assert _fires(breaker_id, **{metric: at})
    assert _fires(breaker_id, **{metric: above})


@pytest.mark.parametrize(
    ("breaker_id", "metric", "at", "above"),
    [
        ("slippage", "orders__slippage_bps", "50", "50.01"),
        ("order_rate", "orders__per_minute", "60", "61"),
    ],
)
def test_breaker_when_metric_at_threshold_with_gt_then_only_above_trips(
    breaker_id: str, metric: str, at: str, above: str
) -> None:
    """`>` breakers: exactly at the threshold does not trip."""
    assert not _fires(breaker_id, **{metric: at})
    assert _fires(breaker_id, **{metric: above})


def test_breaker_when_quality_below_floor_then_lt_trips() -> None:
    """data_quality uses `<`: 0.5 itself is fine, 0.49 trips."""
    assert not _fires("data_quality", market__quality_score_ratio="0.5")
    assert _fires("data_quality", market__quality_score_ratio="0.49")


def test_custom_when_rule_when_both_legs_hold_then_trips() -> None:
    """The custom all-of breaker needs both volatility and volume."""
    assert _fires(
        "vol_and_volume_surge", market__volatility_multiple="1.5", market__volume_multiple="3"
    )
    assert not _fires(
        "vol_and_volume_surge", market__volatility_multiple="1.5", market__volume_multiple="2.99"
    )


def _step(
    breaker: Breaker,
    fired: bool,
    previous: BreakerState,
    now: datetime,
    reset: ManualReset | None = None,
):  # type: ignore[no-untyped-def]
    policy: Policy = DEFAULT.policy
    observation = Observation(fired, {"account.drawdown_pct": Decimal("16")})
    return breakers.step(policy, breaker, ACCOUNT, observation, previous, now, reset)


def test_step_when_armed_and_condition_holds_then_trips_with_until_and_count() -> None:
    """A trip sets until = now + cooldown and counts the trip, with a decision."""
    state, decisions = _step(_breaker("drawdown"), True, BreakerState(ARMED), T0)
    assert state.status == TRIPPED and state.trip_count == 1
    assert state.until == T0 + timedelta(seconds=3600)
    assert [d.outcome for d in decisions] == ["trip"]
    assert decisions[0].actions == ("reduce_only",)
    assert "resume after a manual reset" in decisions[0].reasons[0]


def test_step_when_condition_clears_during_cooldown_then_cooldown_status() -> None:
    """The action stays in force; the status shows the condition has cleared."""
    tripped, _ = _step(_breaker("drawdown"), True, BreakerState(ARMED), T0)
    state, decisions = _step(_breaker("drawdown"), False, tripped, T0 + timedelta(minutes=10))
    assert state.status == COOLDOWN and decisions == []


def test_step_when_manual_reset_breaker_past_cooldown_then_awaits_operator() -> None:
    """reset: manual never re-arms by itself."""
    tripped, _ = _step(_breaker("drawdown"), True, BreakerState(ARMED), T0)
    state, decisions = _step(_breaker("drawdown"), False, tripped, T0 + timedelta(hours=2))
    assert state.status == TRIPPED and state.awaiting_manual_reset and decisions == []


def test_step_when_operator_resets_then_armed_and_decision_names_who_and_why() -> None:
    """A manual reset is an input event recorded with who and why."""
    tripped, _ = _step(_breaker("drawdown"), True, BreakerState(ARMED), T0)
    reset = ManualReset("drawdown", "account:acc-1", "alice", "loss booked, limits reviewed")
    state, decisions = _step(_breaker("drawdown"), False, tripped, T0 + timedelta(hours=2), reset)
    assert state.status == ARMED and state.last_reset_by == "alice"
    assert decisions[0].outcome == "reset" and "alice" in decisions[0].reasons[0]


def test_step_when_reset_while_condition_still_holds_then_trips_again() -> None:
    """Resetting does not override the data: a live condition re-trips at once."""
    tripped, _ = _step(_breaker("drawdown"), True, BreakerState(ARMED), T0)
    reset = ManualReset("drawdown", "account:acc-1", "bob", "testing")
    state, decisions = _step(_breaker("drawdown"), True, tripped, T0 + timedelta(hours=2), reset)
    assert state.status == TRIPPED and state.trip_count == 2
    assert [d.outcome for d in decisions] == ["reset", "trip"]


def test_step_when_auto_breaker_cooldown_elapses_then_rearms() -> None:
    """reset: auto re-arms after the cooldown, with a decision."""
    breaker = _breaker("volatility_spike")
    tripped, _ = _step(breaker, True, BreakerState(ARMED), T0)
    state, decisions = _step(breaker, False, tripped, T0 + timedelta(seconds=3600))
    assert state.status == ARMED and [d.outcome for d in decisions] == ["rearm"]
    early, _ = _step(breaker, False, tripped, T0 + timedelta(seconds=3599))
    assert early.status == COOLDOWN
