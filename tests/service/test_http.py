"""HttpServer: every route over real loopback HTTP, against a fake view."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from structlog.typing import EventDict

from bastion.engine.state import State
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import Reply, call, default_logging  # noqa: F401

LOADED_AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@dataclass
class FakeView:
    """A ServiceView whose answers each test sets."""

    is_live: bool = True
    readiness: tuple[bool, list[str]] = (True, [])
    reload_result: tuple[bool, dict[str, Any]] = (True, {"version": "sha256:new"})
    fail_with: Exception | None = None
    reloads: int = 0
    status_payload: dict[str, Any] = field(
        default_factory=lambda: {
            "trading_states": {"gen-01": "HALTED"},
            "escalations": {"SPY-123": "recovery"},
            "breakers_not_armed": {"default-breakers:daily_loss_usd@account:gen-01": "tripped"},
            "last_evaluation": {"at": LOADED_AT, "polling_interval_s": Decimal("30")},
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

    def reload(self) -> tuple[bool, dict[str, Any]]:
        self.reloads += 1
        structlog.get_logger().info("fake_reload_ran")  # carries the bound request id
        return self.reload_result

    def status(self) -> dict[str, Any]:
        return self.status_payload


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[HttpServer, FakeView, ServiceMetrics]]:
    """One server for the module: stop() waits up to a poll interval, once is enough."""
    view, metrics = FakeView(), ServiceMetrics()
    http = HttpServer("127.0.0.1", 0, view, metrics)
    http.start()
    yield http, view, metrics
    http.stop()


@pytest.fixture
def view(running: tuple[HttpServer, FakeView, ServiceMetrics]) -> FakeView:
    """The running server's view, back to its defaults for each test."""
    served = running[1]
    vars(served).update(vars(FakeView()))
    return served


@pytest.fixture
def metrics(running: tuple[HttpServer, FakeView, ServiceMetrics]) -> ServiceMetrics:
    return running[2]


@pytest.fixture
def server(running: tuple[HttpServer, FakeView, ServiceMetrics], view: FakeView) -> HttpServer:
    return running[0]


