"""The gate: can_execute denies an open or increase that a history lock covers, naming
the protection, the trades and when the lock ends; everything else passes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bastion.engine.authority import can_execute
from bastion.engine.authority.history.release import release_lock
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State
from tests.authority.builders import request
from tests.protections.conftest import (
    ACCOUNT,
    LOSS_10,
    NOW,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    snapshot,
    trade,
)

GUARD = entry("stoploss_guard", lookback_min=60, lock_min=30, max_stop_losses=2, scope="account")
STOPS = [trade("XRP", 20, LOSS_10, id="T-1"), trade("ETH", 10, LOSS_10, id="T-2")]


def _state(compiled: CompiledPolicySet, trades: list[dict[str, object]] = STOPS) -> State:
    return State(locks=cycle(compiled, trades)[0])


def _open(symbol: str = "XYZ", **fields: object) -> object:
    return request("open", symbol, account_id=ACCOUNT, target_size=10, **fields)


def _check(
    compiled: CompiledPolicySet, state: State, order: object, market: Snapshot | None = None
):  # type: ignore[no-untyped-def]
    return can_execute(compiled, order, market or snapshot(STOPS), state, NOW)  # type: ignore[arg-type]


def test_can_execute_when_account_locked_then_open_denied_naming_protection_trades_and_end(
    policies: PolicyFactory,
) -> None:
    """An open in a locked account is denied; the reason names the protection, the
    trades that fired it and the lock's end (10 min ago + 30 min)."""
    compiled = policies(GUARD)
    result = _check(compiled, _state(compiled), _open())
    assert result.outcome == "denied"
    assert result.blocking == ("history.stoploss-guard",)
    (reason,) = [r for r in result.reasons if "stoploss-guard" in r]
    until = (NOW + timedelta(minutes=20)).isoformat()
    assert "T-1, T-2" in reason and until in reason and "1200 s from now" in reason


def test_can_execute_when_locked_then_close_and_decrease_still_pass(
    policies: PolicyFactory,
) -> None:
    """A lock stops new risk only: a close and a decrease of a held position pass it."""
    compiled = policies(GUARD)
    state = _state(compiled)
    close = request("close", "XYZ", account_id=ACCOUNT, current_size=10)
    assert "history.stoploss-guard" not in _check(compiled, state, close).blocking
    increase = request("increase", "XYZ", account_id=ACCOUNT, current_size=10, target_size=20)
    assert _check(compiled, state, increase).blocking == ("history.stoploss-guard",)


def test_can_execute_when_lock_over_or_released_then_approved(policies: PolicyFactory) -> None:
    """At the lock's end it no longer blocks (even before a cycle drops it); nor once an
    officer released it."""
    compiled = policies(GUARD)
    state = _state(compiled)
    until = state.locks[lock_key("stoploss-guard", "account")].until
    later = can_execute(compiled, _open(), snapshot(STOPS), state, until)
    assert later.outcome == "approved"
    released, _ = release_lock(state.locks, lock_key("stoploss-guard", "account"), "a", "b", NOW)
    assert _check(compiled, replace(state, locks=released), _open()).outcome == "approved"


def test_can_execute_when_symbol_or_side_locked_then_only_that_scope_denied(
    policies: PolicyFactory,
) -> None:
    """A symbol lock denies that symbol only; an only_per_side lock the side that fired."""
    compiled = policies(
        entry("cooldown", lookback_min=60, lock_min=60),
        entry(
            "stoploss_guard",
            lookback_min=60,
            lock_min=60,
            max_stop_losses=1,
            scope="symbol",
            only_per_side=True,
        ),
    )
    state = _state(compiled, [trade("XRP", 10, LOSS_10, side="short", id="T-9")])
    market = snapshot([trade("XRP", 10, LOSS_10, side="short", id="T-9")])
    denied = _check(compiled, state, _open("XRP", side="long"), market)
    assert denied.blocking == ("history.cooldown",)
    short = _check(compiled, state, _open("XRP", side="short"), market)
    assert short.blocking == ("history.cooldown", "history.stoploss-guard")
    assert _check(compiled, state, _open("ETH"), market).outcome == "approved"


def test_can_execute_when_override_may_bypass_lists_id_then_bypassed_else_denied(
    policies: PolicyFactory,
) -> None:
    """A high-severity regime override lifts a lock only when may_bypass lists its id."""
    listed = policies(
        GUARD, protection={"regime_override": {"may_bypass": ["grace_period", "stoploss-guard"]}}
    )
    severe = snapshot(STOPS, severity="critical")
    bypassed = _check(listed, _state(listed), _open(), severe)
    assert bypassed.outcome == "approved" and bypassed.override_applied
    assert "history.stoploss-guard" in (bypassed.override_reason or "")
    unlisted = policies(GUARD)
    denied = _check(unlisted, _state(unlisted), _open(), severe)
    assert denied.blocking == ("history.stoploss-guard",)
    assert any("may not bypass" in r for r in denied.reasons)


def test_can_execute_when_policy_in_shadow_then_recorded_not_enforced(
    policies: PolicyFactory,
) -> None:
    """A lock of a shadow-mode ProtectionPolicy is recorded in the trace, never blocks."""
    compiled = policies(GUARD, protection={"mode": "shadow"})
    result = _check(compiled, _state(compiled), _open())
    assert result.outcome == "approved"
    assert any("shadow mode" in check.detail for check in result.checks)


def test_can_execute_when_lock_of_another_policy_then_not_applied(
    policies: PolicyFactory,
) -> None:
    """Only the locks of the ProtectionPolicy that governs the order apply."""
    compiled = policies(GUARD)
    state = _state(compiled)
    renamed = {
        key.replace("default-protection", "other"): replace(lock, policy="other")
        for key, lock in state.locks.items()
    }
    assert _check(compiled, State(locks=renamed), _open()).outcome == "approved"
