"""uvicorn's httptools protocol with the bounds it lacks: header size and header time.

uvicorn bounds a keep-alive connection's idle time, not how long a client may take to
send its request line and headers, nor how large they may be. This subclass counts the
bytes of the request line and headers (431 over the limit), gives a connection a time
bound from its first byte to the end of its headers (408 after it), and answers
protocol errors (a malformed request line, an unknown method) in JSON with an
`X-Request-Id` like every other answer. Each of these is logged once as `http_request`.
The body's own bound (size and time) is the application's: see `service.http`.

A response's head is held until its body is written (`_OneSend`): uvicorn writes the
status line and headers, then the body, each with its own `send()`; together they are
one system call and one packet (and one wake-up of the client) instead of two.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any, ClassVar

import structlog
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from bastion.service.logs import new_correlation_id

logger = structlog.get_logger("bastion.service")


class _Refused(Exception):  # not an httptools error: uvicorn's own handler must not see it
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BoundedProtocol(HttpToolsProtocol):
    """Set the class attributes in a subclass (`bounded_protocol`), one per server."""

    max_header_bytes: ClassVar[int] = 16 * 1024
    header_timeout_s: ClassVar[float] = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: _Refused | None = None
        super().connection_made(transport)
        self._arm_header_timer()  # a connection that never sends a request is dropped

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)
        except _Refused as refused:
            self._refuse(refused.status, refused.message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()
        cycle = self.cycle  # the new request's (its task has not run yet)
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _OneSend(self.transport, cycle)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        """httptools refused the request: ours (headers too large) or its own (a bad
        request line, an unknown method...)."""
        if self._refusal is not None:
            self._refuse(self._refusal.status, self._refusal.message)
        else:
            self._refuse(400, "invalid HTTP request")

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            # httptools wraps what a callback raises into its own error, which uvicorn
            # answers with send_400_response: remember ours for it.
            self._refusal = _Refused(
                431, f"request line and headers over {self.max_header_bytes} bytes"
            )
            raise self._refusal

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse(408, f"request headers not received within {self.header_timeout_s:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer in JSON, log once, close: nothing more is read on this connection."""
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        request_id = new_correlation_id()
        body = (json.dumps({"error": message}) + "\n").encode()
        head: list[bytes] = [STATUS_LINE[status]]
        headers: list[tuple[bytes, bytes]] = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        for name, value in headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"\r\n")
        logger.info(
            "http_request",
            method="",  # the request line may be what failed: nothing of it is logged
            path="",
            status=status,
            duration_ms=0.0,
            request_id=request_id,
            error=message,
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class _OneSend:
    """The transport as one request's cycle sees it: the response's head is held until
    the first body bytes, and both are written at once.

    Held only when a body must follow — a Content-Length over 0 on an answer to
    anything but HEAD — so nothing is ever left waiting: the body's write releases it,
    and so does a close (an application that fails half-way). Anything else (100
    Continue, a head without a body, chunks) goes straight through.

    The cycle is held by a weak reference: the cycle holds this transport, and a strong
    reference back would make every request a reference cycle that only the garbage
    collector frees — at 1,000 requests a second, a collection pause of milliseconds
    every second (tests/service/test_http_no_cycles.py)."""

    __slots__ = ("_cycle", "_head", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = weakref.ref(cycle)
        self._head: bytes | None = None
        self._started = False  # the head was written (or held)

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + data)
            return
        cycle = self._cycle()
        if cycle is None:  # the request is over: nothing to hold
            self._transport.write(data)
            return
        if not self._started and cycle.response_started:  # the head, written whole
            self._started = True
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def bounded_protocol(max_header_bytes: int, header_timeout_s: float) -> type[BoundedProtocol]:
    """A protocol class carrying one server's bounds (uvicorn instantiates it itself)."""
    return type(
        "BoundedProtocol",
        (BoundedProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s},
    )
