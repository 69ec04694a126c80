"""Escalation: adverse move in ATRs -> protocol level, with hysteresis and dwell.

The comparisons (breach >= a level's threshold; breach < threshold - hysteresis)
are rules evaluated by durable-rules (`rule_specs`); this module turns the ids that
matched into a transition:

- escalate at once to the highest level reached (levels may be skipped);
- de-escalate one level at a time, only when the breach is below the current
  level's threshold minus the hysteresis AND the position has been at its level
  for at least the minimum dwell time;
- favourable moves never escalate (the breach is clamped at 0 before matching);
- an operator's manual escalation (`State.manual_escalations`) is a floor: while it
  is active the level is max(computed, manual), and the decision that raises a
  position to it says who asked, why and until when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from bastion.engine.decision import Check, Decision, Subject, render_value, values_of
from bastion.engine.policy.kinds.escalation import EscalationLevel, EscalationSpec
from bastion.engine.policy.model import Policy
from bastion.engine.rules import AllOf, Compare, RuleSpec
from bastion.engine.state import EscalationState, ManualEscalation

_CENT = Decimal("0.01")
BREACH_FIELD = "position.breach_atr"
LEVEL_FIELD = "escalation.level"  # the position's current level, in `change_specs` facts


def reach_rule(level: EscalationLevel) -> str:
    return f"reach:{level.name}"


def below_rule(level: EscalationLevel) -> str:
    return f"below:{level.name}"


def rule_specs(spec: EscalationSpec, *, reach_only: bool = False) -> list[RuleSpec]:
    """Two rules per level above the first: reached, and safely below (for stepping down).

    `reach_only` leaves out the step-down rules: a position at level 0 with no state
    has nothing to step down from, and half the rules is half the matching work.
    """
    rules = []
    for level in spec.levels[1:]:
        rules.append(RuleSpec(reach_rule(level), Compare(BREACH_FIELD, ">=", level.breach_atr)))
        if not reach_only:
            floor = level.breach_atr - spec.hysteresis_atr
            rules.append(RuleSpec(below_rule(level), Compare(BREACH_FIELD, "<", floor)))
    return rules


def change_specs(spec: EscalationSpec) -> list[RuleSpec]:
    """Rules that hold only when a position at a level may leave it: a screen.

    For a position at level c (the fact's `escalation.level`), ``up:c`` holds when the
    breach reaches any higher level, ``down:c`` when it is below c's threshold minus
    the hysteresis. When neither holds, `step` would keep the position where it is
    (no higher level reached; not safely below), so the evaluator matches the full
    `rule_specs` and steps only the positions this screen lets through. Most held
    positions hold on most ticks, and a fact that matches no rule is the cheapest
    thing the engine does.
    """
    levels = spec.levels
    rules = []
    for current, level in enumerate(levels):
        at_level = Compare(LEVEL_FIELD, "==", current)
        if current < len(levels) - 1:
            lowest_above = min(higher.breach_atr for higher in levels[current + 1 :])
            rules.append(
                RuleSpec(
                    f"up:{level.name}", AllOf(at_level, Compare(BREACH_FIELD, ">=", lowest_above))
                )
            )
        if current > 0:
            floor = level.breach_atr - spec.hysteresis_atr
            rules.append(
                RuleSpec(f"down:{level.name}", AllOf(at_level, Compare(BREACH_FIELD, "<", floor)))
            )
    return rules


@dataclass(frozen=True, slots=True)
class Breach:
    """How far a position has moved against itself, and from what."""

    breach_atr: Decimal
    atr: Decimal
    price: Decimal
    reference_price: Decimal
    side: str
    reference: str  # entry_price | previous_close


def adverse_move_atr(side: str, price: Decimal, reference: Decimal, atr: Decimal) -> Decimal:
    """Down for a long, up for a short, in ATRs; 0 when the move is favourable."""
    move = reference - price if side == "long" else price - reference
    return max(Decimal(0), move / atr)


def step(
    policy: Policy,
    subject: Subject,
    breach: Breach,
    matched: frozenset[str],
    previous: EscalationState | None,
    now: datetime,
    manual: ManualEscalation | None = None,
) -> tuple[EscalationState, Decision | None]:
    """The position's new escalation state, and a decision when its level changes.

    `manual`: an operator's floor, applied while active at `now` (the caller passes
    only the position's own; a level name the policy lacks is no floor)."""
    spec: EscalationSpec = policy.spec
    levels = spec.levels
    held_at = manual_floor(spec, manual, now)
    current = previous.level if previous is not None else 0
    current = min(current, len(levels) - 1)  # a policy edit may have removed levels
    since = previous.since if previous is not None else now
    reached = 0
    if matched:
        reached = max(
            (i for i in range(1, len(levels)) if reach_rule(levels[i]) in matched), default=0
        )
    stepping_down: list[Check] = []
    if reached > current:
        target = reached
    elif reached < current:
        level = levels[current]
        safely_below = below_rule(level) in matched
        dwell_s = Decimal((now - since).total_seconds())
        dwelled = dwell_s >= spec.min_dwell_s
        target = current - 1 if safely_below and dwelled else current
        if target != current:
            floor = level.breach_atr - spec.hysteresis_atr
            stepping_down = [
                Check(f"below {level.name} - hysteresis ({floor} ATR)", safely_below),
                Check(
                    f"at {level.name} for >= {spec.min_dwell_s} s",
                    dwelled,
                    values=values_of({"dwell_s": dwell_s.quantize(Decimal(1))}),
                ),
            ]
    else:
        target = current
    forced = held_at > target  # the operator's floor, not the breach, sets the level
    target = max(target, held_at)
    if target == current and previous is not None:
        return previous, None  # holding: the state records the breach of the last change
    state = EscalationState(
        level=target,
        level_name=levels[target].name,
        since=since if target == current and previous is not None else now,
        breach_atr=breach.breach_atr,
        policy=policy.name,
    )
    if target == current:
        return state, None  # no transition: no decision, and no trace to build
    # One ("breach_atr", text) pair: the trace's values and the decision's first input.
    breached = (("breach_atr", render_value(breach.breach_atr)),)
    trace = [
        Check(
            _reach_label(level.name, str(level.breach_atr)),
            index == 0 or reach_rule(level) in matched,
            values=breached,
        )
        for index, level in enumerate(levels)
    ]
    trace += stepping_down
    why = None
    if forced and manual is not None:
        trace.append(Check(f"manual escalation to at least {manual.level}", True))
        why = manual_text(manual)
    return state, _decision(
        policy, subject, breach, breached, levels[current], levels[target], trace, now, why
    )


def manual_floor(spec: EscalationSpec, manual: ManualEscalation | None, now: datetime) -> int:
    """The level number an active manual escalation holds the position at, else 0."""
    if manual is None or not manual.active(now):
        return 0
    return next((i for i, level in enumerate(spec.levels) if level.name == manual.level), 0)


def manual_text(manual: ManualEscalation) -> str:
    """How a decision explains a manual escalation: who, why, until when."""
    until = manual.until.isoformat() if manual.until is not None else "cleared by hand"
    return f"manual escalation by {manual.by}: {manual.reason}, until {until}"


@lru_cache(maxsize=1024)  # a handful per policy; a crash day writes thousands of traces
def _reach_label(name: str, breach_atr: str) -> str:
    # Keyed by the threshold's text: equal Decimals spelled differently (1, 1.0) must not
    # share a label, or a decision would depend on which policy was seen first.
    return f"{name}: breach >= {breach_atr} ATR"


def _decision(
    policy: Policy,
    subject: Subject,
    breach: Breach,
    breached: tuple[tuple[str, str]],
    old: EscalationLevel,
    new: EscalationLevel,
    trace: list[Check],
    now: datetime,
    manual: str | None = None,
) -> Decision:
    direction = "escalate" if new.number > old.number else "deescalate"
    against = "entry" if breach.reference == "entry_price" else "the previous close"
    threshold = new if direction == "escalate" else old
    label = "threshold" if direction == "escalate" else "left"
    reason = (
        f"{subject.id} moved {breach.breach_atr.quantize(_CENT)} ATR against "
        f"{against} (ATR {breach.atr.quantize(_CENT)}; {threshold.name} {label} "
        f"{threshold.breach_atr}): {direction} {old.name} → {new.name}, "
        f"poll every {new.interval_s} s"
    )
    if manual is not None:  # the breach did not set this level: the operator did
        reason = (
            f"{subject.id}: {manual} ({breach.breach_atr.quantize(_CENT)} ATR against "
            f"{against}): {direction} {old.name} → {new.name}, poll every {new.interval_s} s"
        )
    return Decision(
        time=now,
        kind="escalation",
        policy=policy.name,
        policy_version=policy.version,
        rule=_rule(new.name),
        subject=subject,
        outcome=direction,
        actions=new.actions,
        reasons=(reason,),
        inputs=(
            breached[0],  # rendered once, for the trace and here
            shared_pair("atr", render_value(breach.atr)),  # the symbol's: shared
            shared_pair("price", render_value(breach.price)),
            ("reference_price", render_value(breach.reference_price)),  # the position's own
            shared_pair("side", breach.side),
            shared_pair("threshold_atr", render_value(threshold.breach_atr)),
        ),
        trace=tuple(trace),
        mode=policy.mode,
        details=_details(old.name, new.name, str(new.interval_s), new.interval_s),
    )


# What every decision of the same transition (or of the same symbol) has in common is
# made once and shared: a crash day makes a decision for half the book (500,000 at 1M
# positions), and each copy of these parts cost ~60 bytes. Keyed by the rendered text,
# so a shared part is equal, byte for byte, to the one it replaces; bounded (a live
# price changes every tick) and shared by threads: a lost or cleared entry is only made
# again.
_SHARED: dict[tuple[str, str], tuple[str, str]] = {}
_SHARED_MAX = 16_384


def shared_pair(name: str, text: str) -> tuple[str, str]:
    """The input pair `(name, text)`, one object for every decision that has it."""
    pair = (name, text)
    kept = _SHARED.get(pair)
    if kept is not None:
        return kept
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[pair] = pair
    return pair


@lru_cache(maxsize=1024)  # a handful per policy: one string for every decision
def _rule(level: str) -> str:
    return f"level:{level}"


@lru_cache(maxsize=1024)  # shared: a crash day makes thousands of the same transition
def _details(
    old: str, new: str, spelled: str, interval_s: Decimal
) -> tuple[tuple[str, object], ...]:
    # `spelled` is in the key: equal Decimals spelled differently (30, 30.0) are not shared.
    return (("from_level", old), ("to_level", new), ("interval_s", interval_s))
