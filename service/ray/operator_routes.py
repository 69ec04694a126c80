"""Operator actions under `bastion serve --ray`: manual escalations (POST / DELETE
/api/v1/escalations) and history-lock releases (POST /api/v1/locks/release).

The bodies name a position or a lock, not an account: the head asks every partition
whether it holds it (`Partition.holds`; a partition only ever holds its own accounts'
positions and locks, so the one that does is the owner of the account) and sends the
request there. That partition answers exactly as a single `bastion serve` does — same
roles (checked by the HTTP front before this), same answers, the same audit records in
its own chain — and the head records in its chain who asked, what, and where it went
(`operator_action_routed`). A body that cannot be read goes to the first serving
partition, which refuses it as a single service would (422, audited there).

No partition holds it: the head answers what a single service answers for a position,
manual escalation or lock it does not have (409, with every partition's list merged),
audited in the head's chain. A partition that is down might hold it: 503, nothing done
(its accounts are REDUCING; ask again once it serves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.engine.authority.history.release import LockNotFound
from bastion.service import escalations, locks
from bastion.service.auth import LOCAL, Principal
from bastion.service.ray.slots import PLAYBOOK, REDUCING, SERVING

if TYPE_CHECKING:
    from bastion.service.ray.head import RayHead


@dataclass(frozen=True, slots=True)
class Action:
    """One operator action: the partition method, what its body names, its answer flag."""

    method: str
    path: str
    kind: str  # what `Partition.holds` looks for: position | escalation | lock
    flag: str  # the answer's boolean: escalated | cleared | released
    audit_kind: str  # the single service's record of a refusal


ESCALATE = Action("escalate", "POST /api/v1/escalations", "position", "escalated", "escalation_set")
CLEAR = Action(
    "clear_escalation", "DELETE /api/v1/escalations", "escalation", "cleared", "escalation_cleared"
)
RELEASE = Action("release_lock", "POST /api/v1/locks/release", "lock", "released", "lock_released")


def route(
    head: RayHead, action: Action, body: bytes, principal: Principal = LOCAL
) -> tuple[int, dict[str, Any]]:
    """The answer of the partition that holds the action's target (see the module)."""
    target = _target(action, body, principal)
    if target is None:  # refused as unreadable: as a single service refuses it
        serving = next((s for s in head.slots if s.state == SERVING), head.slots[0])
        return head._call(serving, action.method, body, principal, action.flag)
    key, reason = target
    answers = head._each("holds", action.kind, key)
    owner = next((s for s in head.slots if answers.get(s.index, {}).get("found")), None)
    if owner is not None:
        status, answer = head._call(owner, action.method, body, principal, action.flag)
        head.auditor.record(
            "operator_action_routed",
            principal=principal.name,
            subject=_subject(action, key),
            action=action.path,
            partition=owner.index,
            status=status,
        )
        return status, answer
    missing = [s for s in head.slots if s.state != SERVING or s.index not in answers]
    if missing:  # it may be theirs: nothing is done until they answer
        listed = ", ".join(str(s.index) for s in missing)
        return 503, {
            action.flag: False,
            "partitions_down": [s.index for s in missing],
            "trading_state": REDUCING,
            "error": f"no serving partition holds {key!r} and partition(s) {listed} did not "
            f"answer: it may be theirs; their accounts are {REDUCING}; ask again in a few "
            f"seconds ({PLAYBOOK})",
        }
    known = sorted({k for answer in answers.values() for k in answer.get("known", [])})
    return _not_found(head, action, key, reason, known, principal)


def _target(action: Action, body: bytes, principal: Principal) -> tuple[str, str] | None:
    """The position or lock a readable body names, and why (parsed as the partition
    will parse it); None when it cannot be read."""
    by = None if principal == LOCAL else principal.name
    try:
        if action is RELEASE:
            release = locks.parse_release(body, by=by)
            return release.lock_id, release.reason
        fields = escalations.ESCALATE_FIELDS if action is ESCALATE else escalations.CLEAR_FIELDS
        asked = escalations.parse_body(body, fields, by=by)
    except (locks.ReleaseInvalid, escalations.EscalationInvalid):
        return None
    return asked.position_id, asked.reason


def _subject(action: Action, key: str) -> str:
    return f"lock:{key}" if action is RELEASE else f"position:{key}"


def _not_found(
    head: RayHead,
    action: Action,
    key: str,
    reason: str,
    known: list[str],
    principal: Principal,
) -> tuple[int, dict[str, Any]]:
    """409 as a single service answers it, every partition's list merged; audited."""
    if action is RELEASE:
        error = str(LockNotFound(key, tuple(known)))
        head.auditor.lock_release_refused(
            principal.name, status=409, lock_id=key, reason=reason, error=error
        )
        return 409, {"released": False, "error": error, "active": known}
    if action is ESCALATE:
        error = f"no position {key!r} in the last snapshot"
        details: dict[str, Any] = {"positions": known}
    else:
        error = f"no manual escalation on {key!r}; nothing to clear"
        details = {"active": known}
    head.auditor.record(
        action.audit_kind,
        principal=principal.name,
        subject=f"position:{key}",
        status=409,
        result="rejected",
        error=error[:1000],
    )
    return 409, {action.flag: False, "error": error, **details}
