"""The HTTP front's short paths: the role table's paths answered without Starlette's
router, one log line per check answered, a response's head and body in one write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
import uvicorn
from structlog.testing import capture_logs
from uvicorn.server import ServerState

from bastion.service.http import build_app
from bastion.service.http_body import check_json_body
from bastion.service.http_protocol import bounded_protocol
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import (  # noqa: F401
    FakeView,
    call,
    default_logging,
    raw_exchange,
    serving,
)

CHECK = b'{"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}'


def test_check_when_answered_200_then_request_line_at_debug() -> None:
    """A check answered 200 has its info line from the view (`order_checked`): the
    edge's `http_request` for it is at debug; any other answer's stays at info."""
    view = FakeView()
    with serving(view) as http, capture_logs() as entries:
        call(http.url + "/api/v1/check", body=CHECK, method="POST")
        view.check_result = (422, {"approved": False, "error": "body: invalid"})
        call(http.url + "/api/v1/check", body=CHECK, method="POST")
        call(http.url + "/api/v1/status")
    levels = [
        (e["path"], e["status"], e["log_level"]) for e in entries if e["event"] == "http_request"
    ]
    assert levels == [
        ("/api/v1/check", 200, "debug"),
        ("/api/v1/check", 422, "info"),
        ("/api/v1/status", 200, "info"),
    ]


def test_path_when_not_in_the_table_then_starlette_answers_as_before() -> None:
    """Only the table's paths skip the router: a trailing slash is still redirected to
    the path, an unknown path is a 404 in JSON, both with a request id."""
    with serving(FakeView()) as http:
        redirected, _ = raw_exchange(
            http.port, b"GET /api/v1/status/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        missing = call(http.url + "/nowhere")
    head = redirected.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 307")
    assert b"location: http://x/api/v1/status" in head and b"x-request-id: " in head
    assert missing.status == 404 and missing.json()["path"] == "/nowhere"
    assert missing.headers["X-Request-Id"]


class _Recorder(asyncio.Transport):
    """A connection's transport that keeps every write (one write = one send)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _exchange(requests: list[tuple[bytes, int]]) -> list[bytes]:
    """Feed each request to the server's protocol on one connection (keep-alive), each
    once the writes expected for the one before are in, against the real app on a fake
    view: the writes it made."""
    structlog.configure(processors=[lambda *_: ""])  # quiet: nothing here reads the logs
    app = build_app(FakeView(), ServiceMetrics())
    config = uvicorn.Config(
        app, http=bounded_protocol(16 * 1024, 10.0), lifespan="off", log_config=None
    )
    config.load()
    loop = asyncio.new_event_loop()
    transport = _Recorder()

    async def written(count: int) -> None:
        while len(transport.writes) < count:
            await asyncio.sleep(0.001)  # a GET is answered from a worker thread

    try:
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        protocol.connection_made(transport)
        expected = 0
        for request, writes in requests:
            protocol.data_received(request)
            expected += writes
            loop.run_until_complete(asyncio.wait_for(written(expected), 10))
        loop.run_until_complete(asyncio.sleep(0.01))  # nothing more is written
        protocol.connection_lost(None)
        return transport.writes
    finally:
        loop.close()


def test_response_when_body_follows_then_head_and_body_in_one_write() -> None:
    """A response with a body leaves in one write (one system call, one packet), each
    response of a keep-alive connection in its own; 100 Continue goes out before it."""
    post = (
        b"POST /api/v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(CHECK) + CHECK
    )
    continued = post.replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n")
    writes = _exchange(
        [(post, 1), (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1), (continued, 2)]
    )
    assert len(writes) == 4
    first, second, continue_line, third = writes
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"\n")
    assert b'"approved": true' in first
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b'{"status": "ok"}\n')
    assert continue_line == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert third.startswith(b"HTTP/1.1 200 ") and b'"approved": true' in third


def test_response_when_head_request_then_head_alone_written_at_once() -> None:
    """An answer to HEAD has no body to wait for: its head is written as it comes."""
    writes = _exchange([(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1)])
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 ") and writes[0].endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ('{"strategy_id": "a\x7fb"}', "strategy_id"),
        ('{"strategy_id": "a\u0085b"}', "strategy_id"),
        ('{"x\u009b": 1}', "<key>"),
        ('{"metadata": {"note": ["ok", "a\x7f"]}}', "metadata.note[1]"),
    ],
)
def test_check_json_body_when_raw_del_or_c1_then_refused(raw: str, path: str) -> None:
    """Text is looked at when the body has an escape or a raw DEL / C1 control (the
    parser lets those two through): written raw, not escaped, they are still refused."""
    data, refused = check_json_body(raw.encode())
    assert data is None and refused is not None
    assert [p for p, _ in refused.errors] == [path]
    assert "control character" in refused.errors[0][1]


def test_check_json_body_when_plain_text_then_lengths_still_checked() -> None:
    """A body without escapes skips the character scan, not the bounds."""
    _data, refused = check_json_body(
        ('{"a": {"' + "k" * 200 + '": "' + "s" * 9000 + '"}}').encode()
    )
    assert refused is not None
    assert [p for p, _ in refused.errors] == ["a.<key>"]
