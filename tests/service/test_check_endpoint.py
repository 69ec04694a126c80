"""POST /api/v1/check on the real service, over loopback HTTP: answers, refusals, memory."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service, state_path_payload
from tests.conftest import POLICIES, ROOT
from tests.service.http_support import Reply, call, default_logging  # noqa: F401

EXAMPLES = ROOT / "examples" / "check"
AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # every examples/check snapshot's as_of
MAX_BODY = 64 * 1024
# In the sim feed's own book (gen-01 holds no QQQ): within every limit at the start.
SIM_OPEN = {"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}


@dataclass
class Served:
    service: Service
    http: HttpServer
    wall: ManualClock
    policies: Path


def _service(policies: Path, wall: ManualClock, state: State | None = None) -> Service:
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    return Service(feed, reloader, ServiceMetrics(), state=state or State())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real service on the sim feed (market time at the examples' as_of, moved only by
    the test), its own copy of the policies, its HTTP server on a free loopback port. No
    cycle has run yet."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    wall = ManualClock(AS_OF)
    service = _service(policies, wall)
    http = HttpServer("127.0.0.1", 0, service, service.metrics)
    http.start()
    yield Served(service, http, wall, policies)
    http.stop()


def _on_example(service: Service, case: str) -> None:
    """Run one real cycle (the service is ready), then serve the example's snapshot as
    the latest: time stands at its as_of, as `bastion check` decides it."""
    service.cycle()
    service.last_snapshot = load_snapshot(EXAMPLES / case / "snapshot.json")


def _call(
    served: Served,
    body: bytes | None = None,
    *,
    method: str = "POST",
    path: str = "/api/v1/check",
    headers: dict[str, str] | None = None,
) -> Reply:
    return call(served.http.url + path, body=body, method=method, headers=headers)


def _example(served: Served, case: str, request: str = "request.json") -> Reply:
    return _call(served, (EXAMPLES / case / request).read_bytes())


def _order(served: Served, order: dict[str, Any]) -> Reply:
    return _call(served, json.dumps(order).encode())


def _checks(served: Served) -> dict[str, float]:
    """bastion_order_checks_total by outcome, and the latency histogram's count, as scraped."""
    text = _call(served, method="GET", path="/metrics").body.decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bastion_order_checks_total":
                found[sample.labels["outcome"]] = sample.value
            if sample.name == "bastion_order_check_seconds_count":
                found["latency_count"] = sample.value
    return found


def test_check_when_order_within_limits_then_200_approved(served: Served) -> None:
    """An open within every limit: 200, the decision as `bastion check` gives it, and the
    version of the policy set that decided."""
    _on_example(served.service, "approval")
    reply = _example(served, "approval")
    assert reply.status == 200
    answer = reply.json()
    assert (answer["approved"], answer["outcome"], answer["approved_size"]) == (
        True,
        "approved",
        "40",
    )
    assert answer["blocking"] == [] and answer["reasons"]
    assert answer["policy_version"] == served.service.reloader.current.version
    assert answer["decision"]["id"].startswith("dec_")
    assert reply.headers["X-Request-Id"]


def test_check_when_increase_breaks_asset_limit_then_200_downsized(served: Served) -> None:
    """An increase over max_per_asset_pct: 200, downsized from 150 to 110 units."""
    _on_example(served.service, "downsize")
    answer = _example(served, "downsize").json()
    assert (answer["approved"], answer["outcome"]) == (True, "downsized")
    assert (answer["requested_size"], answer["approved_size"]) == ("150", "110")


def test_check_when_kill_switch_active_then_200_denied(served: Served) -> None:
    """A denial is an answer, not an error: 200 with approved false and what blocks."""
    _on_example(served.service, "kill-switch")
    reply = _example(served, "kill-switch")
    assert reply.status == 200
    answer = reply.json()
    assert (answer["approved"], answer["outcome"], answer["approved_size"]) == (
        False,
        "denied",
        None,
    )
    assert answer["blocking"] == ["limit.kill_switch.drawdown"]
    assert _example(served, "kill-switch", "close-request.json").json()["approved"] is True


def test_check_when_breaker_halts_account_then_order_denied_by_trading_state(
    served: Served,
) -> None:
    """The evaluator's state is adopted after every cycle: once the sim's sell-off trips
    rev-01's daily loss breaker (HALTED), an order for rev-01 is denied by it."""
    service = served.service
    order = {
        "account_id": "rev-01",
        "symbol": "BTC-USD",
        "action": "decrease",
        "target_size": "0.4",
    }
    service.cycle()
    before = _order(served, order).json()
    assert "limit.trading_state" not in before["blocking"]
    for _ in range(60):  # one cycle per market minute, until the breaker trips (~12)
        if service.state.trading_state("rev-01") == "HALTED":
            break
        served.wall.advance(1)
        service.cycle()
    assert service.state.trading_state("rev-01") == "HALTED"
    after = _order(served, order)
    assert after.status == 200
    assert after.json()["approved"] is False
    assert "limit.trading_state" in after.json()["blocking"]


