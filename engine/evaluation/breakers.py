"""Circuit breakers: condition (evaluated by durable-rules) -> trip, cooldown, reset.

States per (policy, breaker, subject):

    armed --condition holds--> tripped (until = now + cooldown; trip_count + 1)
    tripped --condition clears, cooldown running--> cooldown (action still in force)
    tripped/cooldown --now >= until--> reset: auto, condition cleared -> armed (`rearm`)
                                        reset: auto, condition holds -> stays tripped,
                                            said once (`held`: value vs threshold), and
                                            re-arms at the first cycle it has cleared
                                        reset: manual -> stays, awaiting a ManualReset
    any --ManualReset(by, reason)--> armed (re-trips at once if the condition holds)

No flapping: an auto breaker re-arms only once its cooldown is over *and* its condition
has cleared, so two trips (two alerts) of one breaker for one subject are at least a
cooldown apart, however long the condition holds.

A breaker whose metric is missing for a subject cannot be evaluated: that is
reported as outcome `unevaluable` with action `reduce_only` (fail safe: no new
risk until the data is back), never silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from bastion.engine.decision import Check, Decision, Subject, shown, values_of
from bastion.engine.policy.kinds import breakers as kind
from bastion.engine.policy.model import Policy
from bastion.engine.rules import AllOf, AnyOf, Compare, Condition, Not, RuleSpec
from bastion.engine.state import ARMED, COOLDOWN, TRIPPED, BreakerState

# What a tripped breaker's action does to trading (the strictest wins).
ACTION_TRADING_STATE = {
    "halt_all": "HALTED",
    "reduce_only": "REDUCING",
    "close_risky": "REDUCING",
}
FAIL_SAFE_ACTION = "reduce_only"


@dataclass(frozen=True, slots=True)
class ManualReset:
    """An operator's reset of a tripped breaker: an input event, with who and why."""

    breaker_id: str
    subject: str  # Subject.label(), e.g. "account:acc-1" or "portfolio:all"
    by: str
    reason: str


def to_rule_condition(condition: kind.Condition) -> Condition:
    if isinstance(condition, kind.Compare):
        return Compare(condition.metric, condition.op, condition.value)
    if isinstance(condition, kind.AllOf):
        return AllOf(*map(to_rule_condition, condition.conditions))
    if isinstance(condition, kind.AnyOf):
        return AnyOf(*map(to_rule_condition, condition.conditions))
    return Not(to_rule_condition(condition.condition))


def rule_spec(breaker: kind.Breaker) -> RuleSpec:
    return RuleSpec(breaker.id, to_rule_condition(breaker.condition))


def describe(condition: kind.Condition) -> str:
    if isinstance(condition, kind.Compare):
        return f"{condition.metric} {condition.op} {condition.value}"
    if isinstance(condition, kind.Not):
        return f"not ({describe(condition.condition)})"
    joiner = " and " if isinstance(condition, kind.AllOf) else " or "
    return "(" + joiner.join(describe(child) for child in condition.conditions) + ")"


def state_key(policy: Policy, breaker: kind.Breaker, subject: Subject) -> str:
    return key_of(policy.name, breaker.id, subject.label())


def key_of(policy: str, breaker: str, subject: str) -> str:
    """A breaker's key in State.breakers, from its policy's name, its id and its
    subject's label (as a breaker alert's details name them)."""
    return f"{policy}:{breaker}@{subject}"


@dataclass(frozen=True, slots=True)
class Observation:
    """What the rules engine said about one breaker for one subject."""

    fired: bool
    values: dict[str, Decimal]  # the metrics the condition compares, for the record


