"""Who may call what: every role × every endpoint from one table, and what a refusal
does (401 / 403 / 503, counted, logged with the principal, audited), over real HTTP
with `--auth` against a fake view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bastion.service.auth import Role
from bastion.service.http import HttpServer, endpoints
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import (  # noqa: F401
    PRINCIPALS,
    REQUEST_BODIES,
    TOKENS,
    FakeView,
    Reply,
    bearer,
    call,
    default_logging,
    serving,
    validate_schema,
    write_auth_file,
)

# The role table (README "Security"): the least role of each endpoint; None: open.
ROLE_TABLE: dict[tuple[str, str], Role | None] = {
    ("GET", "/metrics"): None,
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/api/v1/openapi.json"): Role.VIEWER,
    ("GET", "/api/v1/policies"): Role.VIEWER,
    ("GET", "/api/v1/status"): Role.VIEWER,
    ("GET", "/api/v1/overview"): Role.VIEWER,
    ("GET", "/api/v1/snapshot"): Role.VIEWER,
    ("POST", "/api/v1/check"): Role.TRADER,
    ("POST", "/api/v1/orders"): Role.TRADER,
    ("POST", "/api/v1/breakers/reset"): Role.OPERATOR,
    ("POST", "/-/reload"): Role.OPERATOR,
    ("POST", "/api/v1/locks/release"): Role.OFFICER,
    ("POST", "/-/promote"): Role.OFFICER,
    ("POST", "/-/rollback"): Role.OFFICER,
    ("GET", "/api/v1/silences"): Role.VIEWER,
    ("POST", "/api/v1/silences"): Role.OPERATOR,
    ("DELETE", "/api/v1/silences"): Role.OPERATOR,
    ("POST", "/api/v1/escalations"): Role.OPERATOR,
    ("DELETE", "/api/v1/escalations"): Role.OPERATOR,
}
BODIES = {path: body for path, (_schema, body) in REQUEST_BODIES.items()}
CALLERS = [None, *PRINCIPALS]  # no token, then one principal per role


class Served:
    def __init__(self, http: HttpServer, view: FakeView, metrics: ServiceMetrics, auth: Path):
        self.http, self.view, self.metrics, self.auth = http, view, metrics, auth

    def call(
        self, method: str, path: str, caller: str | None = None, body: bytes | None = None
    ) -> Reply:
        if body is None and method == "POST":
            body = json.dumps(BODIES[path]).encode() if path in BODIES else b""
        headers = bearer(caller) if caller else {}
        return call(self.http.url + path, method=method, body=body, headers=headers)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server with an --auth file of four principals, one per role."""
    auth = write_auth_file(tmp_path_factory.mktemp("auth") / "principals.yaml")
    view, metrics = FakeView(), ServiceMetrics()
    with serving(view, metrics, auth_file=auth) as http:
        yield Served(http, view, metrics, auth)


@pytest.fixture
def served(module_server: Served) -> Served:
    """The module's server, its view back to its defaults and its file to four lines."""
    vars(module_server.view).update(vars(FakeView()))
    write_auth_file(module_server.auth)
    return module_server


def _refusals(metrics: ServiceMetrics) -> dict[tuple[str, str], float]:
    text = metrics.render()[0].decode()
    return {
        (sample.labels["status"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bastion_auth_refusals_total"
    }


def test_endpoints_when_listed_then_the_role_table() -> None:
    """The server's endpoints and their roles are the table the README documents."""
    listed = {(e.method, e.path): e.role for e in endpoints()}
    assert listed == ROLE_TABLE


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), list(ROLE_TABLE))
def test_request_when_role_table_applied_then_allowed_401_or_403(
    served: Served, method: str, path: str, caller: str | None
) -> None:
    """Each endpoint × each caller: open endpoints answer everyone; otherwise no token
    is 401, a role below the endpoint's is 403 (the view never called), one at or above
    it reaches the view as that principal."""
    required = ROLE_TABLE[(method, path)]
    reply = served.call(method, path, caller)
    if required is None:
        assert reply.status == 200
    elif caller is None:
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json()["reason"] == "missing_token"
        validate_schema("AuthRefused", reply.json())
    elif PRINCIPALS[caller] < required:
        assert reply.status == 403
        assert reply.json()["reason"] == "role_too_low"
        assert f"needs {required.label}" in reply.json()["error"]
        validate_schema("AuthRefused", reply.json())
        assert served.view.calls == []
    else:
        assert reply.status in (200, 202), reply.body
        if method == "POST":
            assert [name for _, name, _ in served.view.calls] == [caller]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_probe_when_auth_metrics_then_viewer_needed(
    tmp_path: Path, path: str, caller: str | None
) -> None:
    """With --auth-metrics the probes and /metrics need a token too (any role)."""
    auth = write_auth_file(tmp_path / "principals.yaml")
    with serving(FakeView(), auth_file=auth, auth_metrics=True) as http:
        reply = call(http.url + path, headers=bearer(caller) if caller else {})
    assert reply.status == (401 if caller is None else 200)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer nope", "unknown_token"),
        ("Basic dG9tOnRva2VuLXRvbQ==", "malformed_header"),
        ("Bearer", "malformed_header"),
        ("Bearer " + "x" * 600, "malformed_header"),
    ],
)
def test_request_when_token_unknown_or_malformed_then_401_counted_logged_audited(
    served: Served, header: str, reason: str
) -> None:
    """A refusal is counted by status and reason, logged as `auth_refused` without the
    token, and handed to the view's audit (`auth_refused`); the check answer says
    `approved: false`."""
    before = _refusals(served.metrics)[("401", reason)]
    with capture_logs() as entries:
        reply = call(
            served.http.url + "/api/v1/check",
            method="POST",
            body=b"{}",
            headers={"Authorization": header},
        )
    assert reply.status == 401
    assert reply.json()["approved"] is False and reply.json()["reason"] == reason
    assert _refusals(served.metrics)[("401", reason)] == before + 1
    (event,) = [e for e in entries if e["event"] == "auth_refused"]
    assert (event["status"], event["reason"], event["principal"]) == (401, reason, None)
    refusal = {"principal": None, "method": "POST", "path": "/api/v1/check", "status": 401}
    assert served.view.refusals == [{**refusal, "reason": reason}]
    assert "nope" not in repr(entries) and "dG9t" not in repr(entries)


