"""The service's HTTP endpoints: a Starlette app on uvicorn, on a background thread.

    GET  /metrics            Prometheus text exposition
    GET  /healthz            200 {"status": "ok"} while the process is live, else 503
    GET  /readyz             200 {"ready": true, "reasons": []}, or 503 with the reasons
    GET  /api/v1/openapi.json  this API, described in OpenAPI 3.1 (service/openapi.json)
    GET  /api/v1/policies    the active policy set: version, policies, loaded_at
    GET  /api/v1/status      trading states, escalations, tripped breakers, resets queued
                             for the next cycle (`pending_resets`), history locks
                             blocking now (`locks`), last evaluation
    GET  /api/v1/overview    what the status page (GET /) shows (service.status_page)
    GET  /api/v1/snapshot    the last cycle's snapshot, as `bastion eval --snapshot`
                             reads it (cycle, time, policy version in X-Bastion-* headers)
    POST /api/v1/check       may this order be sent? (trader)
    POST /api/v1/orders      an order was sent: remember it (trader)
    POST /api/v1/breakers/reset
                             reset a tripped breaker (operator); `by`, when sent, must
                             name the caller (else 422): the record names the token's
    POST /-/reload           reload the policies now (operator); a body
                             {"accept_removal": [...]} accepts changes that remove
                             protection (officer)
    POST /api/v1/locks/release
                             release a history-protection lock (officer): {"lock": ID,
                             "reason": ...}; `by`, when sent, must name the caller
    GET  /api/v1/silences    alert silences, active and recently expired
    POST /api/v1/silences    silence alerts matching labels until a time, with a reason
                             (operator; audited)
    DELETE /api/v1/silences  end a silence now: {"id": ..., "reason": ...} (operator)

Who may call what is `endpoints()` (the README's role table): without an authenticator
every caller is `LOCAL`; with one, a request without a known `Authorization: Bearer`
token is refused 401, one whose role is too low 403 — each refusal counted
(`bastion_auth_refusals_total{status,reason}`), logged (`auth_refused`, with the
principal, never the token) and audited (`view.auth_refused`). The probes and /metrics
are open unless `auth_metrics`.

The edge, before any view sees a request: bodies up to 64 KiB (413 over it; the body is
read off, up to 4 MiB, so that the client gets its answer, then the connection closes),
read within `body_timeout_s` (408 and the connection closed after it), JSON checked by
`http_body` (422: bounded numbers, clean text). Request line and headers: 16 KiB and
`header_timeout_s` (`http_protocol`). Every answer is JSON but /metrics, carries
`X-Request-Id` (the client's, when well-formed) and `Cache-Control: no-store`, and every
request is logged once as `http_request` with that id bound (at debug for the probes
and /metrics below 400, and for a check answered 200, which the view logs at info as
`order_checked` with the request id and the principal); an answer of 400 or more
from a view is cut to a few KiB; a failure inside is a 500 that names the request id,
never a traceback. Bodies are never logged.

Where each part lives: this module has the view protocol, the edge (request id,
logging, 500), the routing and the server thread; `http_app` the role table and the
actions; `http_body` the JSON checks; `http_protocol` the uvicorn protocol with header
bounds. The paths of the role table go straight from the edge to `http_app.App`, a plain
ASGI application (a check is answered in well under a millisecond of CPU: a router,
middleware layers and request objects were a third of it); Starlette answers every
other path (404, a trailing slash redirected), as it always has.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.service.auth import Authenticator, Principal
from bastion.service.http_app import (
    App,
    Endpoint,
    Limits,
    endpoints,
    json_response,
    request_header,
)
from bastion.service.http_protocol import bounded_protocol
from bastion.service.logs import new_correlation_id
from bastion.service.metrics import ServiceMetrics
from bastion.service.status_page import page as status_page

logger = structlog.get_logger("bastion.service")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_RAW = REQUEST_ID_HEADER.lower().encode("latin-1")
_NO_STORE = (b"cache-control", b"no-store")
# A client's id is echoed into headers and logs: accept only short, plain tokens.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})  # scraped every few seconds
# A check answered 200 is logged at info by the view (`order_checked`, with the request id
# and the principal): a second line per check would cost a tenth of the HTTP front's CPU.
_VIEW_LOGGED = ("POST", "/api/v1/check", 200)
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]


class ServiceView(Protocol):
    """What the endpoints read and trigger; implemented by the runner."""

    def live(self) -> bool: ...

    def ready(self) -> tuple[bool, list[str]]: ...

    def policies(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def overview(self, principal: Principal) -> dict[str, Any]: ...

    def snapshot(self, account: str | None = None) -> tuple[int, dict[str, Any]]: ...

    def reload(
        self, principal: Principal, accept_removal: Sequence[str]
    ) -> tuple[int, dict[str, Any]]: ...

    def check(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def report_order(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def reset_breaker(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def release_lock(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def escalate(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def clear_escalation(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def promote(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def rollback(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def silences(self) -> dict[str, Any]: ...

    def silence(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def expire_silence(self, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]: ...

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None: ...


__all__ = ["Endpoint", "HttpServer", "Limits", "ServiceView", "build_app", "endpoints"]


class _Edge:
    """Request id, `Cache-Control`, the one `http_request` event, and 500 on a failure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(request_header(scope, b"x-request-id"))
        method, path = scope["method"], scope["path"]
        responded = False

        async def send_marked(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
                # Appended: no answer of ours sets either (a MutableHeaders would look).
                message["headers"] = [
                    *message.get("headers", ()),
                    (_REQUEST_ID_RAW, request_id.encode("latin-1")),
                    _NO_STORE,
                ]
                status = int(message["status"])
                quiet = (path in _QUIET_PATHS and status < 400) or (
                    (method, path, status) == _VIEW_LOGGED
                )
                # Logged before the bytes go out, so that the event exists by the time
                # the client has its answer (tests and tracing rely on the order).
                (logger.debug if quiet else logger.info)(
                    "http_request",
                    method=method[:16],
                    path=path[:256],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    request_id=request_id,  # also bound; explicit so that captured logs show it
                    principal=scope.get("bastion", {}).get("principal"),
                )
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_marked)
            except Exception:  # any bug answers 500 (never a 2xx), logged with its traceback
                logger.exception("http_handler_failed", method=method[:16], path=path[:256])
                if not responded:
                    failed = json_response(
                        500, {"error": "internal error", "request_id": request_id}
                    )
                    await failed(scope, receive, send_marked)


