"""Conflicting protections settled by the hierarchy, and when a regime override applies.

The shipped hierarchy: core_asset_immunity, regime_override, grace_period,
holding_period, whipsaw_protection. An override is available when the regime's
severity ≥ min_severity (high) and the cooldown (86 400 s) since the last override on
the account/symbol has passed; it bypasses only the protections in may_bypass and is
never used against core asset immunity.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State
from tests.authority.builders import (
    ACCOUNT,
    DAY,
    KEY,
    NOW,
    SYMBOL,
    D,
    account,
    canonical,
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

SEVERITIES = ("low", "medium", "high", "critical")
ALL_BYPASSABLE = ["grace_period", "holding_period", "whipsaw_protection"]
COOLDOWN_S = 86400


def crash(*, symbol: str = SYMBOL, entered: datetime = NOW - DAY, **changes: Any) -> Snapshot:
    """A critical "crash" regime; `symbol` held 10 units since `entered` (young: 1 day)."""
    markets = {SYMBOL: market(), symbol: market(), "ABC": market()}
    positions = [position(symbol, 10, entered_at=entered)]
    return snapshot(
        positions=positions, markets=markets, regime="crash", severity="critical", **changes
    )


def low_score_decrease(symbol: str = SYMBOL) -> Any:
    """Grace (score 0.1 first seen now) and — on a young position — holding both block."""
    return request("decrease", symbol, target_size=5, current_score="0.1")


# -- core immunity against an available override ---------------------------------------


@pytest.mark.parametrize(
    "order",
    [request("close", "SPY"), low_score_decrease("SPY")],
    ids=["close", "decrease-low-score"],
)
def test_core_vs_override_when_both_apply_then_core_wins_and_override_unused(
    default_policies: CompiledPolicySet, order: Any
) -> None:
    result = decide(default_policies, order, crash(symbol="SPY"))
    assert summary(result) == ("denied", False, None, ("core_asset_immunity",))
    assert result.override_applied is False
    assert result.override_reason is None
    assert result.state.authority.overrides == {}
    passed = {check.name: check.passed for check in result.checks}
    assert passed["regime_override"] is True  # it was available ...
    assert passed["holding_period"] is True  # ... but nothing below core was even reached


def test_core_when_young_position_and_no_override_then_core_alone_blocks(
    default_policies: CompiledPolicySet,
) -> None:
    """Core immunity is final: the holding period below it is not even reached."""
    snap = snapshot(
        positions=[position("SPY", 10, entered_at=NOW - DAY)], markets={"SPY": market()}
    )
    result = decide(default_policies, request("close", "SPY", current_score="0.1"), snap)
    assert summary(result) == ("denied", False, None, ("core_asset_immunity",))
    assert len(result.reasons) == 1


# -- which protections an override may bypass -------------------------------------------


@pytest.mark.parametrize(
    ("may_bypass", "blocking"),
    [
        (["grace_period"], ("holding_period",)),
        (["holding_period"], ("grace_period",)),
        (["whipsaw_protection"], ("grace_period", "holding_period")),
        ([], ("grace_period", "holding_period")),
    ],
    ids=["grace-only", "holding-only", "whipsaw-only", "none"],
)
def test_override_when_a_blocking_protection_is_not_bypassable_then_denied_by_it_alone(
    policies: PolicyFactory, may_bypass: list[str], blocking: tuple[str, ...]
) -> None:
    compiled = policies(protection={"regime_override": {"may_bypass": may_bypass}})
    result = decide(compiled, low_score_decrease(), crash())
    assert summary(result) == ("denied", False, None, blocking)
    assert result.override_applied is False
    assert result.override_reason is None
    assert result.state.authority.overrides == {}


def test_override_when_hierarchy_reordered_then_blocking_follows_the_hierarchy(
    policies: PolicyFactory,
) -> None:
    hierarchy = [
        "core_asset_immunity",
        "regime_override",
        "holding_period",
        "grace_period",
        "whipsaw_protection",
    ]
    compiled = policies(protection={"hierarchy": hierarchy, "regime_override": {"may_bypass": []}})
    result = decide(compiled, low_score_decrease(), crash())
    assert result.blocking == ("holding_period", "grace_period")
    assert [c.name for c in result.checks if c.name in hierarchy] == hierarchy


def test_override_when_two_protections_block_and_both_bypassable_then_both_bypassed(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, low_score_decrease(), crash())
    assert summary(result) == ("approved", True, D(5), ())
    assert result.override_applied is True
    reason = result.override_reason or ""
    assert "grace_period" in reason
    assert "holding_period" in reason
    assert "crash" in reason
    assert "critical" in reason
    assert result.state.authority.overrides == {KEY: NOW}


def test_override_when_whipsaw_blocks_an_open_then_bypassed(
    default_policies: CompiledPolicySet,
) -> None:
    memory = state(trades=round_trips(2, last_close=NOW - DAY))
    result = decide(default_policies, request("open", target_size=10), crash(symbol="ABC"), memory)
    assert summary(result) == ("approved", True, D(10), ())
    assert result.override_applied is True
    assert "whipsaw_protection" in (result.override_reason or "")


def test_override_when_nothing_blocks_then_not_used(default_policies: CompiledPolicySet) -> None:
    result = decide(default_policies, request("close"), crash(entered=NOW - 30 * DAY))
    assert summary(result) == ("approved", True, D(0), ())
    assert result.override_applied is False
    assert result.override_reason is None
    assert result.state.authority.overrides == {}


def test_override_when_override_disabled_then_protections_block(policies: PolicyFactory) -> None:
    compiled = policies(protection={"regime_override": {"enabled": False}})
    result = decide(compiled, low_score_decrease(), crash())
    assert summary(result) == ("denied", False, None, ("grace_period", "holding_period"))
    assert result.override_applied is False


# -- the eligibility matrix --------------------------------------------------------------

COOLDOWNS = {
    "never": None,
    "inside": timedelta(seconds=COOLDOWN_S - 1),
    "exactly": timedelta(seconds=COOLDOWN_S),
    "beyond": timedelta(seconds=COOLDOWN_S + 1),
}


@pytest.mark.parametrize("listed", [True, False], ids=["bypassable", "not-bypassable"])
@pytest.mark.parametrize("cooldown", list(COOLDOWNS))
@pytest.mark.parametrize("min_severity", SEVERITIES, ids=lambda s: f"min-{s}")
@pytest.mark.parametrize("severity", SEVERITIES, ids=lambda s: f"regime-{s}")
def test_override_matrix_when_holding_period_blocks_a_close(
    policies: PolicyFactory, severity: str, min_severity: str, cooldown: str, listed: bool
) -> None:
    may_bypass = ALL_BYPASSABLE if listed else ["grace_period", "whipsaw_protection"]
    compiled = policies(
        protection={
            "regime_override": {
                "min_severity": min_severity,
                "may_bypass": may_bypass,
                "cooldown_s": COOLDOWN_S,
            }
        }
    )
    ago = COOLDOWNS[cooldown]
    previous = {} if ago is None else {KEY: NOW - ago}
    snap = snapshot(
        positions=[position(quantity=10, entered_at=NOW - DAY)], regime="storm", severity=severity
    )
    result = decide(compiled, request("close"), snap, state(overrides=previous))

    eligible = (
        SEVERITIES.index(severity) >= SEVERITIES.index(min_severity)
        and cooldown != "inside"
        and listed
    )
    if eligible:
        assert summary(result) == ("approved", True, D(0), ())
        assert result.override_applied is True
        assert result.state.authority.overrides == {KEY: NOW}
        reason = result.override_reason or ""
        assert "holding_period" in reason
        assert "storm" in reason
        assert severity in reason
    else:
        assert summary(result) == ("denied", False, None, ("holding_period",))
        assert result.override_applied is False
        assert result.override_reason is None
        assert result.state.authority.overrides == previous


# -- the cooldown --------------------------------------------------------------------------


def test_override_when_used_then_cooldown_runs_per_account_symbol(
    default_policies: CompiledPolicySet,
) -> None:
    snap = snapshot(
        positions=[
            position(SYMBOL, 10, entered_at=NOW - DAY),
            position("ABC", 10, entered_at=NOW - DAY),
        ],
        markets={SYMBOL: market(), "ABC": market()},
        regime="crash",
        severity="critical",
    )
    first = decide(default_policies, request("close"), snap)
    assert first.override_applied is True
    again = decide(default_policies, request("close"), snap, first.state, now=NOW + DAY / 2)
    assert summary(again) == ("denied", False, None, ("holding_period",))
    other = decide(default_policies, request("close", "ABC"), snap, first.state, now=NOW + DAY / 2)
    assert other.override_applied is True
    assert other.state.authority.overrides == {KEY: NOW, f"{ACCOUNT}/ABC": NOW + DAY / 2}
    later = decide(default_policies, request("close"), snap, first.state, now=NOW + DAY)
    assert later.override_applied is True
    assert later.state.authority.overrides == {KEY: NOW + DAY}


def _low_liquidity() -> tuple[dict[str, Any], State]:
    return {"markets": {SYMBOL: market(liquidity=50_000)}}, State()


def _drift() -> tuple[dict[str, Any], State]:
    return {"markets": {SYMBOL: market()}, "drift": True}, State()


def _halted() -> tuple[dict[str, Any], State]:
    return {"markets": {SYMBOL: market()}}, State(trading_states={ACCOUNT: "HALTED"})


@pytest.mark.parametrize(
    ("setup", "limit"),
    [
        (_low_liquidity, "limit.liquidity"),
        (_drift, "limit.kill_switch.drift"),
        (_halted, "limit.trading_state"),
    ],
    ids=["liquidity", "drift", "halted"],
)
def test_override_when_order_denied_by_a_limit_then_cooldown_not_consumed(
    default_policies: CompiledPolicySet, setup: Any, limit: str
) -> None:
    changes, halted = setup()
    snap = snapshot(regime="crash", severity="critical", **changes)
    trades = round_trips(2, last_close=NOW - DAY)
    memory = State(trading_states=halted.trading_states, authority=state(trades=trades).authority)
    result = decide(default_policies, request("open", target_size=10), snap, memory)
    assert summary(result) == ("denied", False, None, (limit,))
    assert result.override_applied is False
    assert result.override_reason is None
    assert result.state.authority.overrides == {}
    # the override is still there for the next order on the symbol, once the limit clears
    fine = snapshot(regime="crash", severity="critical")
    cleared = State(authority=result.state.authority)
    retry = decide(
        default_policies, request("open", target_size=10), fine, cleared, now=NOW + DAY / 24
    )
    assert retry.override_applied is True


# -- determinism -------------------------------------------------------------------------


def _others() -> list[tuple[Any, Snapshot, State]]:
    """Unrelated requests, some touching the same account/symbol, other accounts, types."""
    extra = [account("acct-2", type="rev"), account("acct-3", type="com")]
    snap = crash(extra_accounts=extra, entered=NOW - 30 * DAY)
    return [
        (request("open", "ABC", target_size=3), snap, State()),
        (request("close", "SPY", account_id=ACCOUNT), crash(symbol="SPY"), State()),
        (request("open", "ABC", target_size=5, account_id="acct-2"), snap, State()),
        (request("increase", target_size=20, account_id=ACCOUNT), snap, State()),
        (
            request("open", "ABC", account_id="acct-3", strategy_id="mean_reversion_v1"),
            snap,
            State(),
        ),
        (request("cancel"), snap, State(trading_states={ACCOUNT: "HALTED"})),
    ]


def _conflict(compiled: CompiledPolicySet) -> str:
    """Grace and holding both block; may_bypass lists only grace: denied by holding."""
    return canonical(decide(compiled, low_score_decrease(), crash()))


def test_conflict_when_checked_repeatedly_and_after_other_requests_then_same_bytes(
    policies: PolicyFactory,
) -> None:
    change = {"regime_override": {"may_bypass": ["grace_period"]}}
    compiled = policies(protection=change)
    first = _conflict(compiled)
    assert '"blocking": ["holding_period"]' in first
    assert all(_conflict(compiled) == first for _ in range(5))
    for order in (_others(), list(reversed(_others()))):
        for other, snap, memory in order:
            decide(compiled, other, snap, memory)
        assert _conflict(compiled) == first
    fresh = policies(protection=change, fresh=True)
    for other, snap, memory in reversed(_others()):
        decide(fresh, other, snap, memory)
    assert _conflict(fresh) == first


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_conflict_when_other_requests_in_any_order_then_same_bytes(
    policies: PolicyFactory, order: tuple[int, ...]
) -> None:
    compiled = policies(protection={"regime_override": {"may_bypass": ["grace_period"]}})
    others = _others()[:3]
    for index in order:
        other, snap, memory = others[index]
        decide(compiled, other, snap, memory)
    result = decide(compiled, low_score_decrease(), crash())
    assert summary(result) == ("denied", False, None, ("holding_period",))
    assert canonical(result) == _conflict(compiled)


def test_conflict_when_record_read_after_other_requests_then_same_bytes(
    policies: PolicyFactory,
) -> None:
    """The audit record may be built when first read: later requests do not change it."""
    compiled = policies(protection={"regime_override": {"may_bypass": ["grace_period"]}})
    early = decide(compiled, low_score_decrease(), crash())
    for other, snap, memory in _others():
        decide(compiled, other, snap, memory)
    assert canonical(early) == _conflict(compiled)
