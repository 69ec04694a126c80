"""The reload of `bastion serve --ray`, behind a version barrier (see `gate`).

The head reads, lints and guards the policy directory as a single service does, then:
(1) every partition compiles the new set aside while it keeps serving (`prepare`);
(2) every partition closes its gate: the cycle running ends, nothing new starts
(`fence`); (3) every partition swaps and opens its gate (`commit`). No cycle and no check
anywhere runs between two partitions' swaps. A partition that cannot prepare or fence
aborts the reload on all of them: 422 `partition_not_prepared`, `reload_rejected` in the
head's chain and in every partition's, the old version serving on. A reload while a
partition is down is refused (`partition_down`): it would start on the old version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ray
import structlog
from ray.exceptions import RayError

from bastion.engine.lint.runner import PolicySetError
from bastion.engine.policy.guard import removed_protection, unaccepted
from bastion.engine.policy.model import PolicySet
from bastion.service.ray.slots import (
    CALL_TIMEOUT_S,
    REJECT_REASONS,
    SERVING,
    START_TIMEOUT_S,
    Slot,
    policy_versions,
    read_policies,
)

if TYPE_CHECKING:
    from bastion.service.ray.head import RayHead

log = structlog.get_logger("bastion.service")


def reload_everywhere(
    head: RayHead, trigger: str, principal: str | None = None, accept_removal: Sequence[str] = ()
) -> tuple[int, dict[str, Any]]:
    """Read, lint and guard the directory, then prepare / fence / commit everywhere."""
    with head.lock:
        assert head.policy_set is not None
        before = head.policy_set
        try:
            policy_set = read_policies(head.policy_dir)
        except Exception as error:
            reason = "lint" if isinstance(error, PolicySetError) else "error"
            return _refused(head, trigger, principal, reason, [f"{head.policy_dir}: {error}"])
        if policy_set.version == before.version:
            return 200, {"reloaded": True, "version": before.version, "changed": []}
        removals = removed_protection(before, policy_set)
        refused = unaccepted(removals, frozenset(accept_removal))
        if refused:
            errors = [f"{r.key}: {r.message}" for r in refused]
            status, body = _refused(head, trigger, principal, "removes_protection", errors)
            body["removals"] = [{"key": r.key, "message": r.message} for r in refused]
            return status, body
        down = [s.index for s in head.slots if s.state != SERVING]
        if down:
            return _refused(
                head,
                trigger,
                principal,
                "partition_down",
                [f"partition {i} is down: reload again once it serves" for i in down],
            )
        epoch = head.epoch + 1
        failures = _prepare(head, epoch, policy_set, accept_removal)
        if not failures:
            failures = _fence(head, epoch)
        if failures:
            for slot in head.slots:
                _quietly(head, slot, "abort", epoch)
                _quietly(
                    head,
                    slot,
                    "audit",
                    "reload_rejected",
                    reason="partition_not_prepared",
                    epoch=epoch,
                    version_refused=policy_set.version,
                    version_before=before.version,
                    errors=failures,
                )
            head.metrics.reloads_aborted.inc()
            return _refused(
                head,
                trigger,
                principal,
                "partition_not_prepared",
                failures,
                attempted=policy_set.version,
            )
        committed = [
            (slot, ref)
            for slot in head.slots
            for ref in [slot.actor.commit.remote(epoch, trigger, principal, list(accept_removal))]
        ]
        head.policy_set, head.epoch = policy_set, epoch  # restarts start on the new one
        head.loaded_at = datetime.now(UTC)
        for slot, ref in committed:
            try:
                answer = ray.get(ref, timeout=CALL_TIMEOUT_S)
            except RayError as error:
                answer = {"ok": False, "error": repr(error)}
            if not answer.get("ok"):  # cannot serve the old one beside the new: down
                head.mark_down(slot, RuntimeError(f"commit failed: {answer.get('error')}"))
    head.metrics.reload_epoch.set(epoch)
    head.metrics.reload_succeeded(head.loaded_at, policy_set.version, policy_versions(policy_set))
    changed = sorted(
        k
        for k in set(policy_versions(before)) | set(policy_versions(policy_set))
        if policy_versions(before).get(k) != policy_versions(policy_set).get(k)
    )
    head.auditor.record(
        "policy_reloaded",
        principal=principal,
        subject="system:policies",
        trigger=trigger,
        epoch=epoch,
        version_before=before.version,
        version_after=policy_set.version,
        changed=changed,
        partitions=len(head.slots),
    )
    log.info("policy_reloaded", version=policy_set.version, epoch=epoch, trigger=trigger)
    accepted = sorted(r.key for r in removals)  # all accepted (else refused above)
    head.alerts.reloaded(policy_set.version, principal, accepted)  # one alert, not N
    return 200, {
        "reloaded": True,
        "version": policy_set.version,
        "epoch": epoch,
        "changed": changed,
    }


def _prepare(head: RayHead, epoch: int, policy_set: PolicySet, accept: Sequence[str]) -> list[str]:
    refs = [(s, s.actor.prepare.remote(epoch, policy_set, list(accept))) for s in head.slots]
    failures = []
    for slot, ref in refs:
        try:
            answer = ray.get(ref, timeout=START_TIMEOUT_S)
        except RayError as error:
            head.mark_down(slot, error)
            answer = {"ok": False, "error": f"{type(error).__name__}"}
        if not answer.get("ok"):
            failures.append(f"partition {slot.index}: {answer.get('error')}")
    return failures


def _fence(head: RayHead, epoch: int) -> list[str]:
    refs = [(s, s.actor.fence.remote(epoch)) for s in head.slots]
    failures = []
    for slot, ref in refs:
        try:
            closed = ray.get(ref, timeout=CALL_TIMEOUT_S)
        except RayError as error:
            head.mark_down(slot, error)
            closed = False
        if not closed:
            failures.append(f"partition {slot.index}: could not be fenced between cycles")
    return failures


def _quietly(head: RayHead, slot: Slot, method: str, *args: Any, **kwargs: Any) -> Any:
    if slot.actor is None or slot.state != SERVING:
        return None
    try:
        return ray.get(getattr(slot.actor, method).remote(*args, **kwargs), timeout=CALL_TIMEOUT_S)
    except RayError as error:
        log.error("partition_call_failed", partition=slot.index, method=method, error=repr(error))
        return None


def _refused(
    head: RayHead,
    trigger: str,
    principal: str | None,
    reason: str,
    errors: list[str],
    attempted: str | None = None,
) -> tuple[int, dict[str, Any]]:
    head.metrics.reload_failed(datetime.now(UTC), reason if reason in REJECT_REASONS else "error")
    head.auditor.record(
        "reload_rejected",
        principal=principal,
        subject="system:policies",
        trigger=trigger,
        reason=reason,
        version_before=head.version,
        version_after=head.version,
        version_refused=attempted,
        errors=errors,
    )
    log.error("reload_rejected", reason=reason, errors=errors, trigger=trigger)
    head.alerts.reload_rejected(reason, errors)
    return 422, {
        "reloaded": False,
        "reason": reason,
        "kept_version": head.version,
        "errors": errors,
    }
