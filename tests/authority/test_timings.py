"""Timings only with an injected clock: then every check has its elapsed time and the
decision its latency; without one the same inputs give the same bytes. The decision id
never depends on timings."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet
from tests.authority.builders import (
    DAY,
    KEY,
    NOW,
    canonical,
    decide,
    position,
    request,
    round_trips,
    snapshot,
    state,
)
from tests.authority.conftest import PolicyFactory


def fake_clock(step_ns: int = 1_500) -> Callable[[], int]:
    """A monotonic counter: each read is `step_ns` later than the one before."""
    ticks = itertools.count(1_000_000_000, step_ns)
    return lambda: next(ticks)


def _approved() -> tuple[Any, Any, Any]:
    return request("open", target_size=10), snapshot(), state()


def _downsized() -> tuple[Any, Any, Any]:
    return request("open", target_size=5000, size_increment=1), snapshot(), state()


def _protected() -> tuple[Any, Any, Any]:
    young = snapshot(positions=[position(quantity=10, entered_at=NOW - DAY)])
    return request("decrease", target_size=5, current_score="0.1"), young, state()


def _overridden() -> tuple[Any, Any, Any]:
    young = snapshot(
        positions=[position(quantity=10, entered_at=NOW - DAY)], regime="crash", severity="critical"
    )
    return request("close"), young, state()


def _override_unused() -> tuple[Any, Any, Any]:
    crash = snapshot(regime="crash", severity="critical", drift=True)
    return request("open", target_size=10), crash, state(trades=round_trips(2, last_close=NOW))


def _error() -> tuple[Any, Any, Any]:
    return request("open", target_size=10, account_id="nope"), snapshot(), state()


SCENARIOS = {
    "approved": _approved,
    "downsized": _downsized,
    "denied-by-protection": _protected,
    "override-applied": _overridden,
    "override-unused": _override_unused,
    "error": _error,
}
CHECKED = [name for name in SCENARIOS if name != "error"]


@pytest.fixture(scope="module")
def capped(policies: PolicyFactory) -> CompiledPolicySet:
    """Loose limits but 1 % risk per trade, so that a 5 000-unit open is downsized."""
    return policies(limits={"risk": {"max_risk_per_trade_pct": 1}})


@pytest.mark.parametrize("scenario", CHECKED)
def test_timings_when_clock_injected_then_every_check_timed(
    capped: CompiledPolicySet, scenario: str
) -> None:
    order, snap, memory = SCENARIOS[scenario]()
    result = decide(capped, order, snap, memory, clock_ns=fake_clock())
    assert result.checks
    assert all(isinstance(check.elapsed_us, int) for check in result.checks), result.checks
    assert all(check.elapsed_us >= 0 for check in result.checks)  # type: ignore[operator]
    assert result.latency_us > 0
    assert result.decision.latency_us == result.latency_us
    assert sum(check.elapsed_us or 0 for check in result.checks) <= result.latency_us
    trace = result.to_dict()["decision"]["trace"]
    assert all("elapsed_us" in entry for entry in trace)


def test_timings_when_clock_advances_then_latency_measures_it(capped: CompiledPolicySet) -> None:
    order, snap, memory = _approved()
    slow = decide(capped, order, snap, memory, clock_ns=fake_clock(step_ns=1_000_000))
    fast = decide(capped, order, snap, memory, clock_ns=fake_clock(step_ns=1_000))
    assert slow.latency_us == 1000 * fast.latency_us
    assert [c.elapsed_us for c in slow.checks] == [1000 * (c.elapsed_us or 0) for c in fast.checks]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_timings_when_no_clock_then_none_recorded_and_bytes_identical(
    capped: CompiledPolicySet, scenario: str
) -> None:
    results = [decide(capped, *SCENARIOS[scenario]()) for _ in range(3)]
    assert len({canonical(result) for result in results}) == 1
    for result in results:
        assert result.latency_us == 0
        assert result.decision.latency_us == 0
        assert all(check.elapsed_us is None for check in result.checks)
        assert "elapsed_us" not in canonical(result)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_timings_when_clocked_or_not_then_same_decision_id_and_content(
    capped: CompiledPolicySet, scenario: str
) -> None:
    order, snap, memory = SCENARIOS[scenario]()
    plain = decide(capped, order, snap, memory)
    timed = decide(capped, order, snap, memory, clock_ns=fake_clock())
    other = decide(capped, order, snap, memory, clock_ns=fake_clock(step_ns=777_777))
    assert plain.decision.id == timed.decision.id == other.decision.id
    plain_dict, timed_dict = plain.to_dict(), timed.to_dict()
    for entry in timed_dict["decision"]["trace"]:
        entry.pop("elapsed_us", None)
    timed_dict["decision"]["latency_us"] = 0
    assert timed_dict == plain_dict
    assert timed.state == plain.state


def test_timings_when_override_applied_then_state_records_it(
    capped: CompiledPolicySet,
) -> None:
    """The clocked override scenario really is an override (the id test covers it)."""
    order, snap, memory = _overridden()
    result = decide(capped, order, snap, memory, clock_ns=fake_clock())
    assert result.override_applied is True
    assert result.state.authority.overrides == {KEY: NOW}