def _request_id(supplied: str | None) -> str:
    if supplied is not None and _REQUEST_ID.fullmatch(supplied):
        return supplied
    return new_correlation_id()


class _Routes:
    """The role table's paths straight to `App`; any other to Starlette's router."""

    def __init__(self, app: App, other: ASGIApp) -> None:
        self.app, self.other = app, other
        self.paths = frozenset(app.table)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.app(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def build_app(
    view: ServiceView,
    metrics: ServiceMetrics,
    *,
    authenticator: Authenticator | None = None,
    auth_metrics: bool = False,
    limits: Limits | None = None,
) -> ASGIApp:
    """The ASGI application (no server): the edge, the routes, the 404 answer."""
    app = App(view, metrics, authenticator, auth_metrics, limits or Limits())

    async def not_found(request: Request, _exc: Exception) -> Response:
        return json_response(404, {"error": "not found", "path": request.url.path[:256]})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return json_response(status, {"error": getattr(exc, "detail", "error")})

    async def serve(request: Request) -> Response:  # never reached: _Routes sends these
        return await app.serve(request.scope, request.receive)

    # The same routes as the table, so that Starlette redirects a trailing slash to them
    # and answers 404 for the rest, in JSON; a request for a table path never gets here.
    other = Starlette(
        routes=[
            *(Route(path, serve, methods=_ANY_METHOD) for path in app.table),
            # GET /: the status page's files (open: no data; it reads the API with a token)
            *status_page.routes(auth=authenticator is not None),
        ],
        exception_handlers={404: not_found, HTTPException: http_error},
    )
    return _Edge(_Routes(app, other))


LOOP_LAG_EVERY_S = 0.05  # how often the HTTP event loop's lateness is sampled


async def watch_loop_lag(
    observe: Callable[[float], None], every_s: float = LOOP_LAG_EVERY_S
) -> None:
    """Forever: sleep `every_s` on the running loop and report how late it woke.

    A request that arrives while the loop is busy elsewhere (a collector pause, a cycle
    holding the GIL, a slow handler) waits at least that long before it is read; the
    order check's own histogram starts after the body is read and cannot see it."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        observe(max(0.0, loop.time() - due))


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, observe_lag: Callable[[float], None]) -> None:
        super().__init__(config)
        self._observe_lag = observe_lag

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Signals belong to `bastion serve`'s main thread, never to this server."""
        yield

    async def main_loop(self) -> None:
        """uvicorn's loop, with the loop-lag probe beside it for as long as it serves."""
        probe = asyncio.create_task(watch_loop_lag(self._observe_lag))
        try:
            await super().main_loop()
        finally:
            probe.cancel()


class HttpServer:
    """The endpoints above, served by uvicorn on a background thread until `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        view: ServiceView,
        metrics: ServiceMetrics,
        *,
        authenticator: Authenticator | None = None,
        auth_metrics: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.limits = limits or Limits()
        self.tls = tls_cert is not None
        self._app = build_app(
            view,
            metrics,
            authenticator=authenticator,
            auth_metrics=auth_metrics,
            limits=self.limits,
        )
        self._tls_cert, self._tls_key = tls_cert, tls_key
        self._observe_lag = metrics.http_loop_lag_seconds.observe
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve. Raises OSError when the address is taken or not local, and
        ssl.SSLError / OSError when the certificate or key cannot be used."""
        if self._server is not None:
            raise RuntimeError("the HTTP server is already running")
        limits = self.limits
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self._requested_port,
            http=bounded_protocol(limits.max_header_bytes, limits.header_timeout_s),
            lifespan="off",
            log_config=None,  # our logging is configured by bastion serve
            access_log=False,  # `http_request` events replace it
            server_header=False,
            proxy_headers=False,  # X-Forwarded-For is not trusted
            backlog=limits.backlog,
            timeout_keep_alive=limits.keep_alive_s,
            timeout_graceful_shutdown=limits.shutdown_timeout_s,
            ssl_certfile=self._tls_cert,
            ssl_keyfile=self._tls_key,
        )
        config.load()  # here, not on the thread: a bad certificate raises to the caller
        listener = _bind(self.host, self._requested_port, limits.backlog)
        server = _Server(config, self._observe_lag)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="bastion-http", daemon=True
        )
        self._server, self._socket, self._thread = server, listener, thread
        thread.start()
        while not server.started and thread.is_alive():
            time.sleep(0.005)
        if not server.started:
            self._server = self._thread = None
            listener.close()
            raise OSError(f"the HTTP server did not start on {self.host}:{self.port}")
        logger.info("http_server_started", host=self.host, port=self.port, url=self.url)

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice or before start()."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(self.limits.shutdown_timeout_s + 5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        logger.info("http_server_stopped", host=self.host)

    @property
    def port(self) -> int:
        """The bound port once started (the ephemeral one for port 0), else the requested."""
        if self._socket is None:
            return self._requested_port
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP,
    # and without it Nagle and delayed ACKs add 40 ms to every answer written in two parts.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    return listener
