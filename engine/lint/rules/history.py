"""BST406-BST412: the `history:` protections of a ProtectionPolicy, and may_bypass."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from bastion.engine.lint.findings import Finding, did_you_mean
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.history import METHOD_PARAMS, HistoryProtection
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.model import Policy
from bastion.engine.policy.vocabulary import BYPASSABLE_PROTECTIONS

DAY_S = Decimal(86_400)  # the longest an unlock_at lock can last


def check(policy: Policy) -> Iterator[Finding]:
    spec: ProtectionSpec = policy.spec
    seen: set[str] = set()
    for index, entry in enumerate(spec.history):
        at = f"/spec/history/{index}"
        if entry.id in seen:
            yield finding(
                policy,
                "BST411",
                f"{at}/id",
                f"history protection id {entry.id!r} is used twice; locks, reasons and "
                "may_bypass name protections by id",
            )
        seen.add(entry.id)
        yield from _entry(policy, entry, at)
    yield from _bypass(policy, spec)


def _entry(policy: Policy, entry: HistoryProtection, at: str) -> Iterator[Finding]:
    if entry.trade_limit == 0:
        yield finding(
            policy,
            "BST407",
            f"{at}/trade_limit",
            f"{entry.id}: trade_limit 0 would judge a window with no trades; set 1 or more",
        )
    if entry.lock_s is not None and entry.unlock_at is not None:
        yield finding(
            policy,
            "BST408",
            f"{at}/unlock_at",
            f"{entry.id}: lock_s ({entry.lock_s} s) and unlock_at ({entry.unlock_at}) both "
            "say when a lock ends; keep one",
        )
    elif entry.lock_s is None and entry.unlock_at is None:
        yield finding(
            policy,
            "BST409",
            at,
            f"{entry.id}: no lock_s and no unlock_at: a lock would end at once; give one",
        )
    longest_lock = entry.lock_s if entry.unlock_at is None else DAY_S
    if longest_lock is not None and entry.lookback_s < longest_lock:
        what = (
            f"lock_s {entry.lock_s} s"
            if entry.unlock_at is None
            else f"an unlock_at lock (up to {DAY_S} s)"
        )
        yield finding(
            policy,
            "BST406",
            f"{at}/lookback_s",
            f"{entry.id}: lookback_s {entry.lookback_s} s is shorter than {what}; a lock "
            "lost with the state file is not made again from trades that left the lookback",
        )
    for name in sorted(entry.given - set(METHOD_PARAMS[entry.method])):
        yield finding(
            policy,
            "BST410",
            f"{at}/{name}",
            f"{entry.id}: {entry.method} does not read {name}; remove it (or change method)",
            key=True,
        )


def _bypass(policy: Policy, spec: ProtectionSpec) -> Iterator[Finding]:
    ids = [entry.id for entry in spec.history]
    known = (*BYPASSABLE_PROTECTIONS, *ids)
    pointer = "/spec/regime_override/may_bypass"
    written = policy.document.get("spec", {}).get("regime_override", {}).get("may_bypass", [])
    for name in sorted(spec.override_may_bypass - set(known)):
        index = written.index(name) if name in written else None
        yield finding(
            policy,
            "BST412",
            pointer if index is None else f"{pointer}/{index}",
            f"may_bypass lists {name!r}, which is neither grace_period, holding_period, "
            f"whipsaw_protection nor the id of a history protection{did_you_mean(name, known)}",
        )
