"""Silences over the real service and HTTP front: an operator silences, a viewer lists,
a silenced alert is counted and not sent, an expiry ends it; each is audited. And the
body checks, and fail-closed when the audit trail cannot be written."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bastion.adapters.sources import ManualClock
from bastion.service.alerting.api import create_silence, expire_silence
from bastion.service.alerting.silences import Silences
from bastion.service.alerts import AlertRaised, Alerts
from bastion.service.audit import AuditTrail
from bastion.service.auditor import Auditor
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES
from tests.service.alerting.support import T0, trip
from tests.service.http_support import bearer, call, serving, write_auth_file

OLGA = Principal("olga", Role.OPERATOR)


class Collect:
    def __init__(self) -> None:
        self.alerts: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.alerts.append(alert)


def _service(tmp_path: Path, sink: Collect) -> Service:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    feed = make_feed("sim", {}, wall=ManualClock(), speed=60.0, seed=7, environ={})
    metrics = ServiceMetrics()
    holder: list[Service] = []
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder[0], event)
    )
    reloader.load_initial()
    alerts = Alerts([sink], metrics.registry)
    service = Service(feed, reloader, metrics, alerts=alerts)
    holder.append(service)
    trail = AuditTrail.open(tmp_path / "audit", clock=lambda: datetime.now(UTC), fsync=False)
    service.auditor = Auditor(trail)
    return service


def _audited(directory: Path) -> list[dict[str, object]]:
    records = [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return [record for record in records if isinstance(record, dict)]


def test_silence_when_posted_by_operator_then_matching_alerts_counted_not_sent(
    tmp_path: Path,
) -> None:
    """POST (operator) -> GET (viewer) lists it -> a matching trip is held back and
    counted, another account's is sent -> DELETE ends it -> sent again. Both audited."""
    sink = Collect()
    service = _service(tmp_path, sink)
    auth = write_auth_file(tmp_path / "principals.yaml")
    body = {"matchers": {"breaker": "daily_loss_usd", "account": "gen-*"},
            "reason": "booked loss under review", "duration_s": 3600}  # fmt: skip
    with serving(service, service.metrics, auth_file=auth) as http:
        url = http.url + "/api/v1/silences"
        created = call(url, method="POST", body=json.dumps(body).encode(), headers=bearer("olga"))
        assert created.status == 200, created.body
        silence = created.json()["silence"]
        assert (silence["created_by"], silence["status"]) == ("olga", "active")
        listed = call(url, headers=bearer("vera")).json()["silences"]
        assert [s["id"] for s in listed] == [silence["id"]]
        service.alerts.raise_alert(trip(account="gen-01"))  # type: ignore[union-attr]
        service.alerts.raise_alert(trip(account="rev-01"))  # type: ignore[union-attr]
        assert [a.details["account"] for a in sink.alerts] == ["rev-01"]
        expire = json.dumps({"id": silence["id"], "reason": "review done"}).encode()
        ended = call(url, method="DELETE", body=expire, headers=bearer("olga"))
        assert ended.status == 200 and ended.json()["silence"]["status"] == "expired"
        again = call(url, method="DELETE", body=expire, headers=bearer("olga"))
        assert again.status == 404
    service.alerts.raise_alert(trip(account="gen-02"))  # type: ignore[union-attr]
    assert [a.details["account"] for a in sink.alerts] == ["rev-01", "gen-02"]
    silenced = service.metrics.registry.get_sample_value(
        "bastion_alerts_silenced_total", {"kind": "breaker_tripped"}
    )
    assert silenced == 1
    assert service.status()["alerts"]["silences"][0]["status"] == "expired"
    service.auditor.trail.close()  # type: ignore[union-attr]
    records = _audited(tmp_path / "audit")
    kinds = [(r["kind"], r.get("principal")) for r in records if "silence" in str(r["kind"])]
    assert kinds == [("silence_created", "olga"), ("silence_expired", "olga")]


def test_silence_when_body_invalid_then_422_naming_the_field() -> None:
    """No reason, a bare *, an unknown label, too long: each refused, naming the field."""
    silences = Silences(lambda: T0)
    cases = {
        "reason": {"matchers": {"breaker": "x"}, "duration_s": 60},
        "matchers.breaker": {"matchers": {"breaker": "*"}, "reason": "r", "duration_s": 60},
        "matchers.colour": {"matchers": {"colour": "red"}, "reason": "r", "duration_s": 60},
        "duration_s": {"matchers": {"kind": "x"}, "reason": "r", "duration_s": 8 * 86400},
    }
    for field_name, body in cases.items():
        status, answer = create_silence(
            silences, lambda *a, **k: True, json.dumps(body).encode(), OLGA
        )
        assert (status, answer["errors"][0]["path"]) == (422, field_name)
    assert silences.listed() == []


def test_silence_when_audit_cannot_be_written_then_503_and_nothing_silenced() -> None:
    """Fail closed: a silence the trail does not hold is not taken (nor an expiry)."""
    silences = Silences(lambda: T0)
    body = json.dumps({"matchers": {"kind": "breaker_tripped"}, "reason": "r", "duration_s": 60})
    status, _ = create_silence(silences, lambda *a, **k: False, body.encode(), OLGA)
    assert status == 503 and silences.listed() == []
    status, answer = create_silence(silences, lambda *a, **k: True, body.encode(), OLGA)
    silence_id = answer["silence"]["id"]
    expiry = json.dumps({"id": silence_id}).encode()
    status, _ = expire_silence(silences, lambda *a, **k: False, expiry, OLGA)
    assert status == 503 and silences.silencing({"kind": "breaker_tripped"}) == silence_id


def test_silence_when_time_passes_its_end_then_no_longer_silences() -> None:
    """A silence holds from its start to ends_at (wall time), not after."""
    now = [T0]
    silences = Silences(lambda: now[0])
    body = json.dumps({"matchers": {"account": "gen-01"}, "reason": "r", "duration_s": 60})
    create_silence(silences, lambda *a, **k: True, body.encode(), OLGA)
    assert silences.silencing({"account": "gen-01"}) is not None
    now[0] = T0 + timedelta(seconds=60)
    assert silences.silencing({"account": "gen-01"}) is None


def test_silence_when_by_is_not_the_caller_then_422_and_nothing_silenced(
    tmp_path: Path,
) -> None:
    """With --auth the record names the token's principal: a `by` naming someone else
    is refused (422), as for resets; nothing is silenced."""
    service = _service(tmp_path, Collect())
    auth = write_auth_file(tmp_path / "principals.yaml")
    body = {"matchers": {"kind": "breaker_tripped"}, "reason": "r", "duration_s": 60,
            "by": "mallory"}  # fmt: skip
    with serving(service, service.metrics, auth_file=auth) as http:
        reply = call(http.url + "/api/v1/silences", method="POST",
                     body=json.dumps(body).encode(), headers=bearer("olga"))  # fmt: skip
    assert reply.status == 422 and reply.json()["created"] is False
    assert service.silences() == {"silences": []}
    service.auditor.trail.close()  # type: ignore[union-attr]
