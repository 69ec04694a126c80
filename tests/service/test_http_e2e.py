"""The real service on the sim feed behind `--auth`, over loopback HTTP: tokens decide,
the records name the token's principal, and bad inputs reach nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.service.auth import Authenticator
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES
from tests.service.http_support import (  # noqa: F401
    Reply,
    bearer,
    call,
    default_logging,
    validate_schema,
    write_auth_file,
)

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ORDER = {"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}


@dataclass
class Served:
    service: Service
    http: HttpServer
    wall: ManualClock

    def post(self, path: str, body: Any, caller: str | None) -> Reply:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = bearer(caller) if caller else {}
        return call(self.http.url + path, method="POST", body=data, headers=headers)

    def get(self, path: str, caller: str | None) -> Reply:
        return call(self.http.url + path, headers=bearer(caller) if caller else {})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The service (shipped policies, sim feed, market time moved by the test) with an
    --auth file of one principal per role; one cycle has run."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    service.cycle()
    auth = Authenticator(write_auth_file(tmp_path / "principals.yaml"))
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=auth)
    http.start()
    yield Served(service, http, wall)
    http.stop()


def test_check_when_trader_token_then_decided_else_refused(served: Served) -> None:
    """A trader's check is decided (200, a CheckAnswer); a viewer's is 403 and no token
    401, both `approved: false`, and neither reaches the decision authority."""
    reply = served.post("/api/v1/check", ORDER, "tom")
    assert reply.status == 200, reply.body
    validate_schema("CheckAnswer", reply.json())
    processed = served.service.authority.statistics.processed
    for caller, status in (("vera", 403), (None, 401)):
        refused = served.post("/api/v1/check", ORDER, caller)
        assert (refused.status, refused.json()["approved"]) == (status, False)
    assert served.service.authority.statistics.processed == processed


def test_reset_when_operator_token_then_recorded_by_the_tokens_principal(served: Served) -> None:
    """A reset sent without `by` by olga's token is queued as olga's; one naming someone
    else is refused (422) and nothing is queued."""
    for _ in range(90):  # the sim's sell-off trips breakers within minutes
        served.wall.advance(1)
        served.service.cycle()
        if served.service.breakers_not_armed():
            break
    key = next(iter(served.service.breakers_not_armed()))
    breaker, _, subject = key.partition(":")[2].partition("@")
    body = {"breaker": breaker, "subject": subject, "reason": "loss booked"}
    impersonated = served.post("/api/v1/breakers/reset", {**body, "by": "alice"}, "olga")
    assert impersonated.status == 422
    assert served.service.pending_resets() == []
    reply = served.post("/api/v1/breakers/reset", body, "olga")
    assert reply.status == 202, reply.body
    validate_schema("ResetQueued", reply.json())
    assert reply.json()["by"] == "olga"
    status = served.get("/api/v1/status", "vera").json()
    validate_schema("Status", status)
    assert [p["by"] for p in status["pending_resets"]] == ["olga"]


@pytest.mark.parametrize(
    "value", ["1e999999", "NaN", "123456789012345678901234567890", '"eve\\ud800"']
)
def test_check_when_value_out_of_bounds_then_422_and_nothing_decided(
    served: Served, value: str
) -> None:
    """Bad numbers and text are refused before the service parses anything."""
    body = json.dumps({k: v for k, v in ORDER.items() if k != "target_size"})[:-1]
    reply = served.post("/api/v1/check", f'{body}, "target_size": {value}}}'.encode(), "tom")
    assert reply.status == 422
    assert reply.json()["approved"] is False
    assert served.service.authority.statistics.processed == 0
