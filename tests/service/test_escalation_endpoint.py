"""POST / DELETE /api/v1/escalations on the real service, over loopback HTTP: an
operator's manual escalation (audited, saved, applied by the next cycle, listed by the
status, kept across a restart), its clearing, and the refusals (401/403, `by`, 409,
422, 503 when the audit trail cannot be written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.service.audit import AuditTrail, AuditWriteFailed
from bastion.service.audit_read import read_records
from bastion.service.auditor import Auditor
from bastion.service.auth import Authenticator
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from bastion.service.state_store import StateStore
from tests.conftest import POLICIES
from tests.service.http_support import Reply, bearer, call, default_logging, write_auth_file  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
PATH = "/api/v1/escalations"
ESCALATE = {"position_id": "SPY-101", "level": "recovery", "reason": "earnings call", "ttl_s": 3600}


@dataclass
class Served:
    service: Service
    http: HttpServer
    audit: Path
    state: Path

    def send(self, method: str, body: dict[str, Any] | bytes, caller: str | None = None) -> Reply:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = bearer(caller) if caller else {}
        return call(self.http.url + PATH, body=data, method=method, headers=headers)

    def status(self, caller: str | None = None) -> Any:
        headers = bearer(caller) if caller else {}
        return call(self.http.url + "/api/v1/status", headers=headers).json()


def _service(tmp_path: Path) -> Service:
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    auditor = Auditor(AuditTrail(tmp_path / "audit", clock=feed.now, fsync=False))
    store = StateStore(tmp_path / "state.json")
    return Service(feed, reloader, ServiceMetrics(), auditor=auditor, store=store)


def _serve(tmp_path: Path, *, auth: bool) -> Iterator[Served]:
    service = _service(tmp_path)
    service.cycle()
    authenticator = Authenticator(write_auth_file(tmp_path / "auth.yaml")) if auth else None
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=authenticator)
    http.start()
    try:
        yield Served(service, http, tmp_path / "audit", tmp_path / "state.json")
    finally:
        http.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real service on the sim feed with the shipped policies, one cycle run; no
    --auth (every caller is local: `by` is required and recorded as sent)."""
    yield from _serve(tmp_path, auth=False)


@pytest.fixture
def served_auth(tmp_path: Path) -> Iterator[Served]:
    """The same, with --auth: one principal per role (tests.service.http_support)."""
    yield from _serve(tmp_path, auth=True)


def _records(served: Served, kind: str) -> list[Any]:
    return [record.data for record in read_records(served.audit, kinds=[kind])]


def test_escalate_when_operator_asks_then_audited_saved_listed_and_applied(
    served: Served,
) -> None:
    """200 escalated: audited as `escalation_set`, in the saved state, in the status; the
    next cycle holds the position at recovery, explains why and polls at its interval."""
    reply = served.send("POST", {**ESCALATE, "by": "alice"})
    assert reply.status == 200, reply.json()
    assert reply.json()["escalated"] is True and reply.json()["by"] == "alice"
    (record,) = _records(served, "escalation_set")
    assert record["level"] == "recovery" and record["reason"] == "earnings call"
    saved = StateStore(served.state).load()
    assert saved is not None
    assert saved.body["engine"]["manual_escalations"]["SPY-101"]["by"] == "alice"
    assert served.status()["manual_escalations"]["SPY-101"]["level"] == "recovery"
    cycle = served.service.cycle()
    assert served.status()["escalations"]["SPY-101"] == "recovery"
    (decision,) = [d for d in cycle.decisions if d.subject.id == "SPY-101"]
    assert "manual escalation by alice: earnings call, until " in decision.reasons[0]
    assert cycle.interval_s == 30


def test_clear_when_escalated_then_removed_audited_and_saved(served: Served) -> None:
    """DELETE clears the floor at once (audited `escalation_cleared`, saved); a second
    DELETE is 409 listing what is in force (none)."""
    assert served.send("POST", {**ESCALATE, "by": "alice"}).status == 200
    clear = {"position_id": "SPY-101", "by": "alice", "reason": "call over"}
    reply = served.send("DELETE", clear)
    assert reply.status == 200, reply.json()
    assert reply.json()["was"]["level"] == "recovery"
    assert served.status()["manual_escalations"] == {}
    (record,) = _records(served, "escalation_cleared")
    assert record["reason"] == "call over" and record["status"] == 200
    saved = StateStore(served.state).load()
    assert saved is not None and "manual_escalations" not in saved.body["engine"]
    again = served.send("DELETE", clear)
    assert again.status == 409 and again.json()["active"] == []


