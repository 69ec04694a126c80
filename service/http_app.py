"""The endpoints' logic behind `service.http`: who may call what, the body's bounds, and
one method per action, answered from the view (see `service.http` for the API).

`endpoints()` is the role table; `App` is the plain ASGI application every path of the
table goes to (no router, no request object: `service.http` sends it those paths): it
answers 405 itself (with an Allow header), authenticates and authorises (401 / 403 /
503, each counted, logged and audited), reads the body within its bounds (413, 408),
checks it (`http_body`: 422) and then calls the view — on a worker thread, but for a
check, which is answered on the event loop (`_INLINE`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bastion.service.auth import LOCAL, Authenticator, Principal, Refusal, Role
from bastion.service.http_body import BodyRefused, check_json_body
from bastion.service.metrics import ServiceMetrics

if TYPE_CHECKING:
    from bastion.service.http import ServiceView

logger = structlog.get_logger("bastion.service")

_JSON = "application/json"
_ERROR_ANSWER_BYTES = 4096  # a view's answer of 400 or more is cut to about this
OPENAPI_PATH = Path(__file__).with_name("openapi.json")


# Actions run on the event loop itself: a check decides in memory and writes its audit
# record without an fsync (see Auditor.order_checked), so the hop to a worker thread
# (~0.3 ms of CPU, and GIL hand-offs) would cost more than the check. Everything that
# may block on a disk (reports, resets, reloads: fsynced saves) runs in the thread pool.
_INLINE = frozenset({"post_check"})


@dataclass(frozen=True, slots=True)
class Limits:
    """The edge's bounds; tests shorten the timeouts."""

    max_body_bytes: int = 64 * 1024  # an order request is well under 1 KiB
    max_drained_bytes: int = 4 * 1024 * 1024  # read off an oversized body, then close
    body_timeout_s: float = 10.0  # from the end of the headers to the end of the body
    header_timeout_s: float = 10.0  # from the first byte to the end of the headers
    max_header_bytes: int = 16 * 1024
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    backlog: int = 2048  # connections the kernel queues before accept
    shutdown_timeout_s: int = 5  # stop() waits this long for requests in flight


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    role: Role | None  # None: open to anyone
    action: str  # the _App method that answers
    body: bool = False  # reads a JSON body (checked at the edge)
    refused: Mapping[str, Any] = field(default_factory=dict)  # in every refusal's body


_ESCALATIONS = "/api/v1/escalations"  # POST sets a manual escalation, DELETE clears it


