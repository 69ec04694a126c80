"""What clients ask of the running service: order checks, sent orders, breaker resets.

`Desk` answers the HTTP API's requests that read or change the order and breaker memory,
for one `Service` (whose state, snapshot, authority, audit trail and persistence it
uses). Every answer is an HTTP status and a JSON body; nothing is acknowledged that is
not saved and in the audit trail (see `Service.save_state`, `Auditor`).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from bastion.engine.authority.check import resolve_account
from bastion.engine.authority.request import (
    OrderRequest,
    RequestError,
    RequestInvalid,
    parse_request,
)
from bastion.engine.decision import render_value
from bastion.engine.evaluation.breakers import ManualReset
from bastion.service import order_lists
from bastion.service.alerts import AlertRaised
from bastion.service.auth import LOCAL, Principal
from bastion.service.orders import (
    ReportedOrder,
    ReportInvalid,
    parse_report,
    report_answer,
)
from bastion.service.resets import PendingReset, ResetInvalid, parse_reset, reset_fields
from bastion.service.safe_text import body_problems

if TYPE_CHECKING:
    from bastion.service.runner import Service

log = structlog.get_logger("bastion.service")


class Desk:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._report_lock = threading.Lock()  # one report at a time: decide, keep, save

    def check(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/check: may this order be sent? The HTTP status and JSON answer.

        A question: it records nothing (no submit, no open / close, no override, no grace
        clock); an order sent is reported with `report_order`. 200 with the decision,
        approved, downsized or denied alike (a denial is an answer); 422 when the body is
        not a valid request (the field is named); 503 with `approved: false` while the
        service is not ready (no fresh data, or its state cannot be saved): never an
        approval.
        """
        started = time.perf_counter()
        if not body.strip():
            return self._refused(
                principal, started, 422, "body: empty; send one order request as JSON"
            )
        if order_lists.is_list_body(body):  # an order list: one decision per leg and the list's
            return order_lists.check_list(self, body, principal)
        try:
            text = body.decode("utf-8")
            if problems := body_problems(text):
                errors = [{"path": path, "message": message} for path, message in problems]
                return self._refused(
                    principal, started, 422, "body: text that cannot be kept", errors=errors
                )
            request = parse_request(text, source="body")
        except UnicodeDecodeError as error:
            return self._refused(principal, started, 422, f"body: not UTF-8 text ({error.reason})")
        except RequestError as error:
            invalid = error.errors if isinstance(error, RequestInvalid) else ()
            errors = [{"path": e.path, "message": e.message} for e in invalid]
            return self._refused(principal, started, 422, str(error), errors=errors)
        ready, reasons = self.service.ready()
        snapshot = self.service.last_snapshot  # one read: the check sees one snapshot
        if not ready or snapshot is None:
            message = "service not ready: no order is approved without fresh data"
            if self.service.persist_failures():  # fail closed: a sent order could not be remembered
                message = "service not ready: no order is approved while its state cannot be saved"
            return self._refused(principal, started, 503, message, request, reasons=reasons)
        try:  # an account the snapshot does not know is a caller's mistake, not a denial
            account = resolve_account(snapshot, request.account_id)
        except LookupError as error:
            path, _, message = str(error).partition(": ")
            errors = [{"path": path, "message": message}]
            return self._refused(principal, started, 422, f"body: {error}", request, errors=errors)
        result = self.service.order_authority().check(
            request, snapshot, self.service.feed.now(), explain=True
        )
        # The answer first (its decision's content is worded and hashed once, for it and
        # the id the trail names), but written before anything says it was answered: no
        # trail, no answer.
        answer = result.to_dict()
        if not self.service.auditor.order_checked(
            principal.name, status=200, request=request, result=result
        ):
            message = "not answered: the audit trail cannot be written; see /readyz"
            return self._refused(principal, started, 503, message, request, audit=False)
        decision = result.decision  # one read (a property)
        policy_version = decision.policy_version  # the set that decided
        outcome = "error" if "error" in result.blocking else result.outcome
        self.service.metrics.order_checked(outcome, time.perf_counter() - started)
        if self.service.candidate is not None:  # the shadow set: after the answer is made
            self.service.candidate.checked(request, snapshot, self.service.feed.now(), result)
        (log.warning if outcome == "error" else log.info)(
            "order_checked",
            **_order_fields(result.request, account),
            outcome=result.outcome,
            status=200,
            blocking=list(result.blocking),
            requested_size=_text(result.requested_size),
            approved_size=_text(result.approved_size),
            override_applied=result.override_applied,
            decision_id=decision.id,
            policy_version=policy_version[:19],
            principal=principal.name,  # the one info line of a check answered (see http)
        )
        answer["policy_version"] = policy_version
        return 200, answer

    def _refused(
        self,
        principal: Principal,
        started: float,
        status: int,
        error: str,
        request: OrderRequest | None = None,
        *,
        audit: bool = True,  # False: the trail is what failed
        **details: Any,
    ) -> tuple[int, dict[str, Any]]:
        """A check that gave no decision: counted, logged and audited as outcome "error"."""
        self.service.metrics.order_checked("error", time.perf_counter() - started)
        log.warning(
            "order_checked",
            **(_order_fields(request, request.account_id) if request is not None else {}),
            outcome="error",
            status=status,
            error=error[:1000],  # the client's own values may be in it: bounded
            principal=principal.name,
        )
        if audit:
            self.service.auditor.order_checked(
                principal.name, status=status, request=request, error=error
            )
        return status, {"approved": False, "error": error, **details}

    def report_order(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/orders: an order was sent. The check's body plus "order_id".

        Decided again on the latest snapshot (the decision it was sent under) and
        remembered whatever the answer — its submit, open / close and override count,
        since it was sent — then saved with the state, then answered: 200 with
        `recorded: true`, the order id and the decision. A second report of the same
        order id changes nothing and answers the first answer (`duplicate: true`). 422
        when the body is not a report (nothing recorded); 503 without a snapshot yet
        (nothing recorded: report it again) or when the state cannot be saved (recorded
        in memory, `saved: false`; a retry of the same id answers 200 once saved).
        """
        if order_lists.is_list_body(body):  # an order list sent: every leg remembered
            return order_lists.report_list(self, body, principal)
        try:
            order_id, request = parse_report(body)
        except RequestError as error:
            invalid = error.errors if isinstance(error, ReportInvalid) else ()
            errors = [{"path": path, "message": message} for path, message in invalid]
            return self._report_refused(principal, 422, str(error), errors=errors)
        with self._report_lock:
            first = self.service.orders.get(order_id)
            if first is not None:
                return self._reported_again(principal, first)
            snapshot = self.service.last_snapshot  # one read: the report sees one snapshot
            if snapshot is None:
                message = "no market data yet: the order cannot be decided; report it again"
                return self._report_refused(principal, 503, message, order_id=order_id)
            try:
                account = resolve_account(snapshot, request.account_id)
            except LookupError as error:
                path, _, message = str(error).partition(": ")
                errors = [{"path": path, "message": message}]
                return self._report_refused(principal, 422, f"body: {error}", errors=errors)
            now = self.service.feed.now()
            result = self.service.order_authority().record_sent(request, snapshot, now)
            answer = report_answer(order_id, principal.name, result)
            self.service.orders.add(ReportedOrder(order_id, answer, now))
            saved = self.service.save_state()  # before the answer: kill -9 loses nothing answered
        if self.service.candidate is not None:  # the shadow set remembers it too
            self.service.candidate.sent(request, snapshot, now, result)
        self.service.metrics.order_reported(result.outcome)
        (log.info if result.approved else log.warning)(
            "order_reported",
            **_order_fields(request, account),
            order_id=order_id[:128],
            outcome=result.outcome,
            blocking=list(result.blocking),
            decision_id=result.decision.id,
            by=principal.name,
            saved=saved,
        )
        if not result.approved and self.service.alerts is not None:
            self.service.alerts.raise_alert(
                AlertRaised(
                    now,
                    "order_sent_denied",
                    "warning",
                    f"order {order_id[:128]} was sent though Bastion denies it "
                    f"({', '.join(result.blocking)}); recorded",
                    {"order_id": order_id[:128], "account": account},
                )
            )
        audited = self.service.auditor.order_reported(
            principal.name,
            status=200 if saved else 503,
            order_id=order_id,
            request=request,
            result=result,
        )
        return self._saved_answer(answer, saved, audited)

    def _reported_again(
        self, principal: Principal, first: ReportedOrder
    ) -> tuple[int, dict[str, Any]]:
        """A report of an order id already reported: nothing changes; the first answer
        (and, if the first save failed, one more try at saving it)."""
        saved = self.service.persist_reason("state") is None or self.service.save_state()
        self.service.metrics.order_reported("duplicate")
        log.info("order_reported", order_id=first.order_id[:128], duplicate=True, saved=saved)
        audited = self.service.auditor.order_reported(
            principal.name,
            status=200 if saved else 503,
            order_id=first.order_id,
            request=None,
            duplicate=True,
        )
        return self._saved_answer({**first.answer, "duplicate": True}, saved, audited)

    def _saved_answer(
        self, answer: dict[str, Any], saved: bool, audited: bool = True
    ) -> tuple[int, dict[str, Any]]:
        if saved and not audited:  # fail closed: acknowledged only once the trail holds it
            error = "recorded and saved, but the audit trail cannot be written; report it again"
            return 503, {**answer, "audited": False, "error": error}
        if saved:
            return 200, answer
        reason = self.service.persist_reason("state") or "unknown error"
        error = f"recorded in memory but not saved ({reason}); report it again to confirm"
        return 503, {**answer, "saved": False, "error": error}

    def _report_refused(
        self, principal: Principal, status: int, error: str, **details: Any
    ) -> tuple[int, dict[str, Any]]:
        """A report not recorded: counted, logged and audited as outcome "error"."""
        self.service.metrics.order_reported("error")
        log.warning("order_reported", outcome="error", status=status, error=error[:1000])
        order_id = details.get("order_id")
        self.service.auditor.order_reported(
            principal.name, status=status, order_id=order_id, request=None, error=error
        )
        return status, {"recorded": False, "error": error, **details}

    def reset_breaker(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/breakers/reset: queue an operator's manual reset for the next cycle.

        202 `queued: true` with the state keys it applies to, once the queue is saved
        with the state; 422 when the body is not a reset (the fields are named; text
        that cannot be kept, a "by" that is not the caller); 409 when no breaker of that
        id is tripped or cooling down for the subject (the ones that are, listed); 503
        when the state cannot be saved (nothing queued). A later request for the same
        breaker and subject replaces a queued one. Who resets is the principal's name;
        for `LOCAL` (no --auth: no identity) the body's required "by".
        """
        try:
            reset = parse_reset(body, by=None if principal == LOCAL else principal.name)
        except ResetInvalid as error:
            errors = [{"path": path, "message": message} for path, message in error.errors]
            return self._reset_refused(principal, 422, str(error), errors=errors)
        not_armed = self.service.breakers_not_armed()  # one read of the live state
        label = f"{reset.breaker_id}@{reset.subject}"  # the state key after "policy:"
        matching = sorted(key for key in not_armed if key.partition(":")[2] == label)
        if not matching:
            listed = ", ".join(
                sorted({f"{key.partition(':')[2]} ({status})" for key, status in not_armed.items()})
            )
            message = (
                f"{reset.breaker_id} is not tripped or cooling down for {reset.subject}: "
                f"nothing to reset; not armed now: {listed or 'none'}"
            )
            return self._reset_refused(principal, 409, message, reset, breakers_not_armed=not_armed)
        if not self.service.auditor.reset_requested(principal.name, status=202, reset=reset):
            message = "not queued: the audit trail cannot be written; see /readyz"
            return self._reset_refused(principal, 503, message, reset, audit=False)
        pending = PendingReset(reset, self.service.feed.now())
        replaced = self.service.queue_reset(pending)
        if not self.service.save_state():  # fail closed: an unsaved reset is not taken
            self.service.unqueue_reset(pending, replaced)
            reason = self.service.persist_reason("state") or "unknown error"
            message = f"not queued: the state cannot be saved ({reason})"
            return self._reset_refused(principal, 503, message, reset)
        self.service.metrics.breaker_reset("queued")
        log.info("breaker_reset_requested", **reset_fields(reset), result="queued", status=202)
        if self.service.on_reset_queued is not None:
            self.service.on_reset_queued()
        return 202, {"queued": True, **pending.to_dict(), "applies_to": matching}

    def _reset_refused(
        self,
        principal: Principal,
        status: int,
        error: str,
        reset: ManualReset | None = None,
        *,
        audit: bool = True,  # False: the trail is what failed
        **details: Any,
    ) -> tuple[int, dict[str, Any]]:
        """A reset not taken: counted, logged and audited as result "rejected"."""
        self.service.metrics.breaker_reset("rejected")
        log.warning(
            "breaker_reset_requested",
            **(reset_fields(reset) if reset is not None else {}),
            result="rejected",
            status=status,
            error=error[:1000],  # the client's own values may be in it: bounded
        )
        if audit:
            self.service.auditor.reset_requested(
                principal.name, status=status, reset=reset, error=error
            )
        return status, {"queued": False, "error": error, **details}


def _order_fields(request: OrderRequest, account: str | None) -> dict[str, Any]:
    """What an `order_checked` event says about the order (client text: bounded)."""
    return {
        "symbol": request.symbol[:128],
        "action": request.action,
        "account": None if account is None else account[:128],
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else render_value(value)
