"""The service's HTTP endpoints on the standard library's threading HTTP server.

    GET  /metrics            Prometheus text exposition
    GET  /healthz            200 {"status": "ok"} while the process is live, else 503
    GET  /readyz             200 {"ready": true, "reasons": []}, or 503 with the reasons
    GET  /api/v1/policies    the active policy set: version, policies, loaded_at
    GET  /api/v1/status      trading states, escalations, tripped breakers, resets queued
                             for the next cycle (`pending_resets`), last evaluation
    POST /api/v1/check       may this order be sent? body: one order request (JSON, as
                             `bastion check --request`); 200 with the decision (approved,
                             downsized or denied), 422 naming the field at fault, 413 over
                             64 KiB, 503 `approved: false` while not ready
    POST /api/v1/breakers/reset
                             reset a tripped breaker, as `bastion eval --reset`: body
                             {"breaker", "subject", "by", "reason"}; 202 queued for the
                             next cycle (run at once), 422 naming the field, 409 when it
                             is not tripped or cooling down (the ones that are, listed)
    POST /-/reload           reload the policies now: 200, or 422 with the errors

Every response but /metrics is JSON; every response carries `X-Request-Id` (the client's,
when it sent a well-formed one, else a new one), and every request is logged once as the
event `http_request` with that id bound. Bodies of up to 64 KiB are read and handed to the
route (any Content-Type); a larger one is read off and dropped. Request bodies are never
read into a log.

The server binds only the host it is given (the CLI defaults to 127.0.0.1): nothing here
authenticates, and `POST /-/reload` and `POST /api/v1/breakers/reset` change what the
service does.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import structlog

from bastion.service.logs import new_correlation_id
from bastion.service.metrics import ServiceMetrics

logger = structlog.get_logger()

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is echoed into headers and logs: accept only short, plain tokens.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})  # scraped every few seconds
_MAX_BODY = 64 * 1024  # an order request is well under 1 KiB
# A body over the cap is still read off the socket, up to this much, so that the client
# gets its 413 instead of a connection reset (closing on unread data resets it).
_MAX_DRAINED_BODY = 1024 * 1024
_JSON = "application/json"


class ServiceView(Protocol):
    """What the endpoints read and trigger; implemented by the runner."""

    def live(self) -> bool: ...

    def ready(self) -> tuple[bool, list[str]]: ...

    def policies(self) -> dict[str, Any]: ...

    def reload(self) -> tuple[bool, dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def check(self, body: bytes) -> tuple[int, dict[str, Any]]: ...

    def reset_breaker(self, body: bytes) -> tuple[int, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, default=_plain, ensure_ascii=False) + "\n"
    return Response(status, body.encode(), _JSON, headers or {})


def _plain(value: Any) -> Any:
    """JSON for the values a view may hand back as they are (Decimal exactly, as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)  # Decimal, Path, enums: their text


# A route gets the request body: b"" when none was sent, None when it was over the cap.
Handler = Callable[[bytes | None], Response]


