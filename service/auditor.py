"""What the service writes to the audit trail, and what happens when it cannot.

`Auditor` turns the service's events (decisions, order checks and reports, resets,
reloads, auth refusals, start and stop) into audit records on an `AuditTrail`. It
never lets a failed write pass silently: the first failure calls `on_failed("audit",
reason)` (the service turns /readyz 503, counts `bastion_persist_failures_total
{what="audit"}` and raises a critical alert), and the first success after that calls
`on_recovered("audit")`. Callers that acknowledge something to a client (an order
report, a reset) check the returned flag and answer 503 when the record was not
written: nothing is acknowledged that the trail does not hold.

Without a trail (`trail=None`, tests and `bastion serve --no-audit`) every call is a
no-op that reports success.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from bastion.engine.authority.check import ExecutionDecision
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.authority.request import OrderRequest
from bastion.engine.decision import Decision
from bastion.engine.evaluation.breakers import ManualReset
from bastion.service.audit import AuditTrail, AuditWriteFailed

log = structlog.get_logger("bastion.service")

# The longest text a client can put into a record through one field.
_CLIENT_TEXT = 256


class Auditor:
    def __init__(
        self,
        trail: AuditTrail | None,
        *,
        on_failed: Callable[[str, str], None] | None = None,
        on_recovered: Callable[[str], None] | None = None,
    ) -> None:
        self.trail = trail
        self._on_failed = on_failed
        self._on_recovered = on_recovered
        self._failing = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.trail is not None

    def record(
        self,
        kind: str,
        *,
        principal: str | None = None,
        subject: str | None = None,
        sync: bool = True,
        **data: Any,
    ) -> bool:
        """Append one record. True when it is written (or there is no trail); fsynced
        unless `sync=False` (then with the next synced record or `flush()`)."""
        if self.trail is None:
            return True
        try:
            self.trail.append(kind, principal=principal, subject=subject, sync=sync, **data)
        except AuditWriteFailed as error:
            self._failed(str(error))
            return False
        if self._failing:
            self._recovered()
        return True

    def flush(self) -> bool:
        """fsync the records of questions written since the last synced one (every
        cycle): a power cut loses at most a cycle's order checks, never a state change."""
        if self.trail is None:
            return True
        try:
            self.trail.sync()
        except AuditWriteFailed as error:
            self._failed(str(error))
            return False
        return True

    @property
    def failing(self) -> bool:
        return self._failing

    def retry(self) -> bool:
        """While writes fail, try one (`audit_resumed`): called every cycle, so that the
        service is ready again within a cycle of the disk coming back, even when nothing
        else is written. True when the trail is writable."""
        if not self._failing:
            return True
        return self.record("audit_resumed", subject="system:audit")

    def _failed(self, reason: str) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        log.error("audit_write_failed", error=reason[:1000], first=first)
        if self._on_failed is not None:
            self._on_failed("audit", reason)

    def _recovered(self) -> None:
        with self._lock:
            was, self._failing = self._failing, False
        if was:
            log.warning("audit_write_recovered")
            if self._on_recovered is not None:
                self._on_recovered("audit")

    # -- the service's events --------------------------------------------------------

    def decisions(self, decisions: Iterable[Decision], *, cycle_id: str | None = None) -> bool:
        """Every decision a cycle made: the engine emits decisions for changes only
        (transitions, trips, rearms, resets, trading-state changes, roll advice)."""
        if self.trail is None:
            return True
        written = True
        for decision in decisions:
            written &= self.record(
                "decision_made",
                principal=None,  # the engine decided; a reset's operator is in its data
                subject=decision.subject.label(),
                sync=False,  # one fsync for the cycle's batch, below: the trail's lock
                cycle_id=cycle_id,  # is held for microseconds, not a disk flush each
                decision=decision.to_dict(),
            )
        return self.flush() and written

    def reload(self, record: Mapping[str, Any], *, files: Mapping[str, str]) -> bool:
        """A reload accepted or refused (`reloader.audit_record(event)`): who asked,
        the versions before and after, the policies changed and their files, removals."""
        data = {k: v for k, v in record.items() if k not in ("event", "principal", "at")}
        return self.record(
            str(record["event"]),
            principal=record.get("principal"),
            subject="system:policies",
            files=dict(files),
            **data,
        )

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> bool:
        return self.record(
            "auth_refused",
            principal=principal,
            method=method[:16],
            path=path[:_CLIENT_TEXT],
            status=status,
            reason=reason[:_CLIENT_TEXT],
        )

    def order_checked(
        self,
        principal: str,
        *,
        status: int,
        request: OrderRequest | None,
        result: ExecutionDecision | None = None,
        error: str | None = None,
    ) -> bool:
        """A check answered: the decision with its inputs, or why there was none."""
        if self.trail is None:
            return True
        return self.record(
            "order_checked",
            principal=principal,
            subject=_order_subject(request),
            sync=False,  # a question changes nothing: fsynced with the next state change
            status=status,
            **_order_data(request, result, error),
        )

    def order_reported(
        self,
        principal: str,
        *,
        status: int,
        order_id: str | None,
        request: OrderRequest | None,
        result: ExecutionDecision | None = None,
        error: str | None = None,
        duplicate: bool = False,
    ) -> bool:
        """An order reported as sent (and, when it used an override, that too)."""
        if self.trail is None:
            return True
        subject = _order_subject(request)
        data = _order_data(request, result, error)
        written = self.record(
            "order_reported",
            principal=principal,
            subject=subject,
            status=status,
            order_id=None if order_id is None else order_id[:_CLIENT_TEXT],
            duplicate=duplicate,
            **data,
        )
        if result is not None and result.override_applied and not duplicate:
            written &= self.record(
                "override_applied",
                principal=principal,
                subject=subject,
                order_id=None if order_id is None else order_id[:_CLIENT_TEXT],
                reason=result.override_reason,
                decision_id=result.decision.id,
                policy_version=result.decision.policy_version,
            )
        return written

    def reset_requested(
        self,
        principal: str,
        *,
        status: int,
        reset: ManualReset | None,
        error: str | None = None,
    ) -> bool:
        """A breaker reset asked for: queued (202) or refused, with who and why."""
        fields: dict[str, Any] = {"status": status, "error": error}
        if reset is not None:
            fields |= {"breaker": reset.breaker_id, "by": reset.by, "reason": reset.reason}
        return self.record(
            "breaker_reset_requested",
            principal=principal,
            subject=None if reset is None else reset.subject,
            **fields,
        )

    def lock_released(self, principal: str, *, status: int, lock: HistoryLock) -> bool:
        """A history lock an officer released (POST /api/v1/locks/release), with who,
        why and what it held: written before the release takes effect."""
        return self.record(
            "lock_released",
            principal=principal,
            subject=f"account:{lock.account_id}",
            status=status,
            lock=lock.id,
            protection=lock.protection,
            until=lock.until.isoformat(),
            trade_ids=list(lock.trade_ids),
            by=lock.released_by,
            reason=lock.release_reason,
        )

    def lock_release_refused(
        self,
        principal: str,
        *,
        status: int,
        lock_id: str | None,
        reason: str | None,
        error: str,
    ) -> bool:
        """A release refused (422, 409, 503): who asked, for which lock, and why not."""
        return self.record(
            "lock_release_refused",
            principal=principal,
            subject=None,
            status=status,
            lock=None if lock_id is None else lock_id[:_CLIENT_TEXT],
            reason=None if reason is None else reason[:_CLIENT_TEXT],
            error=error[:1000],
        )

    def candidate_disagreements(
        self,
        *,
        serving_version: str,
        candidate_version: str,
        cycle: list[dict[str, Any]],
        checks: list[dict[str, Any]],
        checks_not_listed: int,
        standing: int,
    ) -> bool:
        """One cycle's batch of shadow-candidate disagreements (service.candidate): those
        that started or changed in the cycle, and the order checks' since the last one.
        Fsynced with the cycle's decisions."""
        return self.record(
            "candidate_disagreements",
            principal=None,
            subject="system:candidate",
            sync=False,
            serving_version=serving_version,
            candidate_version=candidate_version,
            cycle=cycle,
            checks=checks,
            checks_not_listed=checks_not_listed,
            standing=standing,
        )

    def lifecycle(self, kind: str, **data: Any) -> bool:
        """service_started, service_stopped, state_edit_accepted: the process's own."""
        return self.record(kind, principal=None, subject="system:service", **data)

    def head(self) -> dict[str, Any] | None:
        """The newest record's sequence number and hash: an anchor to keep off the host
        (`bastion audit verify --anchor SEQ:HASH` then detects lines cut from the end)."""
        if self.trail is None:
            return None
        seq, digest = self.trail.head
        current = self.trail.current_file
        return {"seq": seq, "hash": digest, "file": None if current is None else current.name}