def test_request_when_role_too_low_then_403_logged_with_principal_never_token(
    served: Served,
) -> None:
    """A 403 names the principal (in the answer, the log, the audit), never the token."""
    with capture_logs() as entries:
        reply = served.call("POST", "/-/reload", "tom")
    assert reply.status == 403 and reply.json()["reloaded"] is False
    (event,) = [e for e in entries if e["event"] == "auth_refused"]
    assert (event["principal"], event["status"], event["reason"]) == ("tom", 403, "role_too_low")
    request_event = next(e for e in entries if e["event"] == "http_request")
    assert request_event["principal"] == "tom"
    assert served.view.refusals[0]["principal"] == "tom"
    assert TOKENS["tom"] not in repr(entries)


def test_reset_when_by_left_out_then_view_gets_the_tokens_principal(served: Served) -> None:
    """The identity comes from the token: a reset without `by` reaches the view as the
    operator whose token it is."""
    reply = served.call("POST", "/api/v1/breakers/reset", "olga")
    assert reply.status == 202
    validate_schema("ResetQueued", reply.json())
    assert served.view.calls[0][:2] == ("reset_breaker", "olga")


def test_reset_when_by_names_someone_else_then_422_and_nothing_reaches_the_view(
    served: Served,
) -> None:
    """`by` must equal the caller: naming another is 422, the view never called."""
    body = json.dumps({**BODIES["/api/v1/breakers/reset"], "by": "alice"}).encode()
    reply = served.call("POST", "/api/v1/breakers/reset", "olga", body)
    assert reply.status == 422
    answer = reply.json()
    assert answer["queued"] is False and [e["path"] for e in answer["errors"]] == ["by"]
    validate_schema("ResetRefused", answer)
    assert served.view.calls == []
    same = json.dumps({**BODIES["/api/v1/breakers/reset"], "by": "olga"}).encode()
    assert served.call("POST", "/api/v1/breakers/reset", "olga", same).status == 202


@pytest.mark.parametrize(("caller", "status"), [("olga", 403), ("oscar", 200)])
def test_reload_when_accepting_removal_then_officer_only(
    served: Served, caller: str, status: int
) -> None:
    """Accepting a change that removes protection needs an officer; an operator's
    attempt is 403 and nothing is reloaded."""
    body = json.dumps({"accept_removal": ["default-breakers:drawdown"]}).encode()
    reply = served.call("POST", "/-/reload", caller, body)
    assert reply.status == status
    expected = [("reload", caller, ["default-breakers:drawdown"])] if status == 200 else []
    assert served.view.calls == expected


@pytest.mark.parametrize(
    "body", [b"[]", b'{"accept": []}', b'{"accept_removal": "x"}', b'{"accept_removal": [""]}']
)
def test_reload_when_body_not_accept_removal_then_422(served: Served, body: bytes) -> None:
    """The reload body is nothing or {"accept_removal": [names]}: anything else is 422."""
    reply = served.call("POST", "/-/reload", "oscar", body)
    assert reply.status == 422 and reply.json()["reloaded"] is False
    assert served.view.calls == []


def test_auth_file_when_line_removed_then_token_revoked_at_next_request(served: Served) -> None:
    """Revocation: remove the principal's line; the file is re-read when it changes, and
    the very next request with the old token is 401."""
    assert served.call("GET", "/api/v1/status", "vera").status == 200
    write_auth_file(served.auth, {name: r for name, r in PRINCIPALS.items() if name != "vera"})
    reply = served.call("GET", "/api/v1/status", "vera")
    assert (reply.status, reply.json()["reason"]) == (401, "unknown_token")
    assert served.call("GET", "/api/v1/status", "tom").status == 200


def test_auth_file_when_broken_while_serving_then_fails_closed_until_fixed(
    served: Served,
) -> None:
    """A file that no longer loads accepts no token (503, counted), never the old list;
    the open probes keep answering; fixing the file restores access."""
    served.auth.write_text("principals:\n  - {name: tom, role: king, token_sha256: x}\n")
    before = _refusals(served.metrics)[("503", "auth_file_invalid")]
    reply = served.call("GET", "/api/v1/status", "oscar")
    assert (reply.status, reply.json()["reason"]) == (503, "auth_file_invalid")
    assert _refusals(served.metrics)[("503", "auth_file_invalid")] == before + 1
    assert served.call("GET", "/healthz").status == 200
    write_auth_file(served.auth)
    assert served.call("GET", "/api/v1/status", "oscar").status == 200
