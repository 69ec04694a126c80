"""The status page over real HTTP on the real service: its files are open and hold no
data, GET /api/v1/overview (viewer) says what the page shows — the tripped breaker with
its value, threshold, since and cooldown, the decision and its policy version, the alert
with what a silence would match, the reloads — and which buttons the caller may use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.evaluation.facts import position_metrics
from bastion.engine.state import EscalationState
from bastion.service.alerts import AlertRaised
from bastion.service.status_page.page import HEADERS, STATIC
from tests.service.http_support import (  # noqa: F401
    bearer,
    call,
    default_logging,
    validate_schema,
)
from tests.service.status_page_support import KEY, POLICY, Desk, desk


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Desk]:
    """The one-breaker desk with --auth, no cycle yet."""
    with desk(tmp_path) as running:
        yield running


def _overview(served: Desk, caller: str = "vera") -> Any:
    """GET /api/v1/overview as `caller`, checked against its OpenAPI schema."""
    reply = call(served.url + "/api/v1/overview", headers=bearer(caller))
    assert reply.status == 200, reply.body
    validate_schema("Overview", reply.json())
    return reply.json()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/ui/status.js", "text/javascript; charset=utf-8"),
        ("/ui/status.css", "text/css; charset=utf-8"),
    ],
)
def test_page_files_when_asked_without_token_then_served_with_a_strict_policy(
    served: Desk, path: str, content_type: str
) -> None:
    """The page's files are open under --auth (they hold no data), with a CSP that allows
    this origin's script and style only, and no external URL anywhere."""
    served.trip()
    reply = call(served.url + path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    for name, value in HEADERS.items():
        assert reply.headers[name] == value
    text = reply.body.decode()
    assert "rev-01" not in text and "daily_loss_pct" not in text
    assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_page_when_head_asked_then_200_without_body(served: Desk) -> None:
    """HEAD / answers as GET / does, without the body."""
    reply = call(served.url + "/", method="HEAD")
    assert (reply.status, reply.body) == (200, b"")


def test_overview_when_no_token_then_401_and_no_data(served: Desk) -> None:
    """With --auth the data needs a viewer token: no token, 401 and nothing about the book."""
    served.trip()
    reply = call(served.url + "/api/v1/overview")
    assert reply.status == 401
    assert b"rev-01" not in reply.body


@pytest.mark.parametrize(
    ("caller", "may_reset"), [("vera", False), ("tom", False), ("olga", True), ("oscar", True)]
)
def test_overview_when_role_given_then_buttons_only_for_operator_and_above(
    served: Desk, caller: str, may_reset: bool
) -> None:
    """`you.may` follows the role table: reset, silence and escalate from operator up."""
    you = _overview(served, caller)["you"]
    assert (you["name"], you["identified"]) == (caller, True)
    assert you["may"] == {"reset": may_reset, "silence": may_reset, "escalate": may_reset}


def test_overview_when_breaker_tripped_then_value_threshold_since_and_cooldown(
    served: Desk,
) -> None:
    """The tripped breaker shows the value it tripped at, its threshold, since when,
    its cooldown and reset mode; its account is HALTED; the trip is among the decisions
    with its policy version; the critical alert is listed with its silence matchers."""
    served.trip()
    state = served.service.state.breakers[KEY]
    overview = _overview(served)
    (breaker,) = overview["breakers"]
    assert breaker["key"] == KEY
    assert (breaker["policy"], breaker["breaker"], breaker["subject"]) == (
        "desk-breakers",
        "daily_loss_pct",
        "account:rev-01",
    )
    assert breaker["status"] == "tripped"
    assert list(breaker["values"]) == ["account.daily_loss_pct"]
    assert float(breaker["values"]["account.daily_loss_pct"]) >= 6
    assert breaker["threshold"] == "account.daily_loss_pct >= 6"
    assert (breaker["cooldown_s"], breaker["reset"], breaker["severity"]) == (
        "60",
        "manual",
        "critical",
    )
    assert state.tripped_at is not None
    assert breaker["since"] == state.tripped_at.isoformat()
    assert breaker["reset_queued"] is False
    accounts = {a["id"]: a for a in overview["accounts"]}
    assert accounts["rev-01"]["trading_state"] == "HALTED"
    assert accounts["rev-01"]["breakers_not_armed"] == 1
    assert accounts["gen-01"]["trading_state"] == "ACTIVE"
    (trip,) = [d for d in overview["decisions"] if d["outcome"] == "trip"]
    assert trip["id"] == breaker["decision_id"]
    assert trip["policy_version"].startswith("sha256:")
    assert trip["subject"] == "account:rev-01"
    (alert,) = [a for a in overview["alerts"] if a["kind"] == "breaker_tripped"]
    assert alert["severity"] == "critical"
    assert alert["matchers"]["kind"] == "breaker_tripped"
    assert alert["matchers"]["breaker"] == "daily_loss_pct"
    assert alert["matchers"]["subject"] == "account:rev-01"
    assert set(alert["matchers"]) <= {"kind", "breaker", "subject", "account", "policy"}


def test_overview_when_reset_queued_then_marked_and_gone_after_the_cycle(served: Desk) -> None:
    """A queued reset is marked on its breaker; the next cycle rearms it and the
    overview lists no breaker, rev-01 ACTIVE again."""
    served.trip_then_clear()
    body = json.dumps({"breaker": "daily_loss_pct", "subject": "account:rev-01", "reason": "ok"})
    reply = call(
        served.url + "/api/v1/breakers/reset",
        method="POST",
        body=body.encode(),
        headers=bearer("olga"),
    )
    assert reply.status == 202, reply.body
    assert _overview(served)["breakers"][0]["reset_queued"] is True
    served.next_cycle()
    overview = _overview(served)
    assert overview["breakers"] == []
    assert {a["id"]: a["trading_state"] for a in overview["accounts"]}["rev-01"] == "ACTIVE"
    assert any(d["outcome"] == "reset" for d in overview["decisions"])


def test_overview_when_reloaded_and_rejected_then_both_in_the_history(served: Desk) -> None:
    """An accepted reload and a rejected one are listed, the newest first, with their
    versions and what changed or why it failed."""
    served.next_cycle()
    breakers = served.policies / "breakers.yaml"
    breakers.write_text(POLICY.replace("cooldown_s: 60", "cooldown_s: 120"))
    served.service.reloader.reload("test", principal="olga")
    breakers.write_text("apiVersion: bastion/v1\nkind: BreakerPolicy\nspec: [\n")
    served.service.reloader.reload("test", principal="olga")
    rejected, reloaded = _overview(served)["reloads"]
    assert (reloaded["outcome"], reloaded["principal"], reloaded["trigger"]) == (
        "reloaded",
        "olga",
        "test",
    )
    assert reloaded["changed"] == ["BreakerPolicy/desk-breakers"]
    assert reloaded["version"] == served.service.reloader.current.version
    assert rejected["outcome"] == "rejected"
    assert rejected["version"] == served.service.reloader.current.version  # the one kept
    assert rejected["errors"]


def test_overview_when_alert_text_is_markup_then_kept_as_data(served: Desk) -> None:
    """Alert text is untrusted: the JSON carries it as it is (the page shows it as
    text); the answer is JSON, never HTML."""
    served.next_cycle()
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    assert served.service.alerts is not None
    served.service.alerts.raise_alert(
        AlertRaised(served.service.feed.now(), "reload_rejected", "warning", hostile)
    )
    reply = call(served.url + "/api/v1/overview", headers=bearer("vera"))
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json()["alerts"][0]["summary"] == hostile


def test_overview_when_positions_escalated_then_grouped_by_level(served: Desk) -> None:
    """Escalated positions are grouped by level, the highest first, each with its
    account, symbol and breach in ATR; a shadow policy's level is marked; the last group
    counts the positions at level 0."""
    served.next_cycle()
    snapshot = served.service.last_snapshot
    assert snapshot is not None and len(snapshot.positions) >= 3
    first, second, third = snapshot.positions[:3]
    at = served.service.feed.now()
    served.service.state = replace(
        served.service.state,
        escalations={
            first.id: EscalationState(1, "caution", at, Decimal("1.20"), "esc"),
            second.id: EscalationState(2, "recovery", at, Decimal("2.50"), "esc"),
            f"{third.id}@shadow-esc": EscalationState(
                1, "caution", at, Decimal("1.1"), "shadow-esc"
            ),
        },
    )
    escalations = _overview(served)["escalations"]
    assert [(g["level"], g["level_name"]) for g in escalations] == [
        (2, "recovery"),
        (1, "caution"),
        (0, "none"),
    ]
    (recovery,) = escalations[0]["positions"]
    assert (recovery["position"], recovery["symbol"], recovery["account_id"]) == (
        second.id,
        second.symbol,
        second.account_id,
    )
    assert (recovery["breach_atr"], recovery["shadow"]) == ("2.50", False)
    live = position_metrics(second, snapshot.market.get(second.symbol)).get("breach_atr")
    expected = None if live is None else str(live.quantize(Decimal("0.01")))
    assert recovery["breach_atr_now"] == expected
    caution = {p["position"]: p for p in escalations[1]["positions"]}
    assert caution[third.id]["shadow"] is True
    assert caution[first.id]["breach_atr"] == "1.20"
    assert escalations[2]["count"] == len(snapshot.positions) - 3


@pytest.mark.parametrize(("auth", "mark"), [(True, "required"), (False, "off")])
def test_page_when_served_then_it_says_whether_a_token_is_needed(
    tmp_path: Path, auth: bool, mark: str
) -> None:
    """The page knows from its own HTML whether to ask for a token first (with --auth it
    asks before calling the API: no refused request on every visit)."""
    with desk(tmp_path, auth=auth) as running:
        text = call(running.url + "/").body.decode()
    assert f'<meta name="bastion-auth" content="{mark}">' in text


def test_page_script_when_read_then_never_builds_html_from_text() -> None:
    """The script inserts data as text nodes only: no innerHTML, outerHTML,
    insertAdjacentHTML, document.write or eval anywhere in it."""
    script = (STATIC / "status.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "textContent" in script and "createTextNode" in script
