"""The edge's bounds over real HTTP: numbers, text, sizes and time. A bad input gets a
small 422 (or 413 / 408 / 431) and never reaches the view; nothing grows with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from bastion.service.http import HttpServer, Limits
from bastion.service.http_body import check_json_body
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import (  # noqa: F401
    FakeView,
    call,
    default_logging,
    raw_exchange,
    serving,
    validate_schema,
)

SMALL_ANSWER_BYTES = 2048
FAST = Limits(body_timeout_s=0.3, header_timeout_s=0.3)  # the bounds, short for the tests


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[HttpServer, FakeView, ServiceMetrics]]:
    view, metrics = FakeView(), ServiceMetrics()
    with serving(view, metrics, limits=FAST) as http:
        yield http, view, metrics


@pytest.fixture
def server(running: tuple[HttpServer, FakeView, ServiceMetrics]) -> HttpServer:
    vars(running[1]).update(vars(FakeView()))
    return running[0]


@pytest.fixture
def view(running: tuple[HttpServer, FakeView, ServiceMetrics], server: HttpServer) -> FakeView:
    return running[1]


def _order(extra: str) -> bytes:
    """An order request with one more field, spelled as raw JSON text."""
    return b'{"account_id": "gen-01", "symbol": "QQQ", "action": "open", ' + extra.encode() + b"}"


BAD_BODIES = {
    "exponent huge": (_order('"target_size": 1e999999'), "target_size"),
    "exponent enormous": (_order('"target_size": 1e999999999'), "target_size"),
    "exponent past decimal": (_order('"target_size": 1e99999999999999999999999'), "target_size"),
    "NaN": (_order('"target_size": NaN'), "target_size"),
    "Infinity": (_order('"current_size": -Infinity'), "current_size"),
    "30 digits": (_order('"target_size": 123456789012345678901234567890'), "target_size"),
    "30-digit fraction": (_order('"target_size": 0.123456789012345678901234567890'), "target_size"),
    "at 1e15": (_order('"target_size": 1000000000000000'), "target_size"),
    "beyond 20 decimals": (_order('"target_size": 1e-21'), "target_size"),
    "10k digits": (_order('"target_size": ' + "9" * 10_000), "target_size"),
    "lone surrogate": (_order('"strategy_id": "eve\\ud800"'), "strategy_id"),
    "NUL": (_order('"strategy_id": "a\\u0000b"'), "strategy_id"),
    "newline escape": (_order('"strategy_id": "a\\nb"'), "strategy_id"),
    "escape char": (_order('"strategy_id": "a\\u001b[31m"'), "strategy_id"),
    "C1 control": (_order('"strategy_id": "a\\u0085"'), "strategy_id"),
    "control in key": (_order('"x\\u0007": 1'), "<key>"),
    "long string": (_order('"strategy_id": "' + "s" * 9000 + '"'), "strategy_id"),
    "nested deep": (_order('"metadata": ' + "[" * 40 + "]" * 40), "metadata"),
    "many values": (_order('"metadata": [' + ",".join(["1"] * 3000) + "]"), "body"),
}


@pytest.mark.parametrize(("body", "field"), list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_check_when_body_out_of_bounds_then_small_422_naming_the_field(
    server: HttpServer, view: FakeView, body: bytes, field: str
) -> None:
    """Each bad input: 422 with a body of at most 2 KiB that names the field; the view
    never sees it; no log line is larger than a few KiB."""
    with capture_logs() as entries:
        reply = call(server.url + "/api/v1/check", method="POST", body=body)
    assert reply.status == 422, reply.body
    assert len(reply.body) <= SMALL_ANSWER_BYTES
    answer = reply.json()
    validate_schema("CheckRefused", answer)
    assert answer["approved"] is False
    assert field in [error["path"].split(".")[0].split("[")[0] for error in answer["errors"]]
    assert view.calls == []
    assert all(len(repr(entry)) < 4096 for entry in entries)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"symbol": ', "body:1:12: invalid JSON: Expecting value"),
        (b'{"symbol": "a\x01"}', "invalid JSON: Invalid control character"),
        (b"\xed\xa0\x80", "not UTF-8"),
        (b'{"a": 1, "a": 2}', 'duplicate key "a"'),
    ],
)
def test_check_when_body_not_json_then_422_as_the_view_says_it(
    server: HttpServer, view: FakeView, body: bytes, named: str
) -> None:
    """Unparseable bodies are refused at the edge with the views' own wording."""
    reply = call(server.url + "/api/v1/check", method="POST", body=body)
    assert reply.status == 422
    assert named in reply.json()["error"]
    assert view.calls == []


