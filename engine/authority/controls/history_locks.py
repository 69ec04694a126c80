"""History-protection locks as an order control (ProtectionPolicy `history:`).

Unlike the hierarchy's protections this control is not a rule of the rules engine: a
lock is state the evaluation cycle made (`authority.history.evolve`), so what it reads
is the state's locks, looked up once per order that adds exposure (O(locks held); none
when no lock is held). It blocks an open or increase covered by an active lock of the
ProtectionPolicy that governs the order, naming the protection, the trades that fired
it and when it ends (`authority.history.gate`). A regime override bypasses a lock only
when `regime_override.may_bypass` lists the entry's id; a shadow-mode policy records it
and does not block. Checked after the hierarchy's protections, before the limits.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.engine.authority.controls.base import Context
from bastion.engine.authority.history.gate import blocking_locks, denial
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.model import Policy

ID_PREFIX = "history."  # a lock's check and blocking name: "history.stoploss-guard"


def held(
    locks: Mapping[str, HistoryLock], protection: Policy | None, ctx: Context
) -> tuple[HistoryLock, ...]:
    """The active locks that cover this order: none for an order that adds no exposure,
    or without a governing ProtectionPolicy."""
    request = ctx.request
    if not locks or protection is None or not request.increasing:
        return ()
    return blocking_locks(
        locks,
        protection.name,
        ctx.account_id,
        request.symbol,
        request.side,
        request.strategy_id or "",
        ctx.now,
    )


def name(lock: HistoryLock) -> str:
    return ID_PREFIX + lock.protection


def bypassable(lock: HistoryLock, spec: ProtectionSpec) -> bool:
    """Whether an available regime override may lift it: only when listed by id."""
    return lock.protection in spec.override_may_bypass


def detail(lock: HistoryLock, ctx: Context) -> str:
    return denial(lock, ctx.now)


def passed(spec: ProtectionSpec, ctx: Context) -> str:
    """The passing check's wording (the audit trace)."""
    if not spec.history:
        return "no history protection in the policy"
    if not ctx.request.increasing:
        return f"{ctx.request.action} adds no exposure: history locks do not apply"
    return "no history lock covers this order"