def test_escalate_when_position_unknown_then_409_listing_positions(served: Served) -> None:
    """409 lists the positions of the last snapshot; the refusal is audited."""
    reply = served.send("POST", {**ESCALATE, "position_id": "NOPE-1", "by": "alice"})
    assert reply.status == 409
    assert "SPY-101" in reply.json()["positions"]
    (record,) = _records(served, "escalation_set")
    assert record["result"] == "rejected" and record["status"] == 409
    assert served.status()["manual_escalations"] == {}


def test_escalate_when_level_unknown_then_422_listing_levels(served: Served) -> None:
    """A level the position's EscalationPolicy lacks is 422 naming the levels it has."""
    reply = served.send("POST", {**ESCALATE, "level": "panic", "by": "alice"})
    assert reply.status == 422
    assert reply.json()["levels"] == ["normal", "enhanced", "recovery", "preservation"]


@pytest.mark.parametrize("ttl", [0, -5, 1.5, "60", True])
def test_escalate_when_ttl_not_whole_positive_seconds_then_422(served: Served, ttl: Any) -> None:
    """ttl_s is whole seconds from 1 to a week, or left out."""
    reply = served.send("POST", {**ESCALATE, "ttl_s": ttl, "by": "alice"})
    assert reply.status == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["ttl_s"]


def test_escalate_when_audit_unwritable_then_503_and_nothing_changes(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audited before it takes effect: a trail that cannot be written is 503, no floor."""

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AuditWriteFailed("audit", "disk full")

    monkeypatch.setattr(AuditTrail, "append", fail)
    reply = served.send("POST", {**ESCALATE, "by": "alice"})
    assert reply.status == 503 and "audit trail" in reply.json()["error"]
    assert served.service.state.manual_escalations == {}
    saved = StateStore(served.state).load()
    assert saved is None or "manual_escalations" not in saved.body["engine"]


@pytest.mark.parametrize(
    ("caller", "status"), [(None, 401), ("vera", 403), ("tom", 403), ("olga", 200)]
)
def test_escalate_when_role_below_operator_then_refused(
    served_auth: Served, caller: str | None, status: int
) -> None:
    """No token 401; viewer and trader 403; an operator escalates, recorded as herself."""
    reply = served_auth.send("POST", ESCALATE, caller)
    assert reply.status == status
    if status == 200:
        assert reply.json()["by"] == "olga"
    floors = served_auth.status("vera")["manual_escalations"]
    assert ("SPY-101" in floors) == (status == 200)


def test_escalate_when_by_names_someone_else_then_422(served_auth: Served) -> None:
    """With --auth, `by` must be the caller: a `by` naming another is refused (422)."""
    reply = served_auth.send("POST", {**ESCALATE, "by": "alice"}, "olga")
    assert reply.status == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["by"]
    clear = {"position_id": "SPY-101", "by": "alice", "reason": "x"}
    assert served_auth.send("DELETE", clear, "olga").status == 422


def test_escalation_when_service_restarts_then_restored_from_state(
    served: Served, tmp_path: Path
) -> None:
    """The floor is in the --state file: a new service restored from it still holds it."""
    assert served.send("POST", {**ESCALATE, "by": "alice"}).status == 200
    saved = StateStore(served.state).load()
    assert saved is not None
    restarted = _service(tmp_path / "again")
    restarted.restore(saved.body)
    assert restarted.state.manual_escalations["SPY-101"].by == "alice"
    restarted.cycle()
    assert restarted.state.escalations["SPY-101"].level_name == "recovery"


def test_escalate_when_position_is_an_option_then_422_naming_the_roll_policy(
    served: Served,
) -> None:
    """An option is governed by its delta, not by escalation levels: refused, no floor."""
    reply = served.send("POST", {**ESCALATE, "position_id": "SPY-P-004", "by": "alice"})
    assert reply.status == 422 and "RollPolicy" in reply.json()["error"]
    assert reply.json()["levels"] == []
