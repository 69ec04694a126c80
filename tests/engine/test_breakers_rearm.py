"""No flapping: an auto breaker re-arms only once its cooldown is over and its condition
has cleared; past the cooldown a holding condition is said once (`held`), never re-tripped."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bastion.engine.decision import Decision, Subject
from bastion.engine.evaluation import breakers
from bastion.engine.evaluation.breakers import ManualReset, Observation
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.kinds.breakers import Breaker
from bastion.engine.state import ARMED, COOLDOWN, TRIPPED, BreakerState, State
from tests.conftest import POLICIES

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
SYMBOL = Subject("symbol", "SPY", symbol="SPY")
COMPILED = compile_policy_set(load_policy_set([POLICIES]))
DEFAULT = COMPILED.policies[("BreakerPolicy", "default-breakers")]
VALUES = {"market.volatility_multiple": Decimal("2.5")}
CLEAR = {"market.volatility_multiple": Decimal("1.2")}


def _spike() -> Breaker:
    """volatility_spike: `market.volatility_multiple >= 2`, reset auto, a cooldown."""
    assert DEFAULT.policy.spec is not None
    breaker = next(b for b in DEFAULT.policy.spec.breakers if b.id == "volatility_spike")
    assert breaker.reset == "auto" and breaker.cooldown_s > 0
    return breaker


def _step(
    fired: bool, previous: BreakerState, now: datetime, reset: ManualReset | None = None
) -> tuple[BreakerState, list[Decision]]:
    observation = Observation(fired, VALUES if fired else CLEAR)
    return breakers.step(DEFAULT.policy, _spike(), SYMBOL, observation, previous, now, reset)


def _cooldown() -> timedelta:
    return timedelta(seconds=float(_spike().cooldown_s))


def test_step_when_condition_holds_past_cooldown_then_stays_tripped_and_says_so_once() -> None:
    """At the end of the cooldown a holding condition keeps the breaker tripped: one
    `held` decision naming the value against the threshold, no rearm, no second trip."""
    tripped, _ = _step(True, BreakerState(ARMED), T0)
    held, decisions = _step(True, tripped, T0 + _cooldown())
    assert held.status == TRIPPED and held.awaiting_clear and held.trip_count == 1
    assert [d.outcome for d in decisions] == ["held"]
    reason = decisions[0].reasons[0]
    assert reason.startswith("still tripped: market.volatility_multiple = 2.50 vs threshold")
    assert "market.volatility_multiple >= 2" in reason
    assert decisions[0].actions == (_spike().action,)
    later, again = _step(True, held, T0 + _cooldown() * 3)
    assert later is held and again == []


def test_step_when_held_breaker_condition_clears_then_rearms_once() -> None:
    """A breaker held past its cooldown re-arms at the first cycle its condition clears."""
    tripped, _ = _step(True, BreakerState(ARMED), T0)
    held, _ = _step(True, tripped, T0 + _cooldown())
    armed, decisions = _step(False, held, T0 + _cooldown() + timedelta(seconds=30))
    assert armed.status == ARMED and not armed.awaiting_clear
    assert [d.outcome for d in decisions] == ["rearm"]
    assert "no longer holds" in decisions[0].reasons[0]


def test_step_when_condition_clears_before_cooldown_ends_then_rearms_at_its_end() -> None:
    """Cleared during the cooldown: cooldown status, re-armed when the cooldown ends."""
    tripped, _ = _step(True, BreakerState(ARMED), T0)
    cooling, none = _step(False, tripped, T0 + timedelta(seconds=1))
    assert cooling.status == COOLDOWN and none == []
    early, _ = _step(False, cooling, T0 + _cooldown() - timedelta(seconds=1))
    assert early.status == COOLDOWN
    armed, decisions = _step(False, cooling, T0 + _cooldown())
    assert armed.status == ARMED and [d.outcome for d in decisions] == ["rearm"]


def test_step_when_condition_back_at_cooldown_end_then_held_not_retripped() -> None:
    """Cleared during the cooldown but back when it ends: held, not a second trip."""
    tripped, _ = _step(True, BreakerState(ARMED), T0)
    cooling, _ = _step(False, tripped, T0 + timedelta(seconds=1))
    held, decisions = _step(True, cooling, T0 + _cooldown())
    assert held.status == TRIPPED and held.trip_count == 1
    assert [d.outcome for d in decisions] == ["held"]


def test_step_when_condition_flaps_every_cycle_then_at_most_one_trip_per_cooldown() -> None:
    """A condition that comes and goes every 10 s for ten cooldowns: the trips (the
    alerts) are at least a cooldown apart, and there are no more than ten of them."""
    state, trips = BreakerState(ARMED), []
    now, end = T0, T0 + _cooldown() * 10
    fired = True
    while now < end:
        state, decisions = _step(fired, state, now)
        trips += [d.time for d in decisions if d.outcome == "trip"]
        fired, now = not fired, now + timedelta(seconds=10)
    assert 1 <= len(trips) <= 10
    assert all(b - a >= _cooldown() for a, b in itertools.pairwise(trips))


def test_step_when_condition_holds_for_ten_cooldowns_then_one_trip_and_one_held() -> None:
    """The sim's flapping case: a condition that never clears trips once, is held once."""
    state, outcomes = BreakerState(ARMED), []
    for second in range(0, int(_cooldown().total_seconds()) * 10, 15):
        state, decisions = _step(True, state, T0 + timedelta(seconds=second))
        outcomes += [d.outcome for d in decisions]
    assert outcomes == ["trip", "held"]


def test_step_when_operator_resets_held_breaker_then_armed_and_flag_cleared() -> None:
    """A manual reset of a held breaker re-arms it (and re-trips at once if it holds)."""
    tripped, _ = _step(True, BreakerState(ARMED), T0)
    held, _ = _step(True, tripped, T0 + _cooldown())
    reset = ManualReset("volatility_spike", "symbol:SPY", "alice", "checked the feed")
    state, decisions = _step(False, held, T0 + _cooldown() * 2, reset)
    assert state.status == ARMED and not state.awaiting_clear
    assert [d.outcome for d in decisions] == ["reset"]


def test_state_when_breaker_awaits_clear_then_round_trips_and_older_files_read() -> None:
    """The flag is written when set (older state files, without it, read as False)."""
    state = State(
        breakers={"p:b@symbol:SPY": BreakerState(TRIPPED, T0, T0, 1, awaiting_clear=True)}
    )
    data = state.to_dict()
    assert data["breakers"]["p:b@symbol:SPY"]["awaiting_clear"] is True
    assert State.from_dict(data).breakers["p:b@symbol:SPY"].awaiting_clear
    del data["breakers"]["p:b@symbol:SPY"]["awaiting_clear"]
    assert not State.from_dict(data).breakers["p:b@symbol:SPY"].awaiting_clear
    plain = State(breakers={"p:b@symbol:SPY": BreakerState(TRIPPED, T0, T0, 1)}).to_dict()
    assert "awaiting_clear" not in plain["breakers"]["p:b@symbol:SPY"]