def _order_subject(request: OrderRequest | None) -> str | None:
    """Orders are filed under their account (`audit show --subject 'account:*'`)."""
    if request is None or request.account_id is None:
        return None
    return f"account:{request.account_id[:_CLIENT_TEXT]}"


def _order_data(
    request: OrderRequest | None, result: ExecutionDecision | None, error: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if error is not None:
        data["error"] = error[:1000]
    if request is not None:
        data["request"] = {
            "id": request.id[:_CLIENT_TEXT],
            "account_id": request.account_id,
            "symbol": request.symbol[:_CLIENT_TEXT],
            "action": request.action,
            "side": request.side,
            "current_size": request.current_size,
            "target_size": request.target_size,
            "strategy_id": request.strategy_id,
        }
    if result is not None:
        decision = result.decision  # one read: a property that rebuilds when timed
        data |= {
            "outcome": result.outcome,
            "approved": result.approved,
            "blocking": list(result.blocking),
            "requested_size": result.requested_size,
            "approved_size": result.approved_size,
            "override_applied": result.override_applied,
            "policy_version": decision.policy_version,
            # What decided it: the decision's id, reasons and the input values compared
            # (the trace follows from them and the policy version; `bastion check`
            # replays it). The full record is ~3x larger and most of a check's cost.
            "decision": {
                "id": decision.id,
                "rule": decision.rule,
                "reasons": list(decision.reasons),
                "inputs": dict(decision.inputs),
            },
        }
    return data
