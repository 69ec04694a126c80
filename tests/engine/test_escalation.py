"""Escalation transitions, with the comparisons made by the compiled durable-rules ruleset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.decision import Subject
from bastion.engine.evaluation import escalation
from bastion.engine.evaluation.escalation import Breach, adverse_move_atr
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.model import Policy
from bastion.engine.rules import CompiledRuleset, compile_rules
from bastion.engine.state import EscalationState
from tests.conftest import POLICIES

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
SUBJECT = Subject("position", "SPY-123", account_id="acc-1", symbol="SPY")


@pytest.fixture(scope="module")
def policy() -> Policy:
    found = load_policy_set([POLICIES]).get("EscalationPolicy", "default-escalation")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def rules(policy: Policy) -> Iterator[CompiledRuleset]:
    with compile_rules(escalation.rule_specs(policy.spec)) as compiled:
        yield compiled


def _breach(value: str) -> Breach:
    return Breach(
        Decimal(value), Decimal("4.12"), Decimal(400), Decimal(410), "long", "entry_price"
    )


def _step(
    policy: Policy,
    rules: CompiledRuleset,
    breach: str,
    previous: EscalationState | None,
    now: datetime = T0,
):  # type: ignore[no-untyped-def]
    matched = rules.match_one({"position": {"breach_atr": Decimal(breach)}})
    return escalation.step(policy, SUBJECT, _breach(breach), matched, previous, now)


def _at(level: int, name: str, since: datetime = T0) -> EscalationState:
    return EscalationState(level, name, since, Decimal(0))


@pytest.mark.parametrize(
    ("breach", "level"),
    [
        ("0", 0),
        ("0.99", 0),
        ("1", 1),
        ("1.01", 1),
        ("1.99", 1),
        ("2", 2),
        ("2.99", 2),
        ("3", 3),
        ("7.5", 3),
    ],
)
def test_step_when_breach_at_or_around_threshold_then_level_by_greater_or_equal(
    policy: Policy, rules: CompiledRuleset, breach: str, level: int
) -> None:
    """Exactly at a threshold escalates (>=); just below does not."""
    state, _ = _step(policy, rules, breach, None)
    assert state.level == level


def test_step_when_breach_jumps_two_levels_then_skips_straight_to_highest(
    policy: Policy, rules: CompiledRuleset
) -> None:
    """From normal, a 2.31 ATR move escalates straight to recovery, with a readable reason."""
    state, decision = _step(policy, rules, "2.31", _at(0, "normal"))
    assert (state.level, state.level_name, state.since) == (2, "recovery", T0)
    assert decision is not None and decision.outcome == "escalate"
    assert decision.reasons == (
        "SPY-123 moved 2.31 ATR against entry (ATR 4.12; recovery threshold 2.0): "
        "escalate normal → recovery, poll every 30 s",
    )
    assert decision.actions == ("stop_loss", "hedge", "reduce_size")
    assert dict(decision.details)["interval_s"] == 30


def test_step_when_breach_falls_but_within_hysteresis_then_holds(
    policy: Policy, rules: CompiledRuleset
) -> None:
    """Below the threshold but not by the hysteresis (0.25 ATR): stay."""
    later = T0 + timedelta(hours=1)
    state, decision = _step(policy, rules, "1.80", _at(2, "recovery"), later)
    assert state.level == 2 and decision is None
    state, decision = _step(policy, rules, "1.75", _at(2, "recovery"), later)
    assert state.level == 2 and decision is None  # 1.75 is not < 2.0 - 0.25


def test_step_when_safely_below_and_dwelled_then_steps_down_one_level(
    policy: Policy, rules: CompiledRuleset
) -> None:
    """Calm again after the dwell: one level down, never straight to normal."""
    later = T0 + timedelta(seconds=300)
    state, decision = _step(policy, rules, "0", _at(3, "preservation"), later)
    assert (state.level, state.since) == (2, later)
    assert decision is not None and decision.outcome == "deescalate"


def test_step_when_safely_below_but_dwell_short_then_holds(
    policy: Policy, rules: CompiledRuleset
) -> None:
    """299 s at the level is one second short of the 300 s dwell."""
    state, decision = _step(policy, rules, "0", _at(2, "recovery"), T0 + timedelta(seconds=299))
    assert state.level == 2 and decision is None


def test_step_when_level_unchanged_then_since_kept(policy: Policy, rules: CompiledRuleset) -> None:
    """Holding a level keeps the time it was entered."""
    state, _ = _step(policy, rules, "1.5", _at(1, "enhanced"), T0 + timedelta(hours=2))
    assert state.since == T0


@pytest.mark.parametrize(
    ("side", "price", "expected"),
    [("long", "390", "2.5"), ("long", "410", "0"), ("short", "410", "2.5"), ("short", "390", "0")],
)
def test_adverse_move_when_side_and_direction_vary_then_only_adverse_counts(
    side: str, price: str, expected: str
) -> None:
    """Down for a long, up for a short; favourable moves are 0."""
    assert adverse_move_atr(side, Decimal(price), Decimal(400), Decimal(4)) == Decimal(expected)


@pytest.fixture(scope="module")
def screens(policy: Policy) -> Iterator[dict[str, tuple[Policy, CompiledRuleset, CompiledRuleset]]]:
    """The default policy at three hysteresis widths: its change screen and full rules."""
    variants = {}
    for hysteresis in ("0", "0.25", "1.5"):
        spec = replace(policy.spec, hysteresis_atr=Decimal(hysteresis))
        variant = replace(policy, spec=spec)
        variants[hysteresis] = (
            variant,
            compile_rules(escalation.change_specs(spec)),
            compile_rules(escalation.rule_specs(spec)),
        )
    yield variants
    for _, screen, full in variants.values():
        screen.close()
        full.close()


@settings(max_examples=400, deadline=None)
@given(
    hysteresis=st.sampled_from(["0", "0.25", "1.5"]),
    breach=st.decimals(0, 6, places=2),
    level=st.integers(0, 5),  # 4 and 5: a level the policy no longer has (clamped)
    dwell_s=st.sampled_from([0, 299, 300, 3600]),
)
def test_change_screen_when_no_rule_matches_then_step_holds(
    screens: dict[str, tuple[Policy, CompiledRuleset, CompiledRuleset]],
    hysteresis: str,
    breach: Decimal,
    level: int,
    dwell_s: int,
) -> None:
    """The evaluator steps a held position only when the screen lets it through: that
    is exact only if every position the screen stops would have held anyway."""
    variant, screen, full = screens[hysteresis]
    top = len(variant.spec.levels) - 1
    previous = _at(level, variant.spec.levels[min(level, top)].name)
    fact = {"position": {"breach_atr": breach}}
    flagged = screen.match_one({**fact, "escalation": {"level": min(level, top)}})
    matched = full.match_one(fact)
    state, decision = escalation.step(
        variant, SUBJECT, _breach(str(breach)), matched, previous, T0 + timedelta(seconds=dwell_s)
    )
    if not flagged:
        assert state is previous and decision is None
    moved = decision is not None
    assert not moved or flagged  # the contrapositive, said the way the evaluator relies on it


def test_trace_when_thresholds_equal_but_spelled_differently_then_each_as_written(
    policy: Policy,
) -> None:
    """Labels are cached; 1 and 1.0 are equal Decimals, yet each policy's trace says its
    own spelling, whichever was seen first (decisions never depend on history)."""
    labels = []
    for spelling in ("1.0", "1", "1.0"):
        levels = tuple(
            replace(level, breach_atr=Decimal(spelling)) if level.name == "enhanced" else level
            for level in policy.spec.levels
        )
        variant = replace(policy, spec=replace(policy.spec, levels=levels))
        with compile_rules(escalation.rule_specs(variant.spec)) as rules:
            matched = rules.match_one({"position": {"breach_atr": Decimal("1.5")}})
        _, decision = escalation.step(variant, SUBJECT, _breach("1.5"), matched, None, T0)
        assert decision is not None
        labels.append(decision.trace[1].name)
    assert labels == [
        "enhanced: breach >= 1.0 ATR",
        "enhanced: breach >= 1 ATR",
        "enhanced: breach >= 1.0 ATR",
    ]