class Routes:
    """Method and path to a response; no sockets, so it reads like the table above."""

    def __init__(self, view: ServiceView, metrics: ServiceMetrics) -> None:
        self.view = view
        self.metrics = metrics
        self.table: dict[str, dict[str, Handler]] = {
            "/metrics": {"GET": self.get_metrics},
            "/healthz": {"GET": self.get_healthz},
            "/readyz": {"GET": self.get_readyz},
            "/api/v1/policies": {"GET": lambda _: json_response(200, self.view.policies())},
            "/api/v1/status": {"GET": lambda _: json_response(200, self.view.status())},
            "/api/v1/check": {"POST": self.post_check},
            "/api/v1/breakers/reset": {"POST": self.post_breaker_reset},
            "/-/reload": {"POST": self.post_reload},
        }

    def respond(self, method: str, path: str, body: bytes | None = b"") -> Response:
        handlers = self.table.get(path)
        if handlers is None:
            return json_response(404, {"error": "not found", "path": path})
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])})
            return json_response(
                405,
                {"error": f"method {method} not allowed", "allowed": allowed},
                {"Allow": ", ".join(allowed)},
            )
        return handler(body)

    def get_metrics(self, _body: bytes | None) -> Response:
        body, content_type = self.metrics.render()
        return Response(200, body, content_type)

    def get_healthz(self, _body: bytes | None) -> Response:
        if self.view.live():
            return json_response(200, {"status": "ok"})
        return json_response(503, {"status": "unavailable"})

    def get_readyz(self, _body: bytes | None) -> Response:
        ready, reasons = self.view.ready()
        return json_response(200 if ready else 503, {"ready": ready, "reasons": list(reasons)})

    def post_reload(self, _body: bytes | None) -> Response:
        succeeded, details = self.view.reload()
        return json_response(200 if succeeded else 422, {**details, "reloaded": succeeded})

    def post_check(self, body: bytes | None) -> Response:
        if body is not None:
            return json_response(*self.view.check(body))
        # Refused before the view sees it, so counted and logged here like its refusals
        # (in no time: nothing was parsed).
        error = f"body: over {_MAX_BODY} bytes; send one order request per call"
        self.metrics.order_checked("error", 0.0)
        logger.warning("order_checked", outcome="error", status=413, error=error)
        return json_response(413, {"approved": False, "error": error})

    def post_breaker_reset(self, body: bytes | None) -> Response:
        if body is not None:
            return json_response(*self.view.reset_breaker(body))
        error = f"body: over {_MAX_BODY} bytes; send one reset per call"
        self.metrics.breaker_reset("rejected")  # refused before the view, as post_check
        logger.warning("breaker_reset_requested", result="rejected", status=413, error=error)
        return json_response(413, {"queued": False, "error": error})


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up stop()

    def __init__(self, address: tuple[str, int], routes: Routes) -> None:
        self.routes = routes
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a reverse DNS lookup that can
        # take seconds); the name is only used in CGI variables, which we do not serve.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed outside a handler (socket errors): log it, keep serving."""
        logger.exception("http_connection_failed")


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "bastion"
    sys_version = ""
    timeout = 10  # seconds a client may take to send its request

    def _handle(self) -> None:
        started = time.perf_counter()
        request_id = _request_id(self.headers.get(REQUEST_ID_HEADER))
        path = urlsplit(self.path).path
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            body = self._read_body()
            routes = cast(_Server, self.server).routes
            try:
                response = routes.respond(self.command, path, body)
            except Exception:  # any bug answers 500 (never a 2xx), logged with its traceback
                logger.exception("http_handler_failed", method=self.command, path=path[:256])
                response = json_response(500, {"error": "internal error", "request_id": request_id})
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            quiet = path in _QUIET_PATHS and response.status < 400
            # Logged before the bytes go out, so that the event exists by the time the
            # client has its answer (tests and tracing rely on the order); writing a small
            # body to the socket buffer is not worth timing.
            (logger.debug if quiet else logger.info)(
                "http_request",
                method=self.command,
                path=path[:256],
                status=response.status,
                duration_ms=duration_ms,
                request_id=request_id,  # also bound; explicit so that captured logs show it
            )
            self._send(response, request_id)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def _send(self, response: Response, request_id: str) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header(REQUEST_ID_HEADER, request_id)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left; the request is still logged

    def _read_body(self) -> bytes | None:
        """The body by its Content-Length (b"" without one), or None when it is over the
        cap: then it is read off and dropped, and the connection closed after the answer."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return b""
        if length <= 0:
            return b""
        if length <= _MAX_BODY:
            return self.rfile.read(length)
        self.close_connection = True
        remaining = min(length, _MAX_DRAINED_BODY)
        while remaining > 0 and (chunk := self.rfile.read(min(remaining, _MAX_BODY))):
            remaining -= len(chunk)
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, unknown method): JSON like every response."""
        request_id = new_correlation_id()
        self.close_connection = True
        status = HTTPStatus(code)
        logger.info(
            "http_request",
            method=self.command or "",
            path=urlsplit(self.path).path[:256] if hasattr(self, "path") else "",
            status=status.value,
            duration_ms=0.0,
            request_id=request_id,
        )
        self._send(json_response(status.value, {"error": message or status.phrase}), request_id)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log: `http_request` events replace it."""


def _request_id(supplied: str | None) -> str:
    if supplied is not None and _REQUEST_ID.fullmatch(supplied):
        return supplied
    return new_correlation_id()


class HttpServer:
    """The endpoints above, served on a background thread until `stop()`."""

    def __init__(self, host: str, port: int, view: ServiceView, metrics: ServiceMetrics) -> None:
        self.host = host
        self._requested_port = port
        self._routes = Routes(view, metrics)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve. Raises OSError when the address is taken or not local."""
        if self._server is not None:
            raise RuntimeError("the HTTP server is already running")
        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, self._requested_port), self._routes)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long stop() waits at most
            name="bastion-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("http_server_started", host=self.host, port=self.port, url=self.url)

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice or before start()."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None
        logger.info("http_server_stopped", host=self.host)

    @property
    def port(self) -> int:
        """The bound port once started (the ephemeral one for port 0), else the requested."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
