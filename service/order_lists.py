"""Order lists over HTTP: POST /api/v1/check and POST /api/v1/orders with a list body.

A body with "orders" is an order list (engine/authority/order_list.py): one decision per
leg and one for the list. `Desk.check` and `Desk.report_order` hand such a body here.
A check is a question (nothing remembered); a report remembers every leg whatever the
answer, keyed by the list's id for duplicates ("list:" + id in the order answers). Every
leg's decision is audited as a single check's is, then the list's record
(`order_list_checked` / `order_list_reported`) naming each leg's decision; no trail, no
answer (503).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import structlog

from bastion.engine.authority.check import resolve_account
from bastion.engine.authority.order_list import OrderList, is_order_list, order_list_from_dict
from bastion.engine.authority.order_list_check import ListDecision
from bastion.engine.authority.request import RequestError, RequestInvalid
from bastion.engine.snapshot.validate import parse_json
from bastion.service.auth import Principal
from bastion.service.orders import ReportedOrder, plain
from bastion.service.safe_text import body_problems

if TYPE_CHECKING:
    from bastion.service.desk import Desk

log = structlog.get_logger("bastion.service")
REPORT_PREFIX = "list:"  # an order list's answers, among the single orders' by order id


def is_list_body(body: bytes) -> bool:
    """Whether a body is an order list: parsed only when it names "orders" at all."""
    if b'"orders"' not in body:
        return False
    try:
        return is_order_list(json.loads(body))
    except ValueError:
        return False  # the single-order path names the JSON error


def _read(body: bytes) -> tuple[OrderList | None, str, list[dict[str, str]]]:
    """The list, or why not (the message and the fields named)."""
    try:
        text = body.decode("utf-8")
        if problems := body_problems(text):
            errors = [{"path": path, "message": message} for path, message in problems]
            return None, "body: text that cannot be kept", errors
        return order_list_from_dict(parse_json(text, "body", RequestError), source="body"), "", []
    except UnicodeDecodeError as error:
        return None, f"body: not UTF-8 text ({error.reason})", []
    except RequestError as error:
        invalid = error.errors if isinstance(error, RequestInvalid) else ()
        return None, str(error), [{"path": e.path, "message": e.message} for e in invalid]


def _accounts(order_list: OrderList, desk: Desk) -> tuple[str, list[dict[str, str]]]:
    snapshot = desk.service.last_snapshot
    assert snapshot is not None
    for index, leg in enumerate(order_list.legs):
        try:
            resolve_account(snapshot, leg.request.account_id)
        except LookupError as error:
            path, _, message = str(error).partition(": ")
            return f"body: orders[{index}].{error}", [
                {"path": f"orders[{index}].{path}", "message": message}
            ]
    return "", []


def check_list(desk: Desk, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/check with a list: 200 with the list's and every leg's decision."""
    service, started = desk.service, time.perf_counter()
    order_list, error, errors = _read(body)
    if order_list is None:
        return desk._refused(principal, started, 422, error, errors=errors)
    ready, reasons = service.ready()
    snapshot = service.last_snapshot
    if not ready or snapshot is None:
        message = "service not ready: no order is approved without fresh data"
        return desk._refused(principal, started, 503, message, reasons=reasons)
    error, errors = _accounts(order_list, desk)
    if error:
        return desk._refused(principal, started, 422, error, errors=errors)
    now = service.feed.now()
    result = service.order_authority().check_list(order_list, snapshot, now)
    if not _audited(desk, principal, result, reported=False):
        message = "not answered: the audit trail cannot be written; see /readyz"
        return desk._refused(principal, started, 503, message, audit=False)
    outcome = "error" if any("error" in leg.blocking for leg in result.legs) else result.outcome
    service.metrics.order_checked(outcome, time.perf_counter() - started)
    if service.candidate is not None:  # the shadow set decides the list too: after the answer
        service.candidate.checked_list(order_list, snapshot, now, result)
    _logged("order_list_checked", result, principal)
    return 200, {**result.to_dict(), "policy_version": result.policy_version}


def report_list(desk: Desk, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/orders with a list: every leg remembered, saved, then answered."""
    service = desk.service
    order_list, error, errors = _read(body)
    if order_list is None:
        return desk._report_refused(principal, 422, error, errors=errors)
    key = REPORT_PREFIX + order_list.id
    with desk._report_lock:
        first = service.orders.get(key)
        if first is not None:
            return desk._reported_again(principal, first)
        snapshot = service.last_snapshot
        if snapshot is None:
            message = "no market data yet: the list cannot be decided; report it again"
            return desk._report_refused(principal, 503, message, order_id=key)
        error, errors = _accounts(order_list, desk)
        if error:
            return desk._report_refused(principal, 422, error, errors=errors)
        now = service.feed.now()
        result = service.order_authority().record_list_sent(order_list, snapshot, now)
        answer = plain(
            {
                "recorded": True,
                "order_id": key,
                "reported_by": principal.name,
                **{k: v for k, v in result.to_dict().items() if k != "decision"},
                "decision_id": result.decision.id,
            }
        )
        service.orders.add(ReportedOrder(key, answer, now))
        saved = service.save_state()
    if service.candidate is not None:  # the shadow set remembers every leg too
        service.candidate.sent_list(order_list, snapshot, now, result)
    service.metrics.order_reported(result.outcome)
    _logged("order_list_reported", result, principal)
    audited = _audited(desk, principal, result, reported=True, status=200 if saved else 503)
    return desk._saved_answer(answer, saved, audited)


def _audited(
    desk: Desk, principal: Principal, result: ListDecision, *, reported: bool, status: int = 200
) -> bool:
    """Every leg as a single order's record, then the list's."""
    auditor, written = desk.service.auditor, True
    for leg in result.legs:
        if reported:
            written &= auditor.order_reported(
                principal.name,
                status=status,
                order_id=leg.result.request.id or None,
                request=leg.result.request,
                result=leg.result,
            )
        else:
            written &= auditor.order_checked(
                principal.name, status=status, request=leg.result.request, result=leg.result
            )
    decision = result.decision
    written &= auditor.record(
        "order_list_reported" if reported else "order_list_checked",
        principal=principal.name,
        subject=None
        if decision.subject.account_id is None
        else f"account:{decision.subject.account_id[:128]}",
        sync=reported,
        status=status,
        order_list=result.order_list.id[:128],
        contingency=result.order_list.contingency,
        outcome=result.outcome,
        approved=result.approved,
        blocking=list(result.blocking),
        reasons=list(result.reasons),
        legs=[dict(leg) for leg in dict(decision.details)["legs"]],
        decision_id=decision.id,
        policy_version=decision.policy_version,
    )
    return written


def _logged(event: str, result: ListDecision, principal: Principal) -> None:
    (log.info if result.approved else log.warning)(
        event,
        order_list=result.order_list.id[:128],
        contingency=result.order_list.contingency,
        outcome=result.outcome,
        legs=len(result.legs),
        blocking=list(result.blocking)[:20],
        principal=principal.name,
    )
