"""Locks: scopes, expiry, no re-lock from the same trades, release, the governing policy,
the state file (round trip; old files without locks), and the reload guard."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.engine.authority.history.evolve import evolve_locks, lock_end
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.authority.history.release import LockNotFound, release_lock
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.guard import removed_protection
from bastion.engine.policy.kinds.history import build_entry
from bastion.engine.state import State
from tests.authority.builders import account
from tests.protections.conftest import (
    ACCOUNT,
    GAIN_9,
    LOSS_10,
    NOW,
    PolicyFactory,
    cycle,
    entry,
    lock_key,
    locked,
    minutes_ago,
    snapshot,
    trade,
    write_policies,
)

COOLDOWN = entry("cooldown", lookback_min=60, lock_min=60)


@pytest.mark.parametrize(
    ("scope", "where"),
    [
        ("symbol", "symbol=XRP"),
        ("side", "side=short"),
        ("strategy", "strategy=momo"),
        ("account", "account"),
    ],
)
def test_evolve_when_scope_given_then_lock_keyed_by_it(
    policies: PolicyFactory, scope: str, where: str
) -> None:
    """One exit locks the scope it falls in: its symbol, its side, its strategy or the
    whole account; the lock covers orders in that scope only."""
    compiled = policies(entry("cooldown", lookback_min=60, lock_min=60, scope=scope))
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10, side="short", strategy="momo")])
    assert locked(locks) == {lock_key("cooldown", where)}
    lock = locks[lock_key("cooldown", where)]
    assert lock.covers(ACCOUNT, "XRP", "short", "momo")
    other = {"symbol": ("ETH", "short", "momo"), "side": ("XRP", "long", "momo")}
    other |= {"strategy": ("XRP", "short", "trend"), "account": ("ETH", "long", "")}
    assert lock.covers(ACCOUNT, *other[scope]) == (scope == "account")
    assert not lock.covers("acct-2", "XRP", "short", "momo")


def test_evolve_when_strategy_unknown_then_locks_the_unnamed_strategy(
    policies: PolicyFactory,
) -> None:
    """A trade without strategy_id counts toward strategy "": orders without one."""
    compiled = policies(entry("cooldown", lookback_min=60, lock_min=60, scope="strategy"))
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10, strategy=None)])
    (lock,) = locks.values()
    assert lock.key == "" and lock.covers(ACCOUNT, "ETH", "long", "")
    assert 'strategy "" of account acct-1' in lock.describe()


def test_evolve_when_lock_over_then_dropped(policies: PolicyFactory) -> None:
    """A lock blocks until `until` (exclusive) and is gone from the state after it."""
    compiled = policies(COOLDOWN)
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10)])
    until = locks[lock_key("cooldown", "symbol=XRP")].until
    assert locked(locks, until - timedelta(microseconds=1))
    assert not locked(locks, until)
    assert cycle(compiled, [], now=until, locks=locks) == ({}, ())


def test_evolve_when_newer_trade_then_lock_extended(policies: PolicyFactory) -> None:
    """The same trades never lock twice; a newer exit replaces the lock with a later end."""
    compiled = policies(COOLDOWN)
    first, made = cycle(compiled, [trade("XRP", 10, LOSS_10)])
    again, none = cycle(compiled, [trade("XRP", 10, LOSS_10)], locks=first)
    assert again == first and none == ()
    later = NOW + timedelta(minutes=5)
    trades = [trade("XRP", 15, LOSS_10, now=later), trade("XRP", 1, GAIN_9, now=later)]
    extended, decisions = cycle(compiled, trades, now=later, locks=first)
    key = lock_key("cooldown", "symbol=XRP")
    assert extended[key].until == later - timedelta(minutes=1) + timedelta(minutes=60)
    assert extended[key].created_at == later and len(decisions) == len(made) == 1


def test_release_when_active_then_stops_blocking_and_same_trades_do_not_relock(
    policies: PolicyFactory,
) -> None:
    """An officer's release ends the block at once and is kept (who, why) until the lock's
    end: the next cycle does not make it again from the same trades; a new exit does."""
    compiled = policies(COOLDOWN)
    key = lock_key("cooldown", "symbol=XRP")
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10)])
    released, lock = release_lock(locks, key, "alice", "reviewed", NOW)
    assert lock.released_by == "alice" and not lock.active(NOW) and locked(released) == set()
    kept, decisions = cycle(compiled, [trade("XRP", 10, LOSS_10)], locks=released)
    assert locked(kept) == set() and decisions == () and kept[key].released_at == NOW
    trades = [trade("XRP", 10, LOSS_10), trade("XRP", 2, LOSS_10)]
    assert locked(cycle(compiled, trades, locks=released)[0]) == {key}


def test_release_when_no_such_active_lock_then_refused_listing_the_active(
    policies: PolicyFactory,
) -> None:
    """A release of a lock that is not active (unknown, over, released) is refused."""
    compiled = policies(COOLDOWN)
    key = lock_key("cooldown", "symbol=XRP")
    locks, _ = cycle(compiled, [trade("XRP", 10, LOSS_10)])
    with pytest.raises(LockNotFound, match="active locks: default-protection/cooldown"):
        release_lock(locks, "nope", "alice", "why", NOW)
    released, _ = release_lock(locks, key, "alice", "why", NOW)
    with pytest.raises(LockNotFound, match="active locks: none"):
        release_lock(released, key, "bob", "again", NOW)


def test_evolve_when_trade_of_account_governed_by_other_policy_then_not_counted(
    tmp_path: Path,
) -> None:
    """Trades count for the ProtectionPolicy that governs an order for them (account
    type, symbol, strategy): a com account's exits do not lock under a gen-only policy."""
    folder = write_policies(tmp_path, [COOLDOWN], {})
    document = (folder / "protection.yaml").read_text()
    (folder / "protection.yaml").write_text(
        document.replace(
            "kind: ProtectionPolicy\n", "kind: ProtectionPolicy\nscope:\n  account_types: [gen]\n"
        )
    )
    compiled = compile_policy_set(load_policy_set([folder]))
    try:
        accounts = [account(ACCOUNT), account("com-1", type="com")]
        trades = [trade("XRP", 10, LOSS_10, account_id="com-1")]
        locks, _ = evolve_locks(compiled, snapshot(trades, accounts=accounts), {}, NOW)
        assert locks == {}
        trades.append(trade("NEO", 5, LOSS_10))
        locks, _ = evolve_locks(compiled, snapshot(trades, accounts=accounts), {}, NOW)
        assert locked(locks) == {lock_key("cooldown", "symbol=NEO")}
    finally:
        compiled.close()


