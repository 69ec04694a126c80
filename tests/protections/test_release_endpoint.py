"""POST /api/v1/locks/release and GET /api/v1/status on the real service, over loopback
HTTP: an officer's release (audited, saved, at once), refusals (409, 422, 403 below the
officer role), and the order check that a lock denies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.engine.authority.history.lock import HistoryLock
from bastion.service.audit import AuditTrail
from bastion.service.audit_read import read_records
from bastion.service.auditor import Auditor
from bastion.service.auth import Authenticator
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from bastion.service.state_store import StateSaveFailed, StateStore
from tests.conftest import ROOT
from tests.service.http_support import Reply, bearer, call, default_logging, write_auth_file  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
POLICIES = ROOT / "examples" / "protections" / "policies"


@dataclass
class Served:
    service: Service
    http: HttpServer
    audit: Path
    state: Path
    lock: HistoryLock

    def post(self, body: dict[str, Any] | bytes, caller: str | None = None) -> Reply:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = bearer(caller) if caller else {}
        url = self.http.url + "/api/v1/locks/release"
        return call(url, body=data, method="POST", headers=headers)

    def status(self, caller: str | None = None) -> Any:
        headers = bearer(caller) if caller else {}
        return call(self.http.url + "/api/v1/status", headers=headers).json()


def _serve(tmp_path: Path, *, auth: bool) -> Iterator[Served]:
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    audit = tmp_path / "audit"
    auditor = Auditor(AuditTrail(audit, clock=feed.now, fsync=False))
    store = StateStore(tmp_path / "state.json")
    service = Service(feed, reloader, ServiceMetrics(), auditor=auditor, store=store)
    service.cycle()
    now = feed.now()
    account = service.last_snapshot.accounts[0].id if service.last_snapshot else "gen-01"
    lock = HistoryLock(
        policy="default-protection",
        protection="stoploss-guard",
        method="stoploss_guard",
        account_id=account,
        scope="account",
        key="",
        side="",
        until=now + timedelta(minutes=30),
        reason="3 stop-loss exit(s) with profit < 0 % in the last 3600 s (locks at 3)",
        trade_ids=("T-1", "T-2", "T-3"),
        created_at=now,
    )
    service.state = replace(service.state, locks={lock.id: lock})
    service.authority.adopt(service.state)
    authenticator = Authenticator(write_auth_file(tmp_path / "auth.yaml")) if auth else None
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=authenticator)
    http.start()
    try:
        yield Served(service, http, audit, tmp_path / "state.json", lock)
    finally:
        http.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real service on the sim feed with the example history policies, one cycle run,
    one account lock held; no --auth (every caller is the local officer)."""
    yield from _serve(tmp_path, auth=False)


@pytest.fixture
def served_auth(tmp_path: Path) -> Iterator[Served]:
    """The same, with --auth: one principal per role (tests.service.http_support)."""
    yield from _serve(tmp_path, auth=True)


def _records(served: Served, kind: str) -> list[Any]:
    return [record.data for record in read_records(served.audit, kinds=[kind])]


def test_status_when_lock_held_then_listed_with_its_trades(served: Served) -> None:
    """GET /api/v1/status lists the locks blocking now, each with its id and trades."""
    (shown,) = served.status()["locks"]
    assert shown["id"] == served.lock.id
    assert shown["trade_ids"] == ["T-1", "T-2", "T-3"]


def test_release_when_officer_names_active_lock_then_released_audited_and_saved(
    served: Served,
) -> None:
    """200 released: gone from status at once, kept released in the saved state file with
    who and why, and written to the audit trail as `lock_released`."""
    reply = served.post({"lock": served.lock.id, "by": "alice", "reason": "stops reviewed"})
    assert reply.status == 200, reply.json()
    assert reply.json()["lock"]["released_by"] == "alice"
    assert served.status()["locks"] == []
    saved = StateStore(served.state).load()
    assert saved is not None
    kept = saved.body["engine"]["locks"][served.lock.id]
    assert kept["release_reason"] == "stops reviewed"
    (record,) = _records(served, "lock_released")
    assert record["lock"] == served.lock.id and record["by"] == "alice"
    assert record["trade_ids"] == ["T-1", "T-2", "T-3"]


def test_release_when_no_such_lock_then_409_listing_active_and_audited(served: Served) -> None:
    """409 names the active locks; the refusal is in the audit trail; the lock holds."""
    reply = served.post({"lock": "nope", "by": "alice", "reason": "why"})
    assert reply.status == 409
    assert reply.json()["active"] == [served.lock.id]
    assert reply.json()["released"] is False
    (record,) = _records(served, "lock_release_refused")
    assert record["status"] == 409 and record["lock"] == "nope"
    assert [lock["id"] for lock in served.status()["locks"]] == [served.lock.id]


def test_release_when_body_lacks_reason_then_422_naming_the_field(served: Served) -> None:
    """422 names every field at fault; nothing is released."""
    reply = served.post({"lock": served.lock.id, "by": "alice"})
    assert reply.status == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["reason"]
    assert len(served.status()["locks"]) == 1


@pytest.mark.parametrize(("caller", "status"), [("olga", 403), ("oscar", 200)])
def test_release_when_role_below_officer_then_403_else_released(
    served_auth: Served, caller: str, status: int
) -> None:
    """Releasing removes a protection: an operator is refused (403), an officer releases
    (the record names the token's principal; `by` may be left out)."""
    reply = served_auth.post({"lock": served_auth.lock.id, "reason": "reviewed"}, caller)
    assert reply.status == status
    locks = served_auth.status("oscar")["locks"]
    assert (locks == []) == (status == 200)
    if status == 200:
        assert reply.json()["lock"]["released_by"] == "oscar"


def test_check_when_account_locked_then_denied_until_released(served: Served) -> None:
    """POST /api/v1/check: an open in the locked account is denied naming the protection,
    its trades and its end; after the release the lock no longer blocks it."""
    order = {"account_id": served.lock.account_id, "symbol": "QQQ", "action": "open"}
    url = served.http.url + "/api/v1/check"
    before = call(url, body=json.dumps({**order, "target_size": 1}).encode(), method="POST")
    assert before.status == 200 and "history.stoploss-guard" in before.json()["blocking"]
    (reason,) = [r for r in before.json()["reasons"] if "stoploss-guard" in r]
    assert "T-1, T-2, T-3" in reason and served.lock.until.isoformat() in reason
    assert served.post({"lock": served.lock.id, "by": "alice", "reason": "ok"}).status == 200
    after = call(url, body=json.dumps({**order, "target_size": 1}).encode(), method="POST")
    assert "history.stoploss-guard" not in after.json()["blocking"]


def test_release_when_state_cannot_be_saved_then_503_and_lock_holds(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a release that cannot be saved is undone (503); the lock still blocks."""

    def fail(_store: object, _body: object) -> None:
        raise StateSaveFailed("disk full")

    monkeypatch.setattr(StateStore, "save", fail)
    reply = served.post({"lock": served.lock.id, "by": "alice", "reason": "ok"})
    assert reply.status == 503 and "cannot be saved" in reply.json()["error"]
    assert [lock["id"] for lock in served.status()["locks"]] == [served.lock.id]
    assert served.service.authority.state.locks[served.lock.id].active(served.lock.created_at)
