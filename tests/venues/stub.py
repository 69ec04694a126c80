"""A loopback HTTP stub of a venue: the real SDKs talk to it over 127.0.0.1.

One :class:`VenueStub` serves one venue's route table (``tests/venues/routes_*.py``):
the documented JSON for every call the adapters make, authenticated the way the venue
does it (the stub checks the key header and, for Binance and Kraken, the HMAC signature
and the nonce). Switches make it misbehave:

- ``fail(status, times=..., retry_after=..., body=...)`` — answer the next ``times``
  requests (all of them when None) with that status; a ``NotJson`` body is sent raw.
- ``slow(delay_s)`` — hold every answer back (for client timeouts); ``reset`` wakes them.
- ``set_field(path, value)`` / ``delete_field(path)`` — break one field of a payload.
- ``payloads`` — the live, mutable documented JSON, fresh after every ``reset``.

It listens on an ephemeral port and records every request in ``requests``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class NotJson(str):
    """A body served as is, with ``Content-Type: text/html`` (a proxy's error page, say)."""


@dataclass(frozen=True)
class Seen:
    """One request the stub received."""

    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]
    body: str

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """A query or form parameter's first value."""
        values = self.query.get(name) or self.form.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int = 200
    body: object = None  # JSON-encoded, unless a NotJson
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["VenueStub", Seen], Reply]


@dataclass(frozen=True)
class VenueRoutes:
    """Everything the stub knows about one venue."""

    venue: str
    routes: Mapping[tuple[str, str], Handler]
    payloads: Callable[[], dict[str, Any]]  # fresh documented JSON
    authenticate: Callable[[VenueStub, Seen], Reply | None]
    fault_body: Callable[[int], object]  # the venue's error body for a status
    # Paths with a parameter in them (Alpaca's /v2/assets/{symbol}): (method, prefix).
    prefixes: Mapping[tuple[str, str], Handler] = field(default_factory=dict)


def serve(name: str) -> Handler:
    """A handler answering with ``payloads[name]`` as it is now."""
    return lambda stub, _seen: Reply(body=stub.payloads[name])


@dataclass
class _Fault:
    status: int
    remaining: int | None
    retry_after: str | None
    body: object


class VenueStub:
    def __init__(self, spec: VenueRoutes, key: str, secret: str) -> None:
        self.spec = spec
        self.key = key
        self.secret = secret
        self.requests: list[Seen] = []
        self.payloads: dict[str, Any] = spec.payloads()
        self.state: dict[str, Any] = {}  # per-venue bookkeeping (Kraken's last nonce)
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._delay_s = 0.0
        self._wake = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()

    # -- switches ----------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.payloads = self.spec.payloads()
            self.state.clear()
            self._fault = None
            self._delay_s = 0.0
            self._wake.set()  # release anything still held back by slow()
            self._wake = threading.Event()

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        retry_after: float | str | None = None,
        body: object = None,
    ) -> None:
        retry = (
            retry_after
            if retry_after is None or isinstance(retry_after, str)
            else f"{retry_after:g}"
        )
        with self._lock:
            self._fault = _Fault(status, times, retry, body)

    def slow(self, delay_s: float) -> None:
        with self._lock:
            self._delay_s = delay_s

    def set_field(self, path: Sequence[str | int], value: object) -> None:
        parent, last = self._parent(path)
        parent[last] = value

    def delete_field(self, path: Sequence[str | int]) -> None:
        parent, last = self._parent(path)
        del parent[last]

    def _parent(self, path: Sequence[str | int]) -> tuple[Any, Any]:
        node: Any = self.payloads
        for step in path[:-1]:
            node = node[step]
        return node, path[-1]

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    # -- serving -----------------------------------------------------------------------

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            delay_s, wake = self._delay_s, self._wake
            fault = self._fault
            if fault is not None and fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
        if delay_s:
            wake.wait(delay_s)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = fault.body if fault.body is not None else self.spec.fault_body(fault.status)
            return Reply(fault.status, body, headers)
        handler = self.spec.routes.get((seen.method, seen.path))
        if handler is None:
            handler = next(
                (
                    prefixed
                    for (method, prefix), prefixed in self.spec.prefixes.items()
                    if method == seen.method and seen.path.startswith(prefix)
                ),
                None,
            )
        if handler is None:
            return Reply(404, {"code": 404, "message": f"stub: no route {seen.method} {seen.path}"})
        return self.spec.authenticate(self, seen) or handler(self, seen)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the venues do
    disable_nagle_algorithm = True  # else headers and body wait out a delayed ACK (~40 ms)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the stub's requests are in ``VenueStub.requests``."""

    def _handle(self) -> None:
        stub: VenueStub = self.server.stub  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        seen = Seen(self.command, parts.path, parts.query, dict(self.headers.items()), body)
        reply = stub.answer(seen)
        if isinstance(reply.body, NotJson):
            data, content_type = str(reply.body).encode(), "text/html"
        else:
            data, content_type = json.dumps(reply.body).encode(), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout test): nothing to answer


@dataclass(frozen=True)
class Malformed:
    """One field to break in a payload, and what the DataError must then say."""

    path: tuple[str | int, ...]
    missing_says: str  # when the field is deleted
    garbage_says: str  # when it holds "n/a"


@dataclass(frozen=True)
class VenueFacts:
    """A venue's stub plus what its documented payloads say, for the shared tests."""

    routes: VenueRoutes
    key: str
    secret: str
    key_var: str
    secret_var: str
    symbol: str  # for bars and quotes
    equity_usd: Decimal
    cash_usd: Decimal
    position_symbols: tuple[str, ...]
    bid: Decimal
    ask: Decimal
    fill_ids: tuple[str, ...]  # at or after FILLS_SINCE, oldest first
    malformed: Mapping[str, Malformed]  # by fetch: accounts, positions, bars, quote, fills
    market_data_needs_key: bool = False  # bars and quotes are public on most venues
    # The live-venue scenarios (issue #12), each a change to the stub's payloads:
    benchmark: str = ""  # the venue's default benchmark, which the stub lists
    unknown_symbol: str = "NOPE"  # a symbol the venue does not list
    add_dust: Callable[[VenueStub], str] | None = None  # -> the dust position's id
    add_unlisted: Callable[[VenueStub], str] | None = None  # -> the unlisted position's id