def test_evolve_when_trade_closed_after_now_then_ignored(policies: PolicyFactory) -> None:
    """The window is (now - lookback, now]: a replay at an earlier `now` ignores later exits."""
    compiled = policies(COOLDOWN)
    earlier = NOW - timedelta(minutes=30)
    locks, _ = evolve_locks(compiled, snapshot([trade("XRP", 10, LOSS_10)]), {}, earlier)
    assert locks == {}


def test_lock_end_when_unlock_at_and_exit_seconds_then_next_whole_minute_match() -> None:
    """unlock_at is a whole minute: an exit at 05:00:30 unlocks at 05:00 the next day
    (freqtrade keeps the exit's seconds and ends that lock at once)."""
    spec = build_entry(entry("cooldown", lookback_s=86400, unlock_at="05:00"))
    at = NOW.replace(hour=5, minute=0, second=30)
    assert lock_end(spec, at) == NOW.replace(hour=5, minute=0, second=0) + timedelta(days=1)
    both = build_entry(entry("cooldown", lookback_s=86400, unlock_at="05:00", lock_s=60))
    assert lock_end(both, at) == lock_end(spec, at)  # both (lint BST408): the later end


def test_evaluate_when_lock_made_then_decision_and_state_round_trip(
    policies: PolicyFactory,
) -> None:
    """evaluate() keeps the locks in the state with a `protection` decision for each new
    one; State.to_dict / from_dict round-trips them exactly; a state written before locks
    existed (no "locks" key) still loads, with none."""
    compiled = policies(COOLDOWN)
    decisions, state = evaluate(compiled, snapshot([trade("XRP", 10, LOSS_10)]), State(), NOW)
    (decision,) = [d for d in decisions if d.kind == "protection"]
    assert decision.outcome == "locked" and decision.rule == "cooldown"
    assert "trades XRP-long-10" in decision.reasons[0]
    key = lock_key("cooldown", "symbol=XRP")
    assert set(state.locks) == {key}
    text = json.dumps(state.to_dict())
    assert State.from_dict(json.loads(text)).locks == state.locks
    released, _ = release_lock(state.locks, key, "alice", "reviewed", NOW)
    again = State.from_dict(json.loads(json.dumps(State(locks=released).to_dict())))
    assert again.locks == released
    old = State().to_dict()
    assert "locks" not in old and State.from_dict(old).locks == {}
    with_authority = state.with_authority(state.authority)
    assert with_authority.locks == state.locks


def test_lock_when_read_from_malformed_file_then_value_error() -> None:
    """A lock with an unknown scope or a time without a timezone is refused."""
    lock = HistoryLock(
        "p", "c", "cooldown", ACCOUNT, "symbol", "XRP", "", NOW, "r", ("t",), minutes_ago(1)
    )
    data = lock.to_dict()
    assert HistoryLock.from_dict(data) == lock
    with pytest.raises(ValueError, match="scope"):
        HistoryLock.from_dict({**data, "scope": "planet"})
    with pytest.raises(ValueError, match="timezone"):
        HistoryLock.from_dict({**data, "until": "2026-11-20T15:30:00"})


def test_guard_when_history_entry_removed_then_removal_to_accept(tmp_path: Path) -> None:
    """Removing (or disabling) a history protection is a loss of protection that a reload
    refuses until an officer accepts `...:history/<id>`."""
    before = load_policy_set([write_policies(tmp_path / "a", [COOLDOWN])])
    after = load_policy_set([write_policies(tmp_path / "b", [])])
    keys = [removal.key for removal in removed_protection(before, after)]
    assert keys == ["ProtectionPolicy/default-protection:history/cooldown"]
