"""The locks after one evaluation cycle: expire, then fire the history protections.

`evolve_locks(policies, snapshot, locks, now)` is pure and deterministic:

1. locks whose `until` has passed are dropped (released ones too);
2. the snapshot's closed trades in (now - longest lookback, now] are found by bisection
   (`Snapshot.trades` is sorted by `closed_at`) and each goes to the ProtectionPolicy
   that governs an order for it (account type, symbol, strategy: the policy that would
   judge the order is the one whose history counts it);
3. for each enabled `history:` entry, its lookback's trades are grouped by lock scope
   (and side, with `only_per_side`); a group with at least `trade_limit` trades is
   given to the method (`METHODS`); when it fires, the lock ends `lock_s` after the
   last triggering trade, or at the next `unlock_at` clock time after it;
4. a lock is made only when it ends after `now` and after the lock already held for
   the same id (active or released): the same trades never lock twice — a lock an
   operator released stays released — while a newer triggering trade locks again
   (freqtrade re-locks only to a later end, too).

Each new lock is a `protection` decision (outcome `locked`), audited like every
decision. Cost: O(log n) to find the window, then O(trades in the window) per entry.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bastion.engine.authority.history import cooldown, low_profit, max_drawdown, stoploss_guard
from bastion.engine.authority.history.base import Fired, Method
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.decision import Check, Decision, Subject, values_of
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.policy.kinds.history import HistoryProtection
from bastion.engine.policy.model import Policy
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.model import ClosedTrade

# method name -> its module's `fire`. Explicit: adding a method is one module and a line.
METHODS: dict[str, Method] = {
    "stoploss_guard": stoploss_guard.fire,
    "cooldown": cooldown.fire,
    "low_profit": low_profit.fire,
    "max_drawdown": max_drawdown.fire,
}
DECISION_KIND = "protection"
_MICROSECONDS = Decimal(1_000_000)


def _closed_at(trade: ClosedTrade) -> datetime:
    return trade.closed_at


def lock_end(entry: HistoryProtection, last_close: datetime) -> datetime:
    """`lock_s` after the last triggering close, or the next `unlock_at` (UTC) after
    it (freqtrade's calculate_lock_end; seconds are not carried over: "05:00" is
    05:00:00). Both given (lint BST408 refuses it): the later end, failing closed."""
    ends = []
    if entry.lock_s is not None:
        ends.append(last_close + timedelta(microseconds=int(entry.lock_s * _MICROSECONDS)))
    if entry.unlock_at is not None:
        hour, minute = (int(part) for part in entry.unlock_at.split(":"))
        close = last_close.astimezone(UTC)
        at = close.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at < close:
            at += timedelta(days=1)
        ends.append(at)
    return max(ends, default=last_close)  # neither (lint BST409): no lock


def window(trades: Sequence[ClosedTrade], lookback_s: Decimal, now: datetime) -> slice:
    """The trades closed in (now - lookback_s, now], as a slice of the sorted trades."""
    since = now - timedelta(microseconds=int(lookback_s * _MICROSECONDS))
    return slice(
        bisect_right(trades, since, key=_closed_at), bisect_right(trades, now, key=_closed_at)
    )


def _scope_key(entry: HistoryProtection, trade: ClosedTrade) -> tuple[str, str]:
    """(account, key) of the lock a trade counts toward."""
    key = {"symbol": trade.symbol, "side": trade.side, "strategy": trade.strategy_id}.get(
        entry.scope, ""
    )
    return trade.account_id, key


def _sides(
    entry: HistoryProtection, trades: list[ClosedTrade]
) -> list[tuple[str, list[ClosedTrade]]]:
    """The trades a method reads, by the side a lock covers ("" both). With
    only_per_side each side apart (freqtrade: the trade limit counts the scope's trades
    of both sides, the method reads one side's)."""
    if not entry.only_per_side or entry.scope == "side":
        return [("", trades)]
    return [
        (side, chosen)
        for side in ("long", "short")
        if (chosen := [trade for trade in trades if trade.side == side])
    ]


def _by_policy(
    policies: CompiledPolicySet, snapshot: Snapshot, trades: Sequence[ClosedTrade]
) -> dict[str, tuple[Policy, list[ClosedTrade]]]:
    types = {account.id: account.type for account in snapshot.accounts}
    found: dict[str, tuple[Policy, list[ClosedTrade]]] = {}
    for trade in trades:
        account_type = types.get(trade.account_id)
        if account_type is None:  # an account the snapshot does not hold: no order for it
            continue
        governing = policies.governing_order_rules(
            account_type, trade.symbol, trade.strategy_id or None
        ).protection
        if governing is None or not governing.spec.history:
            continue
        found.setdefault(governing.name, (governing, []))[1].append(trade)
    return found


def evolve_locks(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    locks: Mapping[str, HistoryLock],
    now: datetime,
) -> tuple[dict[str, HistoryLock], tuple[Decision, ...]]:
    """The locks to keep and make at `now`, and a decision for each new one."""
    kept = {key: lock for key, lock in locks.items() if now < lock.until}
    entries = [
        entry
        for policy in policies.policy_set.of_kind("ProtectionPolicy")
        for entry in policy.spec.history
        if entry.enabled
    ]
    if not entries or not snapshot.trades:
        return kept, ()
    longest = max(entry.lookback_s for entry in entries)
    trades = snapshot.trades
    decisions: list[Decision] = []
    in_window = trades[window(trades, longest, now)]
    for _, (policy, counted) in sorted(_by_policy(policies, snapshot, in_window).items()):
        for entry in policy.spec.history:
            if not entry.enabled:
                continue
            groups: dict[tuple[str, str], list[ClosedTrade]] = {}
            for trade in counted[window(counted, entry.lookback_s, now)]:
                groups.setdefault(_scope_key(entry, trade), []).append(trade)
            for (account_id, key), group in sorted(groups.items()):
                if len(group) < entry.trade_limit:
                    continue
                for side, trades_of_side in _sides(entry, group):
                    fired = METHODS[entry.method](entry, trades_of_side)
                    if fired is None:
                        continue
                    last = group[-1].closed_at if fired.from_last_exit else None
                    lock = _lock(policy, entry, (account_id, key, side), fired, now, last)
                    held = kept.get(lock.id)
                    if lock.until <= now or (held is not None and held.until >= lock.until):
                        continue
                    kept[lock.id] = lock
                    decisions.append(_decision(policies.version, policy, entry, lock, fired))
    return kept, tuple(decisions)


def _lock(
    policy: Policy,
    entry: HistoryProtection,
    where: tuple[str, str, str],
    fired: Fired,
    now: datetime,
    last_exit: datetime | None,
) -> HistoryLock:
    account_id, key, side = where
    anchor = last_exit or max(trade.closed_at for trade in fired.trades)
    until = lock_end(entry, anchor)
    return HistoryLock(
        policy=policy.name,
        protection=entry.id,
        method=entry.method,
        account_id=account_id,
        scope=entry.scope,
        key=key,
        side=side,
        until=until,
        reason=f"{fired.why}; locked {entry.lock_end}",
        trade_ids=tuple(trade.id for trade in fired.trades),
        created_at=now,
    )


def _subject(lock: HistoryLock) -> Subject:
    account = lock.account_id
    if lock.scope == "symbol":
        return Subject("symbol", lock.key, account_id=account, symbol=lock.key)
    if lock.scope == "strategy":
        return Subject("strategy", lock.key, account_id=account, strategy_id=lock.key)
    return Subject("account", account, account_id=account)


def _decision(
    version: str, policy: Policy, entry: HistoryProtection, lock: HistoryLock, fired: Fired
) -> Decision:
    trades = ", ".join(lock.trade_ids)
    return Decision(
        time=lock.created_at,
        kind=DECISION_KIND,
        policy=policy.name,
        policy_version=version,
        rule=entry.id,
        subject=_subject(lock),
        outcome="locked",
        actions=("lock_new_risk",),
        reasons=(
            f"{entry.id} ({entry.method}) locks opens and increases on {lock.describe()} "
            f"until {lock.until.isoformat()}: {lock.reason}; trades {trades}",
        ),
        inputs=values_of(fired.values),
        trace=(Check(entry.method, False, fired.why),),
        mode=policy.mode,
        details=(("lock_id", lock.id), ("until", lock.until), ("trade_ids", list(lock.trade_ids))),
    )


def longest_lookback_s(policies: CompiledPolicySet) -> Decimal | None:
    """The longest lookback of the set's enabled history protections (None: none): how
    far back the snapshot's trades must reach (`BuilderConfig.trade_lookback_s`)."""
    lookbacks = [
        entry.lookback_s
        for policy in policies.policy_set.of_kind("ProtectionPolicy")
        for entry in policy.spec.history
        if entry.enabled
    ]
    return max(lookbacks, default=None)
