"""What the HTTP tests share: one real request over loopback, clean structlog, a fake
view, --auth files with known tokens, raw sockets, and the OpenAPI schemas."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog

from bastion.service.auth import Authenticator, Principal, Role, hash_token
from bastion.service.http import HttpServer, Limits
from bastion.service.metrics import ServiceMetrics

LOADED_AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
OPENAPI = Path(__file__).resolve().parents[2] / "service" / "openapi.json"
# One principal per role; the token of each is "token-<name>" (tests only).
PRINCIPALS = {"vera": Role.VIEWER, "tom": Role.TRADER, "olga": Role.OPERATOR, "oscar": Role.OFFICER}
TOKENS = {name: f"token-{name}" for name in PRINCIPALS}
ORDER = {"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}
# A valid body of each POST endpoint, and its request schema in service/openapi.json.
REQUEST_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "/api/v1/check": ("CheckRequest", ORDER),  # or an order list
    "/api/v1/orders": ("ReportRequest", {"order_id": "A-1", **ORDER}),
    "/api/v1/breakers/reset": (
        "ResetRequest",
        {"breaker": "daily_loss_usd", "subject": "account:gen-01", "reason": "loss booked"},
    ),
    "/-/reload": ("ReloadRequest", {"accept_removal": []}),
    "/api/v1/locks/release": (
        "LockReleaseRequest",
        {"lock": "default-protection/cooldown/gen-01/symbol=QQQ", "reason": "reviewed"},
    ),
    "/-/promote": ("PromoteRequest", {"accept_removal": []}),
    "/-/rollback": ("RollbackRequest", {"version": "sha256:0123abcd"}),
    "/api/v1/escalations": (
        "EscalationRequest",
        {"position_id": "SPY-101", "level": "recovery", "reason": "earnings", "ttl_s": 3600},
    ),
    "/api/v1/silences": (
        "SilenceRequest",
        {"matchers": {"breaker": "stale_data"}, "reason": "feed maintenance", "duration_s": 3600},
    ),
}
CHECK_ANSWER = {
    "approved": True,
    "outcome": "approved",
    "requested_size": "10",
    "approved_size": "10",
    "blocking": [],
    "override_applied": False,
    "override_reason": None,
    "reasons": ["within every limit"],
    "decision": {"id": "dec_1"},
    "policy_version": "sha256:set",
}


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    *,
    body: bytes | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    context: Any = None,
) -> Reply:
    """One request with urllib; an HTTP error status is a Reply too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """structlog's defaults (no level filter), whatever another test configured."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@dataclass
class FakeView:
    """A ServiceView whose answers each test sets; it records what reached it."""

    is_live: bool = True
    readiness: tuple[bool, list[str]] = (True, [])
    reload_result: tuple[int, dict[str, Any]] = (200, {"version": "sha256:new", "changed": []})
    check_result: tuple[int, dict[str, Any]] = (200, CHECK_ANSWER)
    report_result: tuple[int, dict[str, Any]] = (
        200,
        {"recorded": True, "order_id": "A-1", "reported_by": "tom", **CHECK_ANSWER},
    )
    reset_result: tuple[int, dict[str, Any]] = (
        202,
        {
            "queued": True,
            "breaker": "daily_loss_usd",
            "subject": "account:gen-01",
            "by": "olga",
            "reason": "loss booked",
            "requested_at": LOADED_AT.isoformat(),
            "applies_to": ["default-breakers:daily_loss_usd@account:gen-01"],
        },
    )
    release_result: tuple[int, dict[str, Any]] = (
        200,
        {"released": True, "lock": {"id": "default-protection/cooldown/gen-01/symbol=QQQ"}},
    )
    fail_with: Exception | None = None
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    status_payload: dict[str, Any] = field(
        default_factory=lambda: {
            "trading_states": {"gen-01": "HALTED"},
            "escalations": {"SPY-123": "recovery"},
            "breakers_not_armed": {"default-breakers:daily_loss_usd@account:gen-01": "tripped"},
            "pending_resets": [],
            "last_evaluation": {
                "at": LOADED_AT,
                "policy_version": "sha256:set",
                "polling_interval_s": Decimal("30"),
            },
        }
    )

    def live(self) -> bool:
        return self.is_live

    def ready(self) -> tuple[bool, list[str]]:
        return self.readiness

    def policies(self) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        return {
            "version": "sha256:set",
            "loaded_at": LOADED_AT.isoformat(),
            "policies": [
                {
                    "kind": "EscalationPolicy",
                    "name": "default-escalation",
                    "version": "sha256:esc",
                    "mode": "enforce",
                    "source": "policies/escalation.yaml",
                }
            ],
        }

    def status(self) -> dict[str, Any]:
        return self.status_payload

    def overview(self, principal: Principal) -> dict[str, Any]:
        return {"you": {"name": principal.name, "role": principal.role.label}}

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        return 200, {
            "cycle": 1,
            "at": LOADED_AT.isoformat(),
            "policy_version": "sha256:set",
            "fresh_data": True,
            "snapshot": {"as_of": LOADED_AT.isoformat()},
        }

    def reload(
        self, principal: Principal, accept_removal: Sequence[str]
    ) -> tuple[int, dict[str, Any]]:
        self.calls.append(("reload", principal.name, list(accept_removal)))
        structlog.get_logger().info("fake_reload_ran")  # carries the bound request id
        return self.reload_result

    def check(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("check", principal.name, body))
        return self.check_result

    def report_order(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("report_order", principal.name, body))
        return self.report_result

    def reset_breaker(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("reset_breaker", principal.name, body))
        return self.reset_result

    def release_lock(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("release_lock", principal.name, body))
        return self.release_result

    def escalate(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("escalate", principal.name, body))
        return 200, {"escalated": True, "position_id": "SPY-101", "level": "recovery"}

    def clear_escalation(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("clear_escalation", principal.name, body))
        return 200, {"cleared": True, "position_id": "SPY-101"}

    def promote(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("promote", principal.name, body))
        return 200, {"promoted": True, "version": "sha256:new", "previous_version": "sha256:set"}

    def rollback(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("rollback", principal.name, body))
        return 200, {"rolled_back": True, "version": "sha256:old", "previous_version": "sha256:set"}

    def silences(self) -> dict[str, Any]:
        return {"silences": []}

    def silence(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("silence", principal.name, body))
        return 200, {"created": True, "silence": {"id": "sil_1"}}

    def expire_silence(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
        self.calls.append(("expire_silence", principal.name, body))
        return 200, {"expired": True, "silence": {"id": "sil_1"}}

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None:
        refusal = {"principal": principal, "method": method, "path": path, "status": status}
        self.refusals.append({**refusal, "reason": reason})


def write_auth_file(path: Path, principals: dict[str, Role] | None = None) -> Path:
    """An --auth file with one line per principal; each one's token is TOKENS[name]."""
    lines = ["principals:"]
    for name, role in (principals or PRINCIPALS).items():
        digest = hash_token(TOKENS.get(name, f"token-{name}"))
        lines.append(f"  - {{name: {name}, role: {role.label}, token_sha256: {digest}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serving(
    view: Any,
    metrics: ServiceMetrics | None = None,
    *,
    auth_file: Path | None = None,
    auth_metrics: bool = False,
    limits: Limits | None = None,
    **options: Any,
) -> Iterator[HttpServer]:
    """An HttpServer on a free loopback port for the block."""
    authenticator = Authenticator(auth_file) if auth_file is not None else None
    http = HttpServer(
        "127.0.0.1",
        0,
        view,
        metrics or ServiceMetrics(),
        authenticator=authenticator,
        auth_metrics=auth_metrics,
        limits=limits,
        **options,
    )
    http.start()
    try:
        yield http
    finally:
        http.stop()


def raw_exchange(port: int, data: bytes, *, timeout_s: float = 5.0) -> tuple[bytes, float]:
    """Send `data` on a new connection, read until the server closes it: (what came
    back, seconds until then)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received, time.monotonic() - started


@cache
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def validate_schema(name: str, instance: Any) -> None:
    """Raise jsonschema.ValidationError unless `instance` is a components.schemas[name]."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi()["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)