def step(
    policy: Policy,
    breaker: kind.Breaker,
    subject: Subject,
    observation: Observation,
    previous: BreakerState,
    now: datetime,
    reset: ManualReset | None = None,
) -> tuple[BreakerState, list[Decision]]:
    decisions: list[Decision] = []
    state = previous
    if reset is not None and state.status != ARMED:
        decisions.append(
            _decision(
                policy,
                breaker,
                subject,
                observation,
                now,
                "reset",
                (),
                [f"manually reset by {reset.by}: {reset.reason}"],
            )
        )
        state = replace(
            state,
            status=ARMED,
            awaiting_manual_reset=False,
            awaiting_clear=False,
            last_reset_by=reset.by,
            last_reset_reason=reset.reason,
        )
    if state.status != ARMED and state.until is not None and now >= state.until:
        if breaker.reset == "manual":
            state = replace(state, awaiting_manual_reset=True)
        elif not observation.fired:
            decisions.append(
                _decision(
                    policy,
                    breaker,
                    subject,
                    observation,
                    now,
                    "rearm",
                    (),
                    [_rearm_reason(breaker, observation, state.awaiting_clear)],
                )
            )
            state = replace(state, status=ARMED, awaiting_manual_reset=False, awaiting_clear=False)
        elif not state.awaiting_clear:  # cooldown over, the condition still holds: say so once
            decisions.append(
                _decision(
                    policy,
                    breaker,
                    subject,
                    observation,
                    now,
                    "held",
                    (breaker.action,),
                    [_held_reason(breaker, observation)],
                )
            )
            state = replace(state, status=TRIPPED, awaiting_clear=True)
    if state.status == ARMED:
        if observation.fired:
            until = now + timedelta(seconds=float(breaker.cooldown_s))
            state = BreakerState(
                status=TRIPPED,
                tripped_at=now,
                until=until,
                trip_count=previous.trip_count + 1,
                awaiting_manual_reset=False,
                last_reset_by=state.last_reset_by,
                last_reset_reason=state.last_reset_reason,
            )
            resume = "automatically" if breaker.reset == "auto" else "after a manual reset"
            effect = (
                f"close {subject.id}; the breaker re-arms after {breaker.cooldown_s} s"
                if breaker.action == "close_position"
                else f"{breaker.action} for at least {breaker.cooldown_s} s, then resume"
            )
            if breaker.reset == "auto":  # and never while the condition holds (no flapping)
                resume = "automatically once the condition has cleared"
            decisions.append(
                _decision(
                    policy,
                    breaker,
                    subject,
                    observation,
                    now,
                    "trip",
                    (breaker.action,),
                    [
                        f"{describe(breaker.condition)} holds ({_shown(observation.values)}): "
                        f"{effect} {resume}"
                    ],
                )
            )
        return state, decisions
    status = TRIPPED if observation.fired or state.awaiting_manual_reset else COOLDOWN
    if status == state.status:  # the common case, every cycle a breaker stays tripped
        return state, decisions
    return replace(state, status=status), decisions


def of_held_positions(
    states: Mapping[str, BreakerState], held: Set[str]
) -> dict[str, BreakerState]:
    """The breaker states without those of positions no longer held.

    A closed position's breaker restricts nothing (it is never evaluated again), and a
    trailing stop or take-profit leaves one state behind per exit: kept, they would
    grow the state without end and list as "not armed" forever. `held`: the ids of the
    snapshot's positions and of those left out of it (still held, unreadable)."""
    return {
        key: state
        for key, state in states.items()
        if not (subject := key.partition("@")[2]).startswith("position:")
        or subject[len("position:") :] in held
    }


def unevaluable(
    policy: Policy, breaker: kind.Breaker, subject: Subject, missing: list[str], now: datetime
) -> Decision:
    return Decision(
        time=now,
        kind="breaker",
        policy=policy.name,
        policy_version=policy.version,
        rule=breaker.id,
        subject=subject,
        outcome="unevaluable",
        actions=(FAIL_SAFE_ACTION,),
        reasons=(
            f"cannot evaluate {breaker.id}: {', '.join(missing)} missing for {subject.label()}; "
            "no new risk until the data is back",
        ),
        inputs=(),
        trace=(Check(f"metrics present: {', '.join(missing)}", False),),
        mode=policy.mode,
        details=(("severity", breaker.severity),),
    )


def _held_reason(breaker: kind.Breaker, observation: Observation) -> str:
    return (
        f"still tripped: {_shown(observation.values)} vs threshold "
        f"{describe(breaker.condition)}; the cooldown of {breaker.cooldown_s} s is over but "
        f"the condition holds: {breaker.action} stays in force, and the breaker re-arms "
        "once the condition has cleared"
    )


def _rearm_reason(breaker: kind.Breaker, observation: Observation, held: bool) -> str:
    cleared = f"{describe(breaker.condition)} no longer holds ({_shown(observation.values)})"
    if held:
        return f"{cleared}: re-armed (its cooldown of {breaker.cooldown_s} s was already over)"
    return f"cooldown of {breaker.cooldown_s} s elapsed and {cleared}: re-armed"


def _shown(values: dict[str, Decimal]) -> str:
    return ", ".join(f"{name} = {shown(value)}" for name, value in sorted(values.items()))


def _decision(
    policy: Policy,
    breaker: kind.Breaker,
    subject: Subject,
    observation: Observation,
    now: datetime,
    outcome: str,
    actions: tuple[str, ...],
    reasons: list[str],
) -> Decision:
    return Decision(
        time=now,
        kind="breaker",
        policy=policy.name,
        policy_version=policy.version,
        rule=breaker.id,
        subject=subject,
        outcome=outcome,
        actions=actions,
        reasons=tuple(reasons),
        inputs=values_of(sorted(observation.values.items())),
        trace=(
            Check(
                describe(breaker.condition),
                observation.fired,
                values=values_of(sorted(observation.values.items())),
            ),
        ),
        mode=policy.mode,
        details=(
            ("severity", breaker.severity),
            ("cooldown_s", breaker.cooldown_s),
            ("reset", breaker.reset),
        ),
    )