def _call(
    server: HttpServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    return call(server.url + path, method=method, headers=headers)


def _logged(entries: list[EventDict], event: str) -> EventDict:
    """The one captured `event` (the server logs before it answers: no waiting)."""
    found = [entry for entry in entries if entry["event"] == event]
    assert len(found) == 1, entries
    return found[0]


def test_get_metrics_when_evaluation_recorded_then_prometheus_text(
    server: HttpServer, metrics: ServiceMetrics
) -> None:
    """/metrics serves the registry in the text format Prometheus parses."""
    metrics.evaluation_done(0.001, (), State(trading_states={"gen-01": "HALTED"}), 60.0)
    reply = _call(server, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name for f in text_string_to_metric_families(reply.body.decode())}
    assert {"bastion_trading_state", "bastion_evaluations"} <= families


def test_get_healthz_when_live_then_200_ok(server: HttpServer) -> None:
    """A live process answers 200 {"status": "ok"} in JSON."""
    reply = _call(server, "/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert reply.headers["Content-Type"] == "application/json"


def test_get_healthz_when_not_live_then_503(server: HttpServer, view: FakeView) -> None:
    """A process that is no longer live answers 503."""
    view.is_live = False
    assert _call(server, "/healthz").status == 503


def test_get_readyz_when_ready_then_200_without_reasons(server: HttpServer) -> None:
    """Ready: 200 with an empty list of reasons."""
    reply = _call(server, "/readyz")
    assert (reply.status, reply.json()) == (200, {"ready": True, "reasons": []})


def test_get_readyz_when_data_stale_then_503_with_reasons(
    server: HttpServer, view: FakeView
) -> None:
    """Not ready: 503 and the view's reasons, as they are."""
    reasons = ["no valid policy loaded", "data is 900 s old (stale after 120 s)"]
    view.readiness = (False, reasons)
    reply = _call(server, "/readyz")
    assert (reply.status, reply.json()) == (503, {"ready": False, "reasons": reasons})


def test_get_policies_when_loaded_then_view_json(server: HttpServer, view: FakeView) -> None:
    """/api/v1/policies returns the view's description of the active set."""
    reply = _call(server, "/api/v1/policies")
    assert (reply.status, reply.json()) == (200, view.policies())


def test_get_status_when_values_not_json_native_then_rendered_as_text(server: HttpServer) -> None:
    """/api/v1/status: datetimes in ISO 8601, Decimals exactly as text."""
    reply = _call(server, "/api/v1/status")
    assert reply.status == 200
    body = reply.json()
    assert body["trading_states"] == {"gen-01": "HALTED"}
    assert body["last_evaluation"] == {
        "at": "2026-11-20T15:30:00+00:00",
        "polling_interval_s": "30",
    }


def test_post_reload_when_accepted_then_200_with_details(
    server: HttpServer, view: FakeView
) -> None:
    """A successful reload answers 200 with the view's details and reloaded=true."""
    reply = _call(server, "/-/reload", method="POST")
    assert (reply.status, reply.json()) == (200, {"version": "sha256:new", "reloaded": True})
    assert view.reloads == 1


def test_post_reload_when_rejected_then_422_with_errors(server: HttpServer, view: FakeView) -> None:
    """A rejected reload answers 422 with the errors; the old version is named."""
    errors = ["policies/escalation.yaml:12:5: levels[1].breach_atr must be a number"]
    view.reload_result = (False, {"kept_version": "sha256:old", "errors": errors})
    reply = _call(server, "/-/reload", method="POST")
    assert reply.status == 422
    assert reply.json() == {"kept_version": "sha256:old", "errors": errors, "reloaded": False}


def test_request_when_path_unknown_then_404_json(server: HttpServer) -> None:
    """Unknown paths answer 404 in JSON, naming the path."""
    reply = _call(server, "/api/v2/nothing?x=1")
    assert (reply.status, reply.json()) == (404, {"error": "not found", "path": "/api/v2/nothing"})


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/-/reload", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/api/v1/policies", "GET, HEAD"),
    ],
)
def test_request_when_method_wrong_then_405_with_allow(
    server: HttpServer, view: FakeView, method: str, path: str, allowed: str
) -> None:
    """A known path with the wrong method answers 405 and an Allow header; nothing runs."""
    reply = _call(server, path, method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert reply.json()["allowed"] == allowed.split(", ")
    assert view.reloads == 0


def test_head_when_healthz_then_headers_without_body(server: HttpServer) -> None:
    """HEAD works wherever GET does (load balancers probe with it)."""
    reply = _call(server, "/healthz", method="HEAD")
    assert (reply.status, reply.body) == (200, b"")
    assert int(reply.headers["Content-Length"]) > 0


def test_request_when_view_raises_then_500_with_request_id_and_logged(
    server: HttpServer, view: FakeView
) -> None:
    """A failing view gives 500 with the request id, never a traceback to the client."""
    view.fail_with = RuntimeError("secret detail")
    with capture_logs() as entries:
        reply = _call(server, "/api/v1/policies", headers={"X-Request-Id": "req-500"})
        failure = _logged(entries, "http_handler_failed")
    assert (reply.status, reply.json()) == (
        500,
        {"error": "internal error", "request_id": "req-500"},
    )
    assert b"secret" not in reply.body
    assert failure["log_level"] == "error" and failure["exc_info"] is True


def test_request_when_request_id_sent_then_echoed_and_logged(server: HttpServer) -> None:
    """The client's X-Request-Id comes back and names the http_request event."""
    with capture_logs() as entries:
        reply = _call(server, "/api/v1/status", headers={"X-Request-Id": "abc-123"})
        event = _logged(entries, "http_request")
    assert reply.headers["X-Request-Id"] == "abc-123"
    assert event["request_id"] == "abc-123"
    assert (event["method"], event["path"], event["status"]) == ("GET", "/api/v1/status", 200)
    assert event["log_level"] == "info"
    assert isinstance(event["duration_ms"], float) and event["duration_ms"] >= 0


def test_request_when_no_request_id_then_one_generated_per_request(server: HttpServer) -> None:
    """Without a header each response gets a fresh id, also on /metrics and errors."""
    ids = [_call(server, path).headers["X-Request-Id"] for path in ("/metrics", "/x", "/healthz")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert len(set(ids)) == 3


def test_request_when_request_id_malformed_then_replaced(server: HttpServer) -> None:
    """An id with spaces or over 128 characters is not echoed into headers and logs."""
    for supplied in ("has space", "x" * 129):
        returned = _call(server, "/healthz", headers={"X-Request-Id": supplied}).headers
        assert re.fullmatch(r"[0-9a-f]{32}", returned["X-Request-Id"])


def test_post_reload_when_view_logs_then_request_id_bound_in_context(
    server: HttpServer,
) -> None:
    """What the view logs while serving a request carries the request's id."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        _call(server, "/-/reload", method="POST", headers={"X-Request-Id": "reload-7"})
        inner = _logged(entries, "fake_reload_ran")
        outer = _logged(entries, "http_request")
    assert inner["request_id"] == outer["request_id"] == "reload-7"
    assert (outer["method"], outer["status"]) == ("POST", 200)


def test_request_when_probe_succeeds_then_logged_at_debug(server: HttpServer) -> None:
    """Scrapes and probes every few seconds log at debug, not info."""
    with capture_logs() as entries:
        _call(server, "/metrics")
        event = _logged(entries, "http_request")
    assert (event["path"], event["log_level"]) == ("/metrics", "debug")


def test_request_when_body_sent_then_body_never_logged(server: HttpServer) -> None:
    """A request body is read off the socket and dropped, never logged."""
    request = urllib.request.Request(
        server.url + "/-/reload", data=b'{"token": "hunter2"}', method="POST"
    )
    with capture_logs() as entries:
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        _logged(entries, "http_request")
    assert "hunter2" not in repr(entries)


def test_request_when_method_unknown_then_501_json_with_request_id(server: HttpServer) -> None:
    """Protocol errors answer in JSON with an id too, not the default HTML page."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := connection.recv(4096):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 501")
    assert b"Content-Type: application/json" in head
    assert re.search(rb"X-Request-Id: [0-9a-f]{32}", head)
    assert json.loads(body)["error"]


def test_start_when_port_zero_then_ephemeral_port_on_loopback_only(
    view: FakeView, metrics: ServiceMetrics
) -> None:
    """Port 0 binds a free port; the server listens on the given host and nowhere else."""
    http = HttpServer("127.0.0.1", 0, view, metrics)
    assert http.port == 0
    http.start()
    try:
        assert http.port > 0
        assert http.url == f"http://127.0.0.1:{http.port}"
        assert http._server is not None
        assert http._server.socket.getsockname()[0] == "127.0.0.1"
    finally:
        http.stop()


def test_stop_when_called_then_port_closed_and_second_stop_harmless(
    view: FakeView, metrics: ServiceMetrics
) -> None:
    """After stop() nothing listens; stop() again (or before start) does nothing."""
    http = HttpServer("127.0.0.1", 0, view, metrics)
    http.stop()
    http.start()
    port = http.port
    started = time.monotonic()
    http.stop()
    http.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_start_when_already_running_then_runtime_error(server: HttpServer) -> None:
    """Starting twice is a programming error."""
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
