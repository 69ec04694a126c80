"""What the HTTP front reads from the head of `bastion serve --ray`, merged over the
partitions (`RayHead` answers with these): /readyz is ready when every partition is;
/api/v1/status (and /api/v1/overview) has each partition's status under `partitions`
and the trading states of all accounts at the top, a partition down counting its
accounts REDUCING; /api/v1/snapshot?account=ID is the snapshot of the account's
partition; /api/v1/policies the serving set. What is not served under --ray yet: 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.service.auth import LOCAL
from bastion.service.ray.slots import REDUCING, SERVING
from bastion.service.reloader import policy_listing

if TYPE_CHECKING:
    from bastion.service.ray.head import RayHead


def ready(head: RayHead) -> tuple[bool, list[str]]:
    """Ready when every partition serves and is ready, and the head's state saves."""
    reasons = []
    answers = head._each("ready")
    for slot in head.slots:
        answer = answers.get(slot.index)
        if slot.state != SERVING or answer is None:
            reasons.append(
                f"partition {slot.index}: down ({slot.error}); its accounts are {REDUCING}"
            )
            continue
        reasons.extend(f"partition {slot.index}: {reason}" for reason in answer[1])
    if head.alerts.save_error is not None:
        reasons.append(f"head state save failed: {head.alerts.save_error}")
    return not reasons, reasons


def policies(head: RayHead) -> dict[str, Any]:
    """The set every partition serves: its version, the barrier's epoch, its policies."""
    assert head.policy_set is not None
    return {
        "version": head.version,
        "epoch": head.epoch,
        "loaded_at": None if head.loaded_at is None else head.loaded_at.isoformat(),
        "policies": policy_listing(head.policy_set),
    }


def status(head: RayHead) -> dict[str, Any]:
    """Every partition's status under `partitions`; all accounts' trading states at
    the top (a partition down: its accounts REDUCING)."""
    answers = head._each("status")
    trading: dict[str, str] = {}
    partitions = []
    for slot in head.slots:
        answer = answers.get(slot.index)
        if answer is not None:
            slot.accounts = sorted(set(slot.accounts) | set(answer.get("accounts", [])))
            trading.update(answer.get("trading_states", {}))
        else:
            trading.update(dict.fromkeys(slot.accounts, REDUCING))
        partitions.append(
            {
                "partition": slot.index,
                "state": slot.state,
                "accounts": slot.accounts,
                "restarts": slot.restarts,
                "down_since": None if slot.down_since is None else slot.down_since.isoformat(),
                "error": slot.error,
                "status": answer,
            }
        )
    return {
        "ray": {
            "partitions": len(head.slots),
            "policy_version": head.version,
            "epoch": head.epoch,
        },
        "trading_states": dict(sorted(trading.items())),
        "partitions": partitions,
        "audit_head": head.auditor.head(),
        "alerts": head.alerts.status(),
    }


def snapshot(head: RayHead, account: str | None) -> tuple[int, dict[str, Any]]:
    """The snapshot of the partition that owns `account` (its accounts only; `partition`
    says which). Without an account: 400 naming the accounts there are; an unknown
    account: 404."""
    known = sorted(head.known_accounts())
    if not account:
        return 400, {
            "error": "with --ray each partition has its own snapshot: name an account, "
            "GET /api/v1/snapshot?account=ID (its partition's snapshot answers; "
            f"accounts: {', '.join(known) or 'none yet'})",
            "accounts": known,
        }
    if account not in known:
        return 404, {
            "error": f"account {account!r} is not an account of this service "
            f"(accounts: {', '.join(known) or 'none yet'})",
            "accounts": known,
        }
    return head._call(head._owner(account), "snapshot", b"", LOCAL, "snapshot")


def not_served(what: str) -> tuple[int, dict[str, Any]]:
    """501: `what` is served by a single-process `bastion serve` only, for now."""
    return 501, {
        "error": f"{what} is not served by `bastion serve --ray` yet: run it on a "
        "single-process `bastion serve` (README 'Running on a Ray cluster')"
    }