@pytest.mark.parametrize(
    "value",
    [
        "999999999999999",
        "-999999999999999.99999",
        "12345.678901234567890",
        "0.00000000000000000001",
        "0e999999999",
        "10",
    ],
)
def test_check_when_numbers_at_the_bounds_then_reach_the_view(
    server: HttpServer, view: FakeView, value: str
) -> None:
    """Inside the bounds (under 1e15, 20 significant digits, 20 decimals): accepted,
    and the view gets the bytes exactly as sent."""
    body = _order(f'"target_size": {value}')
    reply = call(server.url + "/api/v1/check", method="POST", body=body)
    assert reply.status == 200
    assert view.calls == [("check", "local", body)]


def test_check_when_body_2_mib_then_413_small_and_connection_closed(
    server: HttpServer, view: FakeView
) -> None:
    """A 2 MiB body: read off, answered 413 (small), the connection closed."""
    body = b'{"strategy_id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    head = b"POST /api/v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    raw, _ = raw_exchange(server.port, head + body)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"connection: close" in rest.lower()
    answer = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert answer["approved"] is False and len(json.dumps(answer)) < SMALL_ANSWER_BYTES
    assert view.calls == []


def test_check_when_body_announced_over_drain_cap_then_413_without_reading(
    server: HttpServer,
) -> None:
    """A Content-Length past what is worth reading off: 413 at once, connection closed."""
    head = b"POST /api/v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
    raw, _ = raw_exchange(server.port, head + b"{}")
    assert raw.startswith(b"HTTP/1.1 413")


def test_check_when_body_shorter_than_announced_then_408_and_dropped(
    server: HttpServer, view: FakeView
) -> None:
    """Content-Length 1000, 10 bytes sent, then silence: after the body timeout the
    client gets 408 and the connection is closed (the read ends instead of hanging)."""
    head = b"POST /api/v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with capture_logs() as entries:
        raw, _ = raw_exchange(server.port, head + b"0123456789")
    assert raw.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in raw.lower()
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["approved"] is False
    assert view.calls == []
    assert [e["status"] for e in entries if e["event"] == "http_request"] == [408]


def test_request_when_headers_never_end_then_408_and_dropped(server: HttpServer) -> None:
    """A request line and half the headers, then silence: 408 and closed."""
    raw, _ = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert raw.startswith(b"HTTP/1.1 408")


def test_connection_when_nothing_sent_then_closed_after_header_timeout(
    server: HttpServer,
) -> None:
    """A connection that never sends a byte does not hold a slot forever."""
    raw, _ = raw_exchange(server.port, b"")
    assert raw.startswith(b"HTTP/1.1 408") or raw == b""


def test_request_when_headers_over_16_kib_then_431(server: HttpServer) -> None:
    """Request line and headers are bounded: 431 in JSON, closed."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    raw, _ = raw_exchange(server.port, request)
    assert raw.startswith(b"HTTP/1.1 431")
    assert len(raw) < SMALL_ANSWER_BYTES


def test_answer_when_view_refusal_is_huge_then_cut_to_a_few_kib(
    server: HttpServer, view: FakeView
) -> None:
    """A view's 4xx that quotes a lot (say, every unknown field) is cut to a few KiB."""
    errors = [{"path": f"field_{i}", "message": "unknown field " * 20} for i in range(500)]
    view.check_result = (422, {"approved": False, "error": "e" * 50_000, "errors": errors})
    reply = call(server.url + "/api/v1/check", method="POST", body=b"{}")
    assert reply.status == 422
    assert len(reply.body) <= 8192
    assert reply.json()["approved"] is False


def test_reset_when_body_refused_at_edge_then_counted_as_rejected(
    running: tuple[HttpServer, FakeView, ServiceMetrics], server: HttpServer
) -> None:
    """A reset refused at the edge counts as a rejected reset, as the view's refusals."""
    metrics = running[2]
    before = metrics.breaker_resets.labels(result="rejected")._value.get()
    reply = call(server.url + "/api/v1/breakers/reset", method="POST", body=b'{"x": NaN}')
    assert (reply.status, reply.json()["queued"]) == (422, False)
    assert metrics.breaker_resets.labels(result="rejected")._value.get() == before + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1.5}', {"a": Decimal("1.5")}),
        ('{"a": -0}', {"a": Decimal("0")}),
        ('[1, "x", null, true]', [Decimal(1), "x", None, True]),
        ("  ", None),
    ],
)
def test_check_json_body_when_within_bounds_then_parsed(text: str, expected: Any) -> None:
    """The edge's parse of a good body: numbers as Decimal, nothing refused."""
    assert check_json_body(text.encode()) == (expected, None)