def test_check_when_body_not_json_then_422_naming_the_place(served: Served) -> None:
    """Malformed JSON is refused with 422 and where it broke, never a 500 or a decision."""
    _on_example(served.service, "approval")
    reply = _call(served, b'{"symbol": ')
    assert reply.status == 422
    answer = reply.json()
    assert answer["approved"] is False
    assert answer["error"] == "body:1:12: invalid JSON: Expecting value"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "body: empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "a request is a JSON object"),
    ],
)
def test_check_when_body_unreadable_then_422(served: Served, body: bytes, named: str) -> None:
    """An empty, non-UTF-8 or non-object body: 422 saying which."""
    _on_example(served.service, "approval")
    reply = _call(served, body)
    assert reply.status == 422
    assert named in reply.json()["error"]


def test_check_when_field_invalid_then_422_naming_the_field(served: Served) -> None:
    """An invalid field: 422 with the validator's text and the field's path."""
    _on_example(served.service, "approval")
    order = json.loads((EXAMPLES / "approval" / "request.json").read_text())
    reply = _order(served, {**order, "target_size": "abc"})
    assert reply.status == 422
    answer = reply.json()
    assert answer["approved"] is False
    assert "target_size: must be a number ≥ 0" in answer["error"]
    assert [e["path"] for e in answer["errors"]] == ["target_size"]


def test_check_when_account_unknown_then_422_naming_account_id(served: Served) -> None:
    """An account the snapshot does not hold is a caller's mistake (as for `bastion
    check`, exit 2), not a denial."""
    _on_example(served.service, "approval")
    order = json.loads((EXAMPLES / "approval" / "request.json").read_text())
    reply = _order(served, {**order, "account_id": "gen-02"})
    assert reply.status == 422
    assert reply.json()["errors"] == [
        {"path": "account_id", "message": "'gen-02' is not in the snapshot (accounts: gen-01)"}
    ]


def test_check_when_body_exactly_64_kib_then_read_and_answered(served: Served) -> None:
    """The cap's edge: a body of exactly 64 KiB (the request padded with spaces) is read
    and answered; any Content-Type is accepted."""
    _on_example(served.service, "approval")
    body = (EXAMPLES / "approval" / "request.json").read_bytes()
    reply = _call(served, body.ljust(MAX_BODY, b" "), headers={"Content-Type": "text/plain"})
    assert (reply.status, reply.json()["outcome"]) == (200, "approved")


def test_check_when_body_over_64_kib_then_413(served: Served) -> None:
    """One byte over the cap: 413 in JSON with approved false; nothing is decided."""
    _on_example(served.service, "approval")
    body = (EXAMPLES / "approval" / "request.json").read_bytes()
    reply = _call(served, body.ljust(MAX_BODY + 1, b" "))
    assert reply.status == 413
    assert reply.json()["approved"] is False
    assert served.service.authority.statistics.processed == 0


def test_check_when_no_snapshot_yet_then_503_never_approved(served: Served) -> None:
    """Before the first cycle there is nothing to decide against: 503, approved false."""
    reply = _example(served, "approval")
    assert reply.status == 503
    answer = reply.json()
    assert answer["approved"] is False
    assert "no evaluation yet" in answer["reasons"]


def test_check_when_data_stale_then_503_with_the_age(served: Served) -> None:
    """Data older than the stale_data breaker's threshold (600 s): 503, like /readyz."""
    _on_example(served.service, "approval")
    assert _example(served, "approval").status == 200
    served.wall.advance(11)  # 11 market minutes at 60x, and no cycle since
    reply = _example(served, "approval")
    assert reply.status == 503
    assert reply.json()["approved"] is False
    assert any("stale" in reason for reason in reply.json()["reasons"])


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_check_when_method_not_post_then_405_allow_post(served: Served, method: str) -> None:
    """Only POST asks; anything else is 405 with Allow: POST."""
    reply = _call(served, method=method)
    assert (reply.status, reply.headers["Allow"]) == (405, "POST")


def test_metrics_when_checks_answered_then_counted_by_outcome(served: Served) -> None:
    """/metrics counts checks by outcome (every series there from the start, at 0) and
    times each one."""
    assert _checks(served) == {
        "approved": 0,
        "downsized": 0,
        "denied": 0,
        "error": 0,
        "latency_count": 0,
    }
    _example(served, "approval")  # no snapshot yet: error
    _on_example(served.service, "approval")
    _example(served, "approval")
    _call(served, b"{")
    _on_example(served.service, "downsize")
    _example(served, "downsize")
    _on_example(served.service, "kill-switch")
    _example(served, "kill-switch")
    assert _checks(served) == {
        "approved": 1,
        "downsized": 1,
        "denied": 1,
        "error": 2,
        "latency_count": 5,
    }


