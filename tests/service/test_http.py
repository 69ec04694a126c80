"""HttpServer: every route over real loopback HTTP, against a fake view (no --auth: every
caller is the officer "local"). Auth, limits, TLS and OpenAPI have files of their own."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from structlog.typing import EventDict

from bastion.engine.state import State
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import (  # noqa: F401
    FakeView,
    Reply,
    call,
    default_logging,
    raw_exchange,
    validate_schema,
)


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
    validate_schema("Policies", reply.json())


def test_get_status_when_values_not_json_native_then_rendered_as_text(server: HttpServer) -> None:
    """/api/v1/status: datetimes in ISO 8601, Decimals exactly as text."""
    reply = _call(server, "/api/v1/status")
    assert reply.status == 200
    body = reply.json()
    assert body["trading_states"] == {"gen-01": "HALTED"}
    assert body["last_evaluation"] == {
        "at": "2026-11-20T15:30:00+00:00",
        "policy_version": "sha256:set",
        "polling_interval_s": "30",
    }
    validate_schema("Status", body)


def test_post_reload_when_accepted_then_200_with_details(
    server: HttpServer, view: FakeView
) -> None:
    """A successful reload answers 200 with the view's details and reloaded=true."""
    reply = _call(server, "/-/reload", method="POST")
    assert reply.status == 200
    assert reply.json() == {"version": "sha256:new", "changed": [], "reloaded": True}
    assert view.calls == [("reload", "local", [])]
    validate_schema("ReloadAnswer", reply.json())


def test_post_reload_when_rejected_then_422_with_errors(server: HttpServer, view: FakeView) -> None:
    """A rejected reload answers 422 with the errors; the old version is named."""
    errors = ["policies/escalation.yaml:12:5: levels[1].breach_atr must be a number"]
    view.reload_result = (422, {"kept_version": "sha256:old", "errors": errors})
    reply = _call(server, "/-/reload", method="POST")
    assert reply.status == 422
    assert reply.json() == {"kept_version": "sha256:old", "errors": errors, "reloaded": False}
    validate_schema("ReloadAnswer", reply.json())


def test_request_when_path_unknown_then_404_json(server: HttpServer) -> None:
    """Unknown paths answer 404 in JSON, naming the path."""
    reply = _call(server, "/api/v2/nothing?x=1")
    assert (reply.status, reply.json()) == (404, {"error": "not found", "path": "/api/v2/nothing"})
    validate_schema("NotFound", reply.json())


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
    validate_schema("MethodNotAllowed", reply.json())
    assert view.calls == []


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
    assert b"secret" not in reply.body and b"Traceback" not in reply.body
    assert failure["log_level"] == "error" and failure["exc_info"] is True
    validate_schema("InternalError", reply.json())


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
        server.url + "/api/v1/check", data=b'{"token": "hunter2"}', method="POST"
    )
    with capture_logs() as entries:
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        _logged(entries, "http_request")
    assert "hunter2" not in repr(entries)


def test_request_when_request_line_malformed_then_400_json_with_request_id(
    server: HttpServer,
) -> None:
    """Protocol errors (an unknown method) answer in JSON with an id too, then close."""
    with capture_logs() as entries:
        raw, _ = raw_exchange(server.port, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/json" in head.lower()
    assert re.search(rb"x-request-id: [0-9a-f]{32}", head.lower())
    assert json.loads(body) == {"error": "invalid HTTP request"}
    assert _logged(entries, "http_request")["status"] == 400


def test_request_when_keep_alive_then_several_requests_on_one_connection(
    server: HttpServer,
) -> None:
    """HTTP/1.1 keep-alive: two requests, one connection, two answers."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(request)
        first = _one_answer(connection)
        connection.sendall(request)
        second = _one_answer(connection)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    assert first.endswith(b'{"status": "ok"}\n') and second.endswith(b'{"status": "ok"}\n')


def _one_answer(connection: socket.socket) -> bytes:
    """Read one answer off a keep-alive connection, by its Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_response_when_any_route_then_no_store(server: HttpServer) -> None:
    """Answers are never cached by a proxy: Cache-Control no-store, errors included."""
    for path in ("/healthz", "/api/v1/status", "/nowhere", "/metrics"):
        assert _call(server, path).headers["Cache-Control"] == "no-store"


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
        assert http._socket is not None
        assert http._socket.getsockname()[0] == "127.0.0.1"
        # Declared TCP, so that asyncio sets TCP_NODELAY on every accepted connection
        # (without it each answer waits ~40 ms for a delayed ACK).
        assert http._socket.proto == socket.IPPROTO_TCP
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
