"""The unit slip at reload: a running service hot-loads a set with a lint warning,
serves it, logs the warning and lists it in the reload's audit record."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.cli.main import main
from bastion.service.audit import AuditTrail, read_records, verify
from bastion.service.auditor import Auditor
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloaded, PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES
from tests.lint.test_units import REV_OVERLAY

AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
PHRASE = "3 % is written 3; 0.03 means 0.03 %"


def _running_service(tmp_path: Path) -> tuple[Service, Path]:
    """A service on a copy of the shipped policies, its reloads recorded and audited
    as `bastion serve` wires them."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    feed = make_feed("sim", {}, wall=ManualClock(AS_OF), speed=60.0, seed=7, environ={})
    holder: list[Service] = []
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder[0], event)
    )
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    service.auditor = Auditor(AuditTrail(tmp_path / "audit", clock=feed.now))
    holder.append(service)
    return service, policies


def test_reload_when_new_set_has_a_unit_slip_then_served_logged_and_audited(
    tmp_path: Path,
) -> None:
    """The rev overlay's 0.03 loads (a warning is not an error), and the warning is in
    the log (with file:line:col) and in the policy_reloaded audit record."""
    service, policies = _running_service(tmp_path)
    (policies / "rev-accounts.yaml").write_text(REV_OVERLAY)
    with capture_logs() as logs:
        event = service.reloader.reload("watch")
    assert isinstance(event, PolicyReloaded)
    assert "BreakerPolicy/rev-breakers" in event.changed
    assert [w.code for w in event.warnings] == ["BST511"]
    (logged,) = [entry for entry in logs if entry["event"] == "policy_lint_warning"]
    assert logged["log_level"] == "warning" and logged["code"] == "BST511"
    assert logged["where"] == f"{policies / 'rev-accounts.yaml'}:13:18"
    assert PHRASE in logged["message"] and logged["version"] == event.version
    (reloaded,) = [entry for entry in logs if entry["event"] == "policy_reloaded"]
    assert reloaded["warnings"] == 1
    (record,) = [r for r in read_records(tmp_path / "audit") if r.kind == "policy_reloaded"]
    (warning,) = record.data["warnings"]
    assert warning["code"] == "BST511" and PHRASE in warning["message"]
    assert (warning["file"], warning["line"], warning["column"]) == (
        str(policies / "rev-accounts.yaml"),
        13,
        18,
    )
    assert verify(tmp_path / "audit").ok


def test_post_reload_when_new_set_has_a_unit_slip_then_200_lists_the_warning(
    tmp_path: Path,
) -> None:
    """POST /-/reload answers 200 (the set serves) and names the warning."""
    service, policies = _running_service(tmp_path)
    (policies / "rev-accounts.yaml").write_text(REV_OVERLAY)
    status, body = service.reload(Principal("otto", Role.OPERATOR))
    assert status == 200 and body["reloaded"] is True
    (warning,) = body["warnings"]
    assert warning.startswith(f"{policies / 'rev-accounts.yaml'}:13:18: BST511 ")
    assert PHRASE in warning


def test_reload_when_new_set_is_clean_then_no_warning_logged_or_audited(
    tmp_path: Path,
) -> None:
    """The shipped set reloads without a warning line, and its record lists none."""
    service, policies = _running_service(tmp_path)
    (policies / "com-accounts.yaml").write_text(
        (policies / "com-accounts.yaml").read_text().replace("threshold: 3\n", "threshold: 2\n")
    )
    with capture_logs() as logs:
        event = service.reloader.reload("watch")
    assert isinstance(event, PolicyReloaded) and event.warnings == ()
    assert [e for e in logs if e["event"] == "policy_lint_warning"] == []
    (record,) = [r for r in read_records(tmp_path / "audit") if r.kind == "policy_reloaded"]
    assert record.data["warnings"] == []


def test_serve_when_started_on_a_set_with_a_unit_slip_then_logged_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bastion serve` starting on the slip serves it, logs policy_lint_warning and
    lists the warning in the service_started record."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "rev-accounts.yaml").write_text(REV_OVERLAY)
    audit = tmp_path / "audit"
    code = main(["serve", "--once", "--policies", str(policies), "--audit", str(audit)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "policy_lint_warning" in out + err and "BST511" in out + err
    (started,) = [r for r in read_records(audit) if r.kind == "service_started"]
    (warning,) = started.data["lint_warnings"]
    assert warning["code"] == "BST511" and PHRASE in warning["message"]
