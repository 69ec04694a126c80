"""Orders reported sent (POST /api/v1/orders): the body, and the answers kept by order id.

POST /api/v1/check is a question and records nothing. A trading system that sends an
order reports it with the same request body plus its `order_id`; the service decides
it again (the decision it was sent under), records its submit, open / close and
override in the order authority's memory, saves the state and only then answers. The
answer is kept by order id: a second report of the same id changes nothing and gets
the first answer again (`duplicate: true`), so a retry after a lost answer is safe.

`OrderAnswers` keeps the last ORDERS_KEPT answers (saved with the state): a report of
an older id is recorded again — counted twice, the safe side for a submit rate.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.engine.authority.check import ExecutionDecision
from bastion.engine.authority.request import (
    OrderRequest,
    RequestError,
    RequestInvalid,
    request_from_dict,
)
from bastion.engine.snapshot.validate import parse_json
from bastion.service.safe_text import text_problems

ORDERS_KEPT = 256  # answers kept for duplicate reports (each under 1 KB in the state file)
ORDER_ID_MAX_CHARS = 128


class ReportInvalid(RequestError):
    """A report body cannot be read; `errors` names each field (path, message). Caught
    by `Service.report_order` (422, nothing recorded)."""

    def __init__(self, message: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


def parse_report(body: bytes) -> tuple[str, OrderRequest]:
    """The order id and the request of a POST /api/v1/orders body: an order request (as
    POST /api/v1/check takes it) plus "order_id", the id the order was sent with."""
    if not body.strip():
        raise ReportInvalid("body: empty; send the order request with its order_id", [])
    try:
        data = parse_json(body.decode("utf-8"), "body", RequestError)
    except UnicodeDecodeError as error:
        raise ReportInvalid(f"body: not UTF-8 text ({error.reason})", []) from error
    if not isinstance(data, dict):
        raise ReportInvalid("body: a report is a JSON object: an order request + order_id", [])
    problems = text_problems(data)
    if problems:
        raise ReportInvalid(_listed("text that cannot be kept", problems), problems)
    rest = dict(data)
    order_id = rest.pop("order_id", None)
    if not isinstance(order_id, str) or not order_id.strip():
        problem = "is missing" if order_id is None else "must be a non-empty string"
        problems = [("order_id", f"{problem}: the id the order was sent with")]
    elif len(order_id) > ORDER_ID_MAX_CHARS:
        problems = [("order_id", f"longer than {ORDER_ID_MAX_CHARS} characters")]
    try:
        request = request_from_dict(rest, source="body")
    except RequestInvalid as error:
        problems += [(e.path, e.message) for e in error.errors]
    if problems:
        raise ReportInvalid(_listed("invalid report", problems), problems)
    return str(order_id), request


def _listed(what: str, problems: list[tuple[str, str]]) -> str:
    listed = "".join(f"\n  {path}: {message}" for path, message in problems)
    return f"body: {what}, {len(problems)} problem(s):{listed}"


@dataclass(frozen=True, slots=True)
class ReportedOrder:
    """The first answer to a report, as sent."""

    order_id: str
    answer: Mapping[str, Any]
    reported_at: datetime  # feed (market) time

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "answer": dict(self.answer),
            "reported_at": self.reported_at.isoformat(),
        }


def report_answer(order_id: str, reported_by: str, result: ExecutionDecision) -> dict[str, Any]:
    """The answer to a report, kept for its duplicates: the check's answer with the
    decision's id in place of its full record (the audit trail has that), so that the
    answers kept stay small (each is written with the state, at every report)."""
    return plain(
        {
            "recorded": True,
            "order_id": order_id,
            "reported_by": reported_by,
            "approved": result.approved,
            "outcome": result.outcome,
            "requested_size": result.requested_size,
            "approved_size": result.approved_size,
            "blocking": list(result.blocking),
            "override_applied": result.override_applied,
            "override_reason": result.override_reason,
            "reasons": list(result.reasons),
            "decision_id": result.decision.id,
            "policy_version": result.decision.policy_version,
        }
    )


def plain(answer: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as JSON gives it back (Decimal and datetime as text): what is kept is
    what was sent, byte for byte."""
    return dict(json.loads(json.dumps(answer, default=_text)))


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class OrderAnswers:
    """The answers to the last `kept` reports, by order id, oldest first. Thread-safe
    (a report adds while a cycle's save reads)."""

    def __init__(self, kept: int = ORDERS_KEPT) -> None:
        self.kept = kept
        self._answers: OrderedDict[str, ReportedOrder] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, order_id: str) -> ReportedOrder | None:
        with self._lock:
            return self._answers.get(order_id)

    def add(self, reported: ReportedOrder) -> None:
        with self._lock:
            self._answers[reported.order_id] = reported
            while len(self._answers) > self.kept:
                self._answers.popitem(last=False)

    def to_list(self) -> list[dict[str, Any]]:
        """Oldest first (a list: the state file sorts object keys)."""
        with self._lock:
            kept = list(self._answers.values())
        return [reported.to_dict() for reported in kept]

    @classmethod
    def from_list(cls, data: Sequence[Any], kept: int = ORDERS_KEPT) -> OrderAnswers:
        """Read back (a --state file's "orders"); raises KeyError, TypeError, ValueError."""
        answers = cls(kept)
        for entry in data:
            at = datetime.fromisoformat(str(entry["reported_at"]))
            if at.tzinfo is None:
                raise ValueError(f"reported_at {entry['reported_at']!r} has no timezone")
            answers.add(ReportedOrder(str(entry["order_id"]), dict(entry["answer"]), at))
        return answers