def test_check_when_answered_then_one_event_with_request_id_and_never_the_body(
    served: Served,
) -> None:
    """One `order_checked` event per check: outcome, blocking, symbol, action, account,
    the request id bound by the handler; the body itself is not logged."""
    _on_example(served.service, "kill-switch")
    order = json.loads((EXAMPLES / "kill-switch" / "request.json").read_text())
    body = json.dumps({**order, "reason": "hunter2"}).encode()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        _call(served, body, headers={"X-Request-Id": "order-42"})
        events = [entry for entry in entries if entry["event"] == "order_checked"]
    assert len(events) == 1
    event = events[0]
    assert (event["outcome"], event["blocking"], event["status"]) == (
        "denied",
        ["limit.kill_switch.drawdown"],
        200,
    )
    assert (event["symbol"], event["action"], event["account"]) == ("MSFT", "open", "gen-01")
    assert event["request_id"] == "order-42"
    assert "hunter2" not in repr(entries)


def _reported(service: Service, case: str, order_id: str) -> dict[str, Any]:
    """Report the example's request as sent (POST /api/v1/orders' view method)."""
    body = json.loads((EXAMPLES / case / "request.json").read_bytes())
    status, answer = service.report_order(json.dumps({**body, "order_id": order_id}).encode())
    assert status == 200, answer
    return answer


def test_check_when_override_used_then_next_request_cools_down(served: Served) -> None:
    """The authority's memory outlives a request and a cycle: the regime override of a
    close reported sent is cooling down for the next check."""
    _on_example(served.service, "regime-override")
    first = _example(served, "regime-override").json()
    assert (first["approved"], first["override_applied"]) == (True, True)
    assert _reported(served.service, "regime-override", "ord-1")["override_applied"] is True
    _on_example(served.service, "regime-override")  # a cycle adopts the evaluator's state
    second = _example(served, "regime-override").json()
    assert (second["approved"], second["override_applied"]) == (False, False)
    assert {"grace_period", "holding_period"} <= set(second["blocking"])


def test_state_file_when_service_restarts_then_authority_memory_kept(
    served: Served, tmp_path: Path
) -> None:
    """The --state payload carries the authority's memory, and a service started from it
    remembers: the override is still cooling down after a restart."""
    _on_example(served.service, "regime-override")
    assert _reported(served.service, "regime-override", "ord-1")["override_applied"] is True
    saved = json.loads(json.dumps(state_path_payload(served.service)))
    assert saved["engine"]["authority"]["overrides"] == {"gen-01/NVDA": AS_OF.isoformat()}
    assert saved["engine"]["trading_states"]  # the evaluator's part is kept too

    restarted = _service(served.policies, ManualClock(AS_OF), State.from_dict(saved["engine"]))
    _on_example(restarted, "regime-override")
    status, answer = restarted.check((EXAMPLES / "regime-override" / "request.json").read_bytes())
    assert (status, answer["approved"], answer["override_applied"]) == (200, False, False)


def test_check_when_policies_reloaded_then_new_set_decides(served: Served) -> None:
    """A reload is used by the next check: a looser max_per_asset_pct approves in full
    what was downsized, and the answer names the new version."""
    _on_example(served.service, "downsize")
    before = _example(served, "downsize").json()
    assert before["approved_size"] == "110"
    limits = served.policies / "limits.yaml"
    limits.write_text(limits.read_text().replace("max_per_asset_pct: 5", "max_per_asset_pct: 8"))
    reloaded = _call(served, method="POST", path="/-/reload")
    assert reloaded.status == 200
    after = _example(served, "downsize").json()
    assert (after["outcome"], after["approved_size"]) == ("approved", "150")
    assert after["policy_version"] == reloaded.json()["version"] != before["policy_version"]


def test_check_when_requests_race_cycles_then_no_memory_lost(served: Served) -> None:
    """Reports on several threads while cycles adopt the evaluator's state: every order
    reported sent is remembered (the submit rate counts each one once)."""
    service = served.service
    service.cycle()
    threads, per_thread = 4, 10  # 40 approvals: within the 100/1s submit rate
    replies: list[tuple[int, dict[str, Any]]] = []

    def send() -> None:
        for _ in range(per_thread):
            order_id = f"{threading.get_ident()}-{len(replies)}-{_}"
            # 0.1 unit each, as new orders: 40 pending stay inside every exposure limit
            new_order = {**SIM_OPEN, "current_size": 0, "target_size": "0.1"}
            body = json.dumps({**new_order, "order_id": order_id}).encode()
            replies.append(service.report_order(body))

    senders = [threading.Thread(target=send) for _ in range(threads)]
    for sender in senders:
        sender.start()
    while any(sender.is_alive() for sender in senders):
        service.cycle()
    for sender in senders:
        sender.join()
    assert [status for status, _ in replies] == [200] * threads * per_thread
    assert all(answer["approved"] for _, answer in replies)
    assert len(service.authority.state.authority.submits["gen-01"]) == threads * per_thread
    assert service.authority.statistics.approved == threads * per_thread
