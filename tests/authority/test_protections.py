"""Each protection alone: core asset immunity, grace period, holding period, whipsaw.

policies/protection.yaml as shipped: core assets SPY, QQQ, BTC/USD immune to close and
decrease; grace 3 days below score 0.4; holding 5 days; whipsaw 2 round trips in 7
days; regime override from severity high (the snapshots here are low: no override).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet
from tests.authority.builders import (
    DAY,
    KEY,
    NOW,
    SYMBOL,
    D,
    decide,
    market,
    position,
    request,
    round_trips,
    snapshot,
    state,
    summary,
)
from tests.authority.conftest import PolicyFactory

SECOND = timedelta(seconds=1)
APPROVED_CLOSE = ("approved", True, D(0), ())


def held(*, entered_days_ago: float = 30, quantity: int = 10, symbol: str = SYMBOL) -> Any:
    """A snapshot holding `quantity` units of `symbol`, entered that many days ago."""
    markets = {SYMBOL: market(), symbol: market()}
    entered = NOW - timedelta(days=entered_days_ago)
    return snapshot(positions=[position(symbol, quantity, entered_at=entered)], markets=markets)


# -- core asset immunity ------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "BTC/USD"])
@pytest.mark.parametrize(
    ("action", "target"), [("close", None), ("decrease", 5)], ids=["close", "decrease"]
)
def test_core_asset_when_sold_down_then_denied_by_core_immunity(
    default_policies: CompiledPolicySet, symbol: str, action: str, target: int | None
) -> None:
    result = decide(
        default_policies, request(action, symbol, target_size=target), held(symbol=symbol)
    )
    assert summary(result) == ("denied", False, None, ("core_asset_immunity",))
    assert result.decision.rule == "core_asset_immunity"


@pytest.mark.parametrize(
    ("action", "target", "size"),
    [("open", 5, 5), ("increase", 15, 15)],
    ids=["open", "increase"],
)
def test_core_asset_when_bought_then_approved(
    default_policies: CompiledPolicySet, action: str, target: int, size: int
) -> None:
    snap = held(symbol="SPY") if action == "increase" else snapshot(markets={"SPY": market()})
    result = decide(default_policies, request(action, "SPY", target_size=target), snap)
    assert summary(result) == ("approved", True, D(size), ())


def test_core_asset_when_not_core_then_close_approved(default_policies: CompiledPolicySet) -> None:
    assert summary(decide(default_policies, request("close"), held())) == APPROVED_CLOSE


def test_core_asset_when_blocked_actions_only_close_then_decrease_approved(
    policies: PolicyFactory,
) -> None:
    compiled = policies(protection={"core_asset_immunity": {"blocked_actions": ["close"]}})
    snap = held(symbol="SPY")
    decrease = decide(compiled, request("decrease", "SPY", target_size=5), snap)
    close = decide(compiled, request("close", "SPY"), snap)
    assert summary(decrease) == ("approved", True, D(5), ())
    assert summary(close) == ("denied", False, None, ("core_asset_immunity",))


# -- grace period ---------------------------------------------------------------------


def sell(score: str | None = "0.3", **position_context: Any) -> Any:
    """Decrease XYZ from 10 (held 30 days: no holding period) to 5 at this score."""
    return request("decrease", target_size=5, current_score=score, **position_context)


def test_grace_when_score_first_seen_below_floor_then_denied_and_clock_started(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, sell(), held())
    assert summary(result) == ("denied", False, None, ("grace_period",))
    assert result.state.authority.grace == {KEY: NOW}


@pytest.mark.parametrize(
    ("below_for", "outcome"),
    [
        (timedelta(0), "denied"),
        (2 * DAY, "denied"),
        (3 * DAY - SECOND, "denied"),
        (3 * DAY, "approved"),  # the 3-day grace is over
        (4 * DAY, "approved"),
    ],
    ids=["now", "2d", "3d-1s", "3d", "4d"],
)
@pytest.mark.parametrize("source", ["request", "state"])
def test_grace_when_below_floor_for_a_while_then_blocked_only_within_duration(
    default_policies: CompiledPolicySet, below_for: timedelta, outcome: str, source: str
) -> None:
    since = NOW - below_for
    if source == "request":
        result = decide(default_policies, sell(score_below_since=since), held())
    else:
        result = decide(default_policies, sell(), held(), state(grace={KEY: since}))
    expected = (
        ("approved", True, D(5), ())
        if outcome == "approved"
        else ("denied", False, None, ("grace_period",))
    )
    assert summary(result) == expected


def test_grace_when_close_instead_of_decrease_then_denied(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, request("close", current_score="0.3"), held())
    assert summary(result) == ("denied", False, None, ("grace_period",))


@pytest.mark.parametrize(
    ("score", "blocked"),
    [("0.39", True), ("0.4", False), ("0.41", False), (None, False)],
    ids=["below", "at-floor", "above", "no-score"],
)
def test_grace_when_score_at_or_above_floor_then_no_grace(
    default_policies: CompiledPolicySet, score: str | None, blocked: bool
) -> None:
    result = decide(default_policies, sell(score, score_below_since=NOW), held())
    expected = (
        ("denied", False, None, ("grace_period",)) if blocked else ("approved", True, D(5), ())
    )
    assert summary(result) == expected


def test_grace_when_score_recovers_then_remembered_clock_cleared(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, sell("0.5"), held(), state(grace={KEY: NOW - DAY}))
    assert summary(result) == ("approved", True, D(5), ())
    assert result.state.authority.grace == {}


def test_grace_when_clock_remembered_from_an_earlier_request_then_it_counts(
    default_policies: CompiledPolicySet,
) -> None:
    """First low score three days ago (denied, clock started); today the grace is over."""
    first = decide(default_policies, sell(), held(), now=NOW - 3 * DAY)
    assert summary(first) == ("denied", False, None, ("grace_period",))
    assert first.state.authority.grace == {KEY: NOW - 3 * DAY}
    early = decide(default_policies, sell(), held(), first.state, now=NOW - DAY)
    assert summary(early) == ("denied", False, None, ("grace_period",))
    later = decide(default_policies, sell(), held(), early.state)
    assert summary(later) == ("approved", True, D(5), ())


def test_grace_when_buying_with_a_low_score_then_not_blocked(
    default_policies: CompiledPolicySet,
) -> None:
    order = request("increase", target_size=15, current_score="0.1", score_below_since=NOW)
    assert summary(decide(default_policies, order, held())) == ("approved", True, D(15), ())


# -- holding period ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_for", "blocked"),
    [
        (timedelta(0), True),
        (DAY, True),
        (5 * DAY - SECOND, True),
        (5 * DAY, False),  # the 5-day minimum is reached
        (6 * DAY, False),
    ],
    ids=["0", "1d", "5d-1s", "5d", "6d"],
)
@pytest.mark.parametrize(
    ("action", "target", "size"),
    [("close", None, 0), ("decrease", 5, 5)],
    ids=["close", "decrease"],
)
def test_holding_when_snapshot_entry_is_young_then_sell_denied(
    default_policies: CompiledPolicySet,
    held_for: timedelta,
    blocked: bool,
    action: str,
    target: int | None,
    size: int,
) -> None:
    snap = held(entered_days_ago=held_for.total_seconds() / 86400)
    result = decide(default_policies, request(action, target_size=target), snap)
    expected = (
        ("denied", False, None, ("holding_period",)) if blocked else ("approved", True, D(size), ())
    )
    assert summary(result) == expected


def test_holding_when_request_entry_is_young_then_it_wins_over_the_snapshot(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(
        default_policies, request("close", entry_at=NOW - DAY), held(entered_days_ago=30)
    )
    assert summary(result) == ("denied", False, None, ("holding_period",))


def test_holding_when_request_entry_is_old_then_it_wins_over_the_snapshot(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(
        default_policies, request("close", entry_at=NOW - 6 * DAY), held(entered_days_ago=1)
    )
    assert summary(result) == APPROVED_CLOSE


@pytest.mark.parametrize("young_first", [True, False], ids=["young-first", "old-first"])
def test_holding_when_several_positions_then_earliest_entry_counts(
    default_policies: CompiledPolicySet, young_first: bool
) -> None:
    entries = [
        position(quantity=5, entered_at=NOW - DAY, strategy="young"),
        position(quantity=5, entered_at=NOW - 30 * DAY, strategy="old"),
    ]
    snap = snapshot(positions=entries if young_first else entries[::-1])
    assert summary(decide(default_policies, request("close"), snap)) == APPROVED_CLOSE


def test_holding_when_entry_unknown_then_not_applied(default_policies: CompiledPolicySet) -> None:
    result = decide(default_policies, request("close", current_size=10), snapshot())
    assert summary(result) == APPROVED_CLOSE


def test_holding_when_buying_more_of_a_young_position_then_approved(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, request("increase", target_size=15), held(entered_days_ago=1))
    assert summary(result) == ("approved", True, D(15), ())


# -- whipsaw protection -------------------------------------------------------------------


def reopen() -> Any:
    return request("open", target_size=10)


@pytest.mark.parametrize(
    ("trips", "blocked"), [(0, False), (1, False), (2, True), (3, True)], ids=["0", "1", "2", "3"]
)
def test_whipsaw_when_round_trips_in_window_reach_max_then_open_denied(
    default_policies: CompiledPolicySet, trips: int, blocked: bool
) -> None:
    memory = state(trades=round_trips(trips, last_close=NOW - DAY))
    result = decide(default_policies, reopen(), snapshot(), memory)
    expected = (
        ("denied", False, None, ("whipsaw_protection",))
        if blocked
        else ("approved", True, D(10), ())
    )
    assert summary(result) == expected


@pytest.mark.parametrize(
    ("oldest_open_age", "blocked"),
    [(7 * DAY - SECOND, True), (7 * DAY + SECOND, False), (30 * DAY, False)],
    ids=["inside", "just-outside", "long-ago"],
)
def test_whipsaw_when_a_round_trip_is_older_than_the_window_then_it_does_not_count(
    default_policies: CompiledPolicySet, oldest_open_age: timedelta, blocked: bool
) -> None:
    old_open = NOW - oldest_open_age
    trades = [
        ("open", old_open),
        ("close", NOW - 6 * DAY),
        *round_trips(1, last_close=NOW - DAY),
    ]
    result = decide(default_policies, reopen(), snapshot(), state(trades=trades))
    expected = (
        ("denied", False, None, ("whipsaw_protection",))
        if blocked
        else ("approved", True, D(10), ())
    )
    assert summary(result) == expected


@pytest.mark.parametrize(
    ("action", "target", "size"),
    [("increase", 15, 15), ("close", None, 0), ("decrease", 5, 5)],
    ids=["increase", "close", "decrease"],
)
def test_whipsaw_when_not_an_open_then_not_applied(
    default_policies: CompiledPolicySet, action: str, target: int | None, size: int
) -> None:
    memory = state(trades=round_trips(3, last_close=NOW - DAY))
    result = decide(default_policies, request(action, target_size=target), held(), memory)
    assert summary(result) == ("approved", True, D(size), ())


def test_whipsaw_when_trades_go_through_can_execute_then_third_open_denied(
    default_policies: CompiledPolicySet,
) -> None:
    """Approved opens and closes are recorded in the returned state and counted."""
    memory = state()
    steps = [("open", 10), ("close", None), ("open", 10), ("close", None)]
    for hour, (action, target) in enumerate(steps):
        order = request(action, target_size=target, current_size=0 if action == "open" else 10)
        result = decide(
            default_policies, order, snapshot(), memory, now=NOW - timedelta(hours=4 - hour)
        )
        assert result.approved, result.reasons
        memory = result.state
    assert [what for what, _ in memory.authority.trades[KEY]] == ["open", "close"] * 2
    third = decide(default_policies, reopen(), snapshot(), memory)
    assert summary(third) == ("denied", False, None, ("whipsaw_protection",))


# -- disabled protections ---------------------------------------------------------------


def _core() -> tuple[Any, Any, Any]:
    return request("close", "SPY"), held(symbol="SPY"), state()


def _grace() -> tuple[Any, Any, Any]:
    return sell(), held(), state()


def _holding() -> tuple[Any, Any, Any]:
    return request("close"), held(entered_days_ago=1), state()


def _whipsaw() -> tuple[Any, Any, Any]:
    return reopen(), snapshot(), state(trades=round_trips(2, last_close=NOW - DAY))


SCENARIOS = {
    "core_asset_immunity": _core,
    "grace_period": _grace,
    "holding_period": _holding,
    "whipsaw_protection": _whipsaw,
}


@pytest.mark.parametrize("protection", sorted(SCENARIOS))
@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
def test_protection_when_disabled_then_does_not_block(
    policies: PolicyFactory, protection: str, enabled: bool
) -> None:
    compiled = policies(protection={protection: {"enabled": enabled}})
    order, snap, memory = SCENARIOS[protection]()
    result = decide(compiled, order, snap, memory)
    assert result.approved is not enabled
    assert result.blocking == ((protection,) if enabled else ())


def test_no_protection_policy_when_every_protection_would_block_then_approved(
    policies: PolicyFactory,
) -> None:
    compiled = policies(protection=False)
    for order, snap, memory in (scenario() for scenario in SCENARIOS.values()):
        assert decide(compiled, order, snap, memory).blocking == ()