def endpoints(*, auth_metrics: bool = False) -> tuple[Endpoint, ...]:
    """Every endpoint and the least role that may call it (the README's role table)."""
    probe = Role.VIEWER if auth_metrics else None
    return (
        Endpoint("GET", "/metrics", probe, "get_metrics"),
        Endpoint("GET", "/healthz", probe, "get_healthz"),
        Endpoint("GET", "/readyz", probe, "get_readyz"),
        Endpoint("GET", "/api/v1/openapi.json", Role.VIEWER, "get_openapi"),
        Endpoint("GET", "/api/v1/policies", Role.VIEWER, "get_policies"),
        Endpoint("GET", "/api/v1/status", Role.VIEWER, "get_status"),
        # The status page's data (service.status_page), and the last cycle's snapshot.
        Endpoint("GET", "/api/v1/overview", Role.VIEWER, "get_overview"),
        Endpoint("GET", "/api/v1/snapshot", Role.VIEWER, "get_snapshot"),
        Endpoint("POST", "/api/v1/check", Role.TRADER, "post_check", True, {"approved": False}),
        Endpoint("POST", "/api/v1/orders", Role.TRADER, "post_order", True, {"recorded": False}),
        Endpoint(
            "POST", "/api/v1/breakers/reset", Role.OPERATOR, "post_reset", True, {"queued": False}
        ),
        Endpoint("POST", "/-/reload", Role.OPERATOR, "post_reload", True, {"reloaded": False}),
        Endpoint(
            "POST", "/api/v1/locks/release", Role.OFFICER, "post_release", True, {"released": False}
        ),
        # The shadow candidate in, or a kept version back (service.candidate).
        Endpoint("POST", "/-/promote", Role.OFFICER, "post_promote", True, {"promoted": False}),
        Endpoint(
            "POST", "/-/rollback", Role.OFFICER, "post_rollback", True, {"rolled_back": False}
        ),
        # Manual escalations (service.escalations): audited, like resets.
        Endpoint(
            "POST", _ESCALATIONS, Role.OPERATOR, "post_escalation", True, {"escalated": False}
        ),
        Endpoint(
            "DELETE", _ESCALATIONS, Role.OPERATOR, "delete_escalation", True, {"cleared": False}
        ),
        # Silences of alert delivery (service.alerting.api): audited, like resets.
        Endpoint("GET", "/api/v1/silences", Role.VIEWER, "get_silences"),
        Endpoint(
            "POST", "/api/v1/silences", Role.OPERATOR, "post_silence", True, {"created": False}
        ),
        Endpoint(
            "DELETE", "/api/v1/silences", Role.OPERATOR, "delete_silence", True, {"expired": False}
        ),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What an action returns: status and JSON payload (or raw bytes, for /metrics)."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        if self.raw is not None:
            return Response(self.raw, self.status, dict(self.headers), self.content_type)
        return json_response(self.status, self.payload, self.headers)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = _ENCODER.encode(payload) + "\n"
    return Response(body.encode(), status, dict(headers or {}), _JSON)


def _plain(value: Any) -> Any:
    """JSON for the values a view may hand back as they are (Decimal exactly, as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)  # Decimal, Path, enums: their text


# `json.dumps(payload, default=_plain, ensure_ascii=False)`, without building an encoder
# per answer (one per check) nor tracking containers for cycles (answers are plain data
# the views build; a cycle would fail as RecursionError, a 500): the same bytes.
_ENCODER = json.JSONEncoder(default=_plain, ensure_ascii=False, check_circular=False)


class _BodyProblem(Exception):
    def __init__(self, status: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


class App:
    """The endpoints' logic, one method per action; called as an ASGI application for
    the paths of the table (`table`) only."""

    def __init__(
        self,
        view: ServiceView,
        metrics: ServiceMetrics,
        authenticator: Authenticator | None,
        auth_metrics: bool,
        limits: Limits,
    ) -> None:
        self.view, self.metrics, self.limits = view, metrics, limits
        self.authenticator = authenticator
        self.table: dict[str, dict[str, Endpoint]] = {}
        for endpoint in endpoints(auth_metrics=auth_metrics):
            self.table.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        self._openapi: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.serve(scope, receive)
        await response(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive) -> Response:
        """The answer to one HTTP request for a path of the table."""
        path, method = scope["path"], scope["method"]
        methods = self.table[path]
        endpoint = methods.get("GET" if method == "HEAD" else method)
        if endpoint is None:
            allowed = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
            return json_response(
                405,
                {"error": f"method {method[:16]} not allowed", "allowed": allowed},
                {"Allow": ", ".join(allowed)},
            )
        principal = LOCAL
        if self.authenticator is not None and endpoint.role is not None:
            found = self.authenticator.authenticate(request_header(scope, b"authorization"))
            if isinstance(found, Refusal):  # recorded in a thread: the audit writes
                refused = await run_in_threadpool(self._refusal, found, endpoint, method, path)
                return refused.response()
            _scope_note(scope, principal=found.name)
            if not found.allows(endpoint.role):
                forbidden = await run_in_threadpool(
                    self._forbidden, found, endpoint, endpoint.role, method, path
                )
                return forbidden.response()
            principal = found
        body = b""  # a GET's action is given its query string instead (`?account=ID`)
        if endpoint.method == "GET":
            body = scope.get("query_string", b"")
        if endpoint.body:
            try:
                body = await self._read_body(scope, receive)
            except _BodyProblem as problem:
                return self._edge_refused(endpoint, problem.status, problem.message, problem.close)
        action: Callable[[Principal, bytes], Answer] = getattr(self, endpoint.action)
        if endpoint.action in _INLINE:  # CPU only, well under a millisecond: no thread hop
            return action(principal, body).response()
        answer = await run_in_threadpool(action, principal, body)
        return answer.response()

    # -- who is asking -----------------------------------------------------------------

    def _refusal(self, refusal: Refusal, endpoint: Endpoint, method: str, path: str) -> Answer:
        self._record_refusal(None, method, path, refusal.status, refusal.reason)
        headers = {"WWW-Authenticate": 'Bearer realm="bastion"'} if refusal.status == 401 else {}
        payload = {**endpoint.refused, "error": refusal.message, "reason": refusal.reason}
        return Answer(refusal.status, payload, headers=headers)

    def _forbidden(
        self, principal: Principal, endpoint: Endpoint, required: Role, method: str, path: str
    ) -> Answer:
        self._record_refusal(principal.name, method, path, 403, "role_too_low")
        message = (
            f"{principal.name} ({principal.role.label}) may not {method} {path}: "
            f"needs {required.label}"
        )
        return Answer(403, {**endpoint.refused, "error": message, "reason": "role_too_low"})

    def _record_refusal(
        self, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None:
        self.metrics.auth_refused(status, reason)
        logger.warning(
            "auth_refused",
            principal=principal,
            method=method[:16],
            path=path[:256],
            status=status,
            reason=reason,
        )
        try:  # the refusal stands whether or not the audit takes it
            self.view.auth_refused(
                principal=principal,
                method=method[:16],
                path=path[:256],
                status=status,
                reason=reason,
            )
        except Exception:
            logger.exception("auth_refusal_not_audited", status=status, reason=reason)

    # -- the body ------------------------------------------------------------------------

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The body within the bounds, else _BodyProblem (413 over the cap, 408 late)."""
        limits = self.limits
        try:
            announced = int(request_header(scope, b"content-length") or 0)
        except ValueError:
            announced = 0
        if announced > limits.max_drained_bytes:  # not worth reading off: answer, close
            raise _BodyProblem(413, self._too_large(), close=True)
        deadline = asyncio.get_running_loop().time() + limits.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        try:  # one timer for the whole body (not a task per read, as wait_for makes)
            async with asyncio.timeout_at(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _BodyProblem(400, "client disconnected", close=True)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size <= limits.max_body_bytes:
                        chunks.append(chunk)
                    elif size > limits.max_drained_bytes:
                        raise _BodyProblem(413, self._too_large(), close=True)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            late = f"request body not received within {limits.body_timeout_s:g} s"
            raise _BodyProblem(408, late, close=True) from None
        if size > limits.max_body_bytes:
            raise _BodyProblem(413, self._too_large(), close=True)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self) -> str:
        return f"body: over {self.limits.max_body_bytes} bytes; send one request per call"

    def _edge_refused(
        self, endpoint: Endpoint, status: int, message: str, close: bool = False
    ) -> Response:
        """A body refused before the view saw it, in the endpoint's shape."""
        self._count_edge_refusal(endpoint, status, message)
        headers = {"Connection": "close"} if close else {}
        return json_response(status, {**endpoint.refused, "error": message}, headers)

    def _count_edge_refusal(self, endpoint: Endpoint, status: int, message: str) -> None:
        """Counted and logged as the view counts its own refusals (check, reset)."""
        if endpoint.action == "post_check":
            self.metrics.order_checked("error", 0.0)
            logger.warning("order_checked", outcome="error", status=status, error=message[:1000])
        elif endpoint.action == "post_reset":
            self.metrics.breaker_reset("rejected")
            logger.warning(
                "breaker_reset_requested", result="rejected", status=status, error=message[:1000]
            )

    def _checked(self, endpoint: Endpoint, body: bytes) -> tuple[Any, Answer | None]:
        data, refused = check_json_body(body)
        if refused is None:
            return data, None
        return None, self._body_answer(endpoint, refused)

    def _body_answer(self, endpoint: Endpoint, refused: BodyRefused) -> Answer:
        self._count_edge_refusal(endpoint, 422, refused.message)
        return Answer(422, {**endpoint.refused, **refused.to_dict()})

    # -- actions (run in a worker thread: the view may block) ----------------------------

    def get_metrics(self, _principal: Principal, _body: bytes) -> Answer:
        body, content_type = self.metrics.render()
        return Answer(200, raw=body, content_type=content_type)

    def get_healthz(self, _principal: Principal, _body: bytes) -> Answer:
        if self.view.live():
            return Answer(200, {"status": "ok"})
        return Answer(503, {"status": "unavailable"})

    def get_readyz(self, _principal: Principal, _body: bytes) -> Answer:
        ready, reasons = self.view.ready()
        return Answer(200 if ready else 503, {"ready": ready, "reasons": list(reasons)})

    def get_openapi(self, _principal: Principal, _body: bytes) -> Answer:
        if self._openapi is None:
            self._openapi = OPENAPI_PATH.read_bytes()
        return Answer(200, raw=self._openapi, content_type=_JSON)

    def get_policies(self, _principal: Principal, _body: bytes) -> Answer:
        return Answer(200, self.view.policies())

    def get_status(self, _principal: Principal, _body: bytes) -> Answer:
        return Answer(200, self.view.status())

    def get_overview(self, principal: Principal, _body: bytes) -> Answer:
        """What the status page shows, with the buttons the caller may use."""
        return Answer(200, self.view.overview(principal))

    def get_snapshot(self, _principal: Principal, query: bytes) -> Answer:
        """The last cycle's snapshot as `bastion eval --snapshot` reads it; its cycle
        number, time and policy version in headers (the body is the bare document).
        `?account=ID`: the snapshot holding that account (with --ray, its partition's)."""
        account = parse_qs(query.decode("latin-1")).get("account", [None])[0]
        status, payload = self.view.snapshot() if account is None else self.view.snapshot(account)
        if status != 200:
            return _from_view(status, payload)
        headers = {
            "X-Bastion-Cycle": str(payload["cycle"]),
            "X-Bastion-Cycle-At": str(payload["at"]),
            "X-Bastion-Policy-Version": str(payload["policy_version"]),
            "X-Bastion-Fresh-Data": "true" if payload["fresh_data"] else "false",
        }
        if "partition" in payload:  # --ray: the partition whose snapshot it is
            headers["X-Bastion-Partition"] = str(payload["partition"])
        return Answer(200, payload["snapshot"], headers=headers)

    def post_check(self, principal: Principal, body: bytes) -> Answer:
        _data, refused = self._checked(self.table["/api/v1/check"]["POST"], body)
        return refused or _from_view(*self.view.check(body, principal))

    def post_order(self, principal: Principal, body: bytes) -> Answer:
        _data, refused = self._checked(self.table["/api/v1/orders"]["POST"], body)
        return refused or _from_view(*self.view.report_order(body, principal))

    def post_reset(self, principal: Principal, body: bytes) -> Answer:
        refused = self._refused_by(self.table["/api/v1/breakers/reset"]["POST"], body, principal)
        return refused or _from_view(*self.view.reset_breaker(body, principal))

    def post_release(self, principal: Principal, body: bytes) -> Answer:
        """A history lock released by an officer (`by`, when sent, must be the caller)."""
        refused = self._refused_by(self.table["/api/v1/locks/release"]["POST"], body, principal)
        return refused or _from_view(*self.view.release_lock(body, principal))

    def post_escalation(self, principal: Principal, body: bytes) -> Answer:
        """A position held at least at a level by an operator (`by` must be the caller)."""
        refused = self._refused_by(self.table["/api/v1/escalations"]["POST"], body, principal)
        return refused or _from_view(*self.view.escalate(body, principal))

    def delete_escalation(self, principal: Principal, body: bytes) -> Answer:
        """A manual escalation cleared by an operator (`by` must be the caller)."""
        refused = self._refused_by(self.table["/api/v1/escalations"]["DELETE"], body, principal)
        return refused or _from_view(*self.view.clear_escalation(body, principal))

    def _refused_by(self, endpoint: Endpoint, body: bytes, principal: Principal) -> Answer | None:
        """The body's refusal, or one for a `by` naming someone other than the caller.
        Without --auth there is no identity to hold `by` to (every caller is "local"):
        the view records the body's `by` then."""
        data, refused = self._checked(endpoint, body)
        if refused is not None:
            return refused
        by = data.get("by") if isinstance(data, dict) else None
        if self.authenticator is None or by is None or by == principal.name:
            return None
        shown = by[:64] if isinstance(by, str) else type(by).__name__
        message = (
            f"by: {shown!r} is not the caller ({principal.name}); leave `by` out: "
            "the record names the token's principal"
        )
        return self._body_answer(endpoint, BodyRefused(f"body: {message}", (("by", message),)))

    def post_reload(self, principal: Principal, body: bytes) -> Answer:
        endpoint = self.table["/-/reload"]["POST"]
        data, refused = self._checked(endpoint, body)
        if refused is not None:
            return refused
        accept = _accept_removal(data)
        if isinstance(accept, BodyRefused):
            return self._body_answer(endpoint, accept)
        if accept and self.authenticator is not None and not principal.allows(Role.OFFICER):
            return self._forbidden(principal, endpoint, Role.OFFICER, "POST", endpoint.path)
        status, payload = self.view.reload(principal, accept)
        return _from_view(status, {**payload, "reloaded": payload.get("reloaded", status == 200)})

    def post_promote(self, principal: Principal, body: bytes) -> Answer:
        """The shadow candidate serves (officer; the view applies the reload guard)."""
        _data, refused = self._checked(self.table["/-/promote"]["POST"], body)
        return refused or _from_view(*self.view.promote(body, principal))

    def post_rollback(self, principal: Principal, body: bytes) -> Answer:
        """A kept earlier version serves again (officer; through the reload guard)."""
        _data, refused = self._checked(self.table["/-/rollback"]["POST"], body)
        return refused or _from_view(*self.view.rollback(body, principal))

    def get_silences(self, _principal: Principal, _body: bytes) -> Answer:
        return Answer(200, self.view.silences())

    def post_silence(self, principal: Principal, body: bytes) -> Answer:
        """Hold back matching alerts (operator; `by`, when sent, must be the caller)."""
        refused = self._refused_by(self.table["/api/v1/silences"]["POST"], body, principal)
        return refused or _from_view(*self.view.silence(body, principal))

    def delete_silence(self, principal: Principal, body: bytes) -> Answer:
        """End a silence now (operator; `by`, when sent, must be the caller)."""
        refused = self._refused_by(self.table["/api/v1/silences"]["DELETE"], body, principal)
        return refused or _from_view(*self.view.expire_silence(body, principal))


def _accept_removal(data: Any) -> list[str] | BodyRefused:
    """The reload body: nothing, or {"accept_removal": ["policy-name", ...]}."""
    if data is None:
        return []
    usage = 'send no body, or {"accept_removal": ["<policy>", ...]}'
    if not isinstance(data, dict) or set(data) - {"accept_removal"}:
        return BodyRefused(f"body: {usage}", (("body", usage),))
    names = data.get("accept_removal", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        message = "must be a list of policy names"
        return BodyRefused(f"body: accept_removal: {message}", (("accept_removal", message),))
    return list(names)


def _from_view(status: int, payload: dict[str, Any]) -> Answer:
    """A view's answer; one of 400 or more is cut to a few KiB (it may quote the client)."""
    if status >= 400:
        text = json.dumps(payload, default=_plain, ensure_ascii=False)
        if len(text.encode()) > _ERROR_ANSWER_BYTES:
            payload = _bounded(payload)
    return Answer(status, payload)


def _bounded(value: Any, depth: int = 0) -> Any:
    """Strings cut to 500 characters, lists to 10 items, dicts to 20 keys, 4 levels."""
    if isinstance(value, str):
        return value if len(value) <= 500 else value[:500] + "…"
    if depth >= 4:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:20]
        return {str(k)[:128]: _bounded(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth + 1) for v in list(value)[:10]]
    return value


def request_header(scope: Scope, name: bytes) -> str | None:
    """A request header's first value (names arrive lower-case), as latin-1 text."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _scope_note(scope: Scope, **notes: Any) -> None:
    """What the edge middleware logs with the request (the principal's name)."""
    scope.setdefault("bastion", {}).update(notes)
