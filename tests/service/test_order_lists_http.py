"""Order lists through the service: POST /api/v1/check and /api/v1/orders with a list
body (service/order_lists.py), audited leg by leg and as a list; the OpenAPI document's
list schemas in step with the request schema."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bastion.adapters.sources import ManualClock
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.audit import AuditTrail, read_records
from bastion.service.auditor import Auditor
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES, ROOT
from tests.service import openapi_lists
from tests.service.http_support import call, default_logging, validate_schema  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
TOM = Principal("tom", Role.TRADER)
BRACKET_EXAMPLE = ROOT / "examples" / "check" / "bracket"


def _leg(role: str, action: str, **fields: Any) -> dict[str, Any]:
    return {"role": role, "account_id": "gen-01", "symbol": "ETH-USD", "action": action, **fields}


BRACKET = {
    "id": "B-7",
    "contingency": "bracket",
    "orders": [
        _leg("entry", "open", target_size="0.1"),
        _leg("stop_loss", "close"),
        _leg("take_profit", "close"),
    ],
}


def _service(tmp_path: Path, trail: AuditTrail) -> Service:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), state=State())
    service.auditor = Auditor(trail)
    service.cycle()
    return service


def test_check_when_bracket_body_then_200_one_decision_per_leg_and_audited(
    tmp_path: Path,
) -> None:
    """A bracket checked over the service: the list's answer with three legs, nothing
    remembered, each leg's record and the list's record in the audit trail."""
    with AuditTrail.open(tmp_path / "audit", clock=lambda: START) as trail:
        service = _service(tmp_path, trail)
        status, answer = service.check(json.dumps(BRACKET).encode(), TOM)
    assert status == 200, answer
    validate_schema("ListAnswer", json.loads(json.dumps(answer)))
    assert (answer["order_list"], answer["approved"]) == ("B-7", True)
    assert [leg["role"] for leg in answer["legs"]] == ["entry", "stop_loss", "take_profit"]
    assert not service.authority.state.authority  # a question
    kinds = [record.kind for record in read_records(tmp_path / "audit")]
    assert kinds.count("order_checked") == 3 and kinds[-1] == "order_list_checked"


def test_check_when_list_invalid_then_422_naming_the_leg_field(tmp_path: Path) -> None:
    """A leg that breaks the request schema is named by its path in the list."""
    broken = {**BRACKET, "orders": [*BRACKET["orders"][:2], _leg("take_profit", "sell")]}
    with AuditTrail.open(tmp_path / "audit", clock=lambda: START) as trail:
        service = _service(tmp_path, trail)
        status, answer = service.check(json.dumps(broken).encode(), TOM)
    assert status == 422
    assert "orders[2].action" in [error["path"] for error in answer["errors"]]


def test_report_when_bracket_sent_then_entry_pending_and_duplicate_answers_first(
    tmp_path: Path,
) -> None:
    """A bracket reported sent: every leg remembered, only the entry adds pending
    exposure; the same list id again changes nothing (duplicate: true)."""
    with AuditTrail.open(tmp_path / "audit", clock=lambda: START) as trail:
        service = _service(tmp_path, trail)
        status, answer = service.report_order(json.dumps(BRACKET).encode(), TOM)
        again = service.report_order(json.dumps(BRACKET).encode(), TOM)
    assert (status, answer["recorded"], answer["order_id"]) == (200, True, "list:B-7")
    pending = list(service.authority.state.authority.pending.orders())
    assert [(order.symbol, str(order.units)) for order in pending] == [("ETH-USD", "0.1")]
    assert again[1]["duplicate"] is True
    kinds = [record.kind for record in read_records(tmp_path / "audit")]
    assert kinds.count("order_list_reported") == 1


def test_openapi_when_list_schemas_compared_then_in_step_with_the_request_schema() -> None:
    """service/openapi.json is what tests/service/openapi_lists.py writes: OrderRequest
    and OrderListLeg follow schemas/request.schema.json."""
    current = json.loads(openapi_lists.OPENAPI.read_text())
    assert openapi_lists.text(openapi_lists.updated(current)) == openapi_lists.OPENAPI.read_text()
    validate_schema("CheckRequest", BRACKET)


def test_check_over_http_when_bracket_example_then_200_list_answer(tmp_path: Path) -> None:
    """The bracket example over loopback HTTP: 200, the list's answer, each leg's size."""
    with AuditTrail.open(tmp_path / "audit", clock=lambda: START) as trail:
        service = _service(tmp_path, trail)
        service.last_snapshot = load_snapshot(BRACKET_EXAMPLE / "snapshot.json")
        http = HttpServer("127.0.0.1", 0, service, service.metrics)
        http.start()
        try:
            body = (BRACKET_EXAMPLE / "request.json").read_bytes()
            reply = call(http.url + "/api/v1/check", body=body, method="POST")
        finally:
            http.stop()
    assert reply.status == 200
    answer = reply.json()
    assert (answer["order_list"], answer["outcome"]) == ("bracket-0001", "downsized")
    assert [leg["approved_size"] for leg in answer["legs"]] == ["110", "50", "50"]
