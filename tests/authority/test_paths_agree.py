"""The fast path and the recorded path decide alike.

Without a clock, `can_execute` skips recording passing checks and walks only what fired;
with one (or when the audit record is read) the same walk is recorded in full. Both must
give the same answer, and the audit record must say what the answer says — for any
request, snapshot and memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.authority.rules import SIZE_LIMITS
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from tests.authority.builders import (
    DAY,
    KEY,
    NOW,
    SYMBOL,
    decide,
    market,
    position,
    request,
    round_trips,
    snapshot,
    state,
    summary,
)
from tests.conftest import POLICIES

CORE = "SPY"


@pytest.fixture(scope="module")
def shipped() -> Iterator[CompiledPolicySet]:
    """The shipped policies as they are: every limit binds somewhere in the space below."""
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    yield compiled
    compiled.close()


def _clock() -> Callable[[], int]:
    ticks = itertools.count(10**9, 1_700)
    return lambda: next(ticks)


@st.composite
def cases(draw: Any) -> tuple[Any, Any, Any]:
    symbol = draw(st.sampled_from([SYMBOL, CORE]))
    held = draw(st.sampled_from([0, 5, 40, 400]))
    side = draw(st.sampled_from(["long", "short"]))
    action = draw(st.sampled_from(["open", "increase", "decrease", "close", "cancel"]))
    sized = draw(st.sampled_from([None, 0, 3, 60, 900, 5_000]))
    fields: dict[str, Any] = {"account_id": "acct-1", "side": side, "size_increment": 1}
    if sized is not None and action not in ("close", "cancel"):
        fields["target_size"] = sized
    if draw(st.booleans()):
        fields["current_size"] = draw(st.sampled_from([0, 5, 40]))
    if draw(st.booleans()):
        fields["current_score"] = draw(st.sampled_from(["0.2", "0.5", "0.9"]))
    if draw(st.booleans()):
        fields["strategy_id"] = draw(st.sampled_from(["mean_reversion_v1", "trend_following_v1"]))
    entered = NOW - DAY * draw(st.sampled_from([0, 1, 3, 30]))
    order = request(
        action,
        symbol,
        entry_at=entered if draw(st.booleans()) else None,
        score_below_since=NOW - DAY * draw(st.sampled_from([1, 9]))
        if draw(st.booleans())
        else None,
        **fields,
    )
    positions = [position(symbol, quantity=held, side=side)] if held else []
    snap = snapshot(
        equity=100_000,
        cash=draw(st.sampled_from([100_000, 2_000])),
        day_start=draw(st.sampled_from([100_000, 120_000])),
        drift=draw(st.booleans()),
        positions=positions,
        markets={
            SYMBOL: market(liquidity=draw(st.sampled_from([10_000_000, 50_000]))),
            CORE: market(),
        },
        severity=draw(st.sampled_from(["low", "high", "critical"])),
    )
    memory = state(
        submits=[
            NOW - timedelta(milliseconds=10 * k) for k in range(draw(st.sampled_from([0, 150])))
        ],
        trades=round_trips(draw(st.integers(0, 3)), last_close=NOW - timedelta(hours=2)),
        overrides={KEY: NOW - timedelta(minutes=draw(st.sampled_from([1, 600])))}
        if draw(st.booleans())
        else None,
        trading_states={"acct-1": draw(st.sampled_from(["ACTIVE", "REDUCING", "HALTED"]))},
    )
    return order, snap, memory


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_fast_and_recorded_paths_when_any_case_then_same_answer(
    shipped: CompiledPolicySet, case: tuple[Any, Any, Any]
) -> None:
    order, snap, memory = case
    fast = decide(shipped, order, snap, memory)
    clocked = decide(shipped, order, snap, memory, clock_ns=_clock())
    assert summary(fast) == summary(clocked)
    assert fast.reasons == clocked.reasons
    assert fast.override_applied == clocked.override_applied
    assert fast.override_reason == clocked.override_reason
    assert fast.state == clocked.state
    # The audit record (replayed for the fast path) says what the answer says.
    for result in (fast, clocked):
        record = result.decision
        assert record.outcome == result.outcome
        assert dict(record.details)["blocking"] == list(result.blocking)
        assert record.reasons == result.reasons
        failed = {check.name for check in result.checks if not check.passed}
        assert set(result.blocking) <= failed | {"error"}
        if result.outcome == "downsized":
            assert failed and failed <= set(SIZE_LIMITS)
        if result.outcome == "approved":
            assert not failed
    assert [c.name for c in fast.checks] == [c.name for c in clocked.checks]
