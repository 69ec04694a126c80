"""The service's audit wiring: what is recorded, and a trail that cannot be written
turns the service not ready, is counted and alerted, and acknowledges nothing."""

from __future__ import annotations

import errno
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.audit import AuditTrail, read_records, verify
from bastion.service.auditor import Auditor
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES, ROOT

AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SIM_OPEN = b'{"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}'
TOM = Principal("tom", Role.TRADER)
ALICE = Principal("alice", Role.OPERATOR)


class BrokenTrail(AuditTrail):
    """A real trail whose writes fail with ENOSPC while `broken` is set, as a full disk
    makes them: the trail's own failure handling runs."""

    broken = False

    def _write(self, *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super()._write(*args, **kwargs)


def _service(tmp_path: Path, trail: AuditTrail) -> Service:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    wall = ManualClock(AS_OF)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), state=State())
    service.auditor = Auditor(
        trail, on_failed=service.persist_failed, on_recovered=service.persist_recovered
    )
    return service


def _clock() -> datetime:
    return AS_OF


def test_decisions_when_a_cycle_decides_then_each_is_one_verifiable_record(
    tmp_path: Path,
) -> None:
    """Every decision of a real crash-day evaluation is a record with its inputs; the
    trail verifies."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    compiled.close()
    assert decisions
    with AuditTrail.open(tmp_path, clock=_clock) as trail:
        assert Auditor(trail).decisions(decisions)
    records = list(read_records(tmp_path))
    assert [r.kind for r in records] == ["decision_made"] * len(decisions)
    assert records[0].data["decision"]["id"] == decisions[0].id
    assert verify(tmp_path).ok


def test_service_when_audit_write_fails_then_not_ready_counted_alerted_and_fail_closed(
    tmp_path: Path,
) -> None:
    """A failing trail: /readyz reason, bastion_persist_failures_total{what="audit"}, a
    critical alert; a check answers 503 (never an approval) and a reset is not queued."""
    trail = BrokenTrail.open(tmp_path / "audit", clock=_clock)
    service = _service(tmp_path, trail)
    service.cycle()
    assert service.ready()[0]
    raised: list[Any] = []
    assert service.alerts is not None
    service.alerts.raise_alert = raised.append  # type: ignore[method-assign]
    trail.broken = True

    status, answer = service.check(SIM_OPEN, TOM)

    assert status == 503
    assert answer["approved"] is False
    ready, reasons = service.ready()
    assert not ready
    assert any(reason.startswith("audit write failed") for reason in reasons)
    counted = service.metrics.registry.get_sample_value(
        "bastion_persist_failures_total", {"what": "audit"}
    )
    assert counted is not None and counted >= 1
    assert [(a.kind, a.severity) for a in raised] == [("persist_failed", "critical")]
    reset = b'{"breaker": "portfolio_loss", "subject": "portfolio:all", "reason": "r"}'
    status, _ = service.reset_breaker(reset, ALICE)
    assert status in (409, 503)
    assert service.pending_resets() == []
    trail.close()


def test_service_when_audit_write_works_again_then_ready_and_the_gap_is_recorded(
    tmp_path: Path,
) -> None:
    """Recovery within a cycle: ready again, and the trail records how many appends were
    lost."""
    trail = BrokenTrail.open(tmp_path / "audit", clock=_clock)
    service = _service(tmp_path, trail)
    service.cycle()
    trail.broken = True
    assert service.check(SIM_OPEN, TOM)[0] == 503
    trail.broken = False
    service.cycle()  # even a cycle that decides nothing tries the trail again

    status, answer = service.check(SIM_OPEN, TOM)

    assert status == 200, answer
    assert service.ready()[0]
    trail.close()
    kinds = [r.kind for r in read_records(tmp_path / "audit")]
    assert "audit_write_failed" in kinds
    assert kinds[-1] == "order_checked"
    assert verify(tmp_path / "audit").ok


@pytest.mark.parametrize("principal", [TOM, Principal("local", Role.OFFICER)])
def test_check_when_answered_then_the_record_names_the_principal_not_the_body(
    tmp_path: Path, principal: Principal
) -> None:
    """The identity in the record is the caller's, whatever the body says."""
    with AuditTrail.open(tmp_path / "audit", clock=_clock) as trail:
        service = _service(tmp_path, trail)
        service.cycle()
        body = SIM_OPEN.replace(b"{", b'{"metadata": {"by": "mallory"}, ', 1)
        assert service.check(body, principal)[0] == 200
    (record,) = [r for r in read_records(tmp_path / "audit") if r.kind == "order_checked"]
    assert record.principal == principal.name


def test_append_when_not_synced_then_on_disk_at_once_and_the_chain_verifies(
    tmp_path: Path,
) -> None:
    """A check's record (sync=False) is in the file as soon as append returns (a kill -9
    loses nothing); sync() and close() fsync it; the chain is one chain."""
    trail = AuditTrail.open(tmp_path, clock=_clock)
    trail.append("order_checked", principal="tom", sync=False, outcome="approved")
    assert [r.kind for r in read_records(tmp_path)] == ["order_checked"]
    trail.sync()
    trail.append("order_reported", principal="tom", order_id="T-1")  # synced: both
    trail.append("order_checked", principal="tom", sync=False, outcome="denied")
    trail.close()  # fsyncs the last one
    kinds = [r.kind for r in read_records(tmp_path)]
    assert kinds == ["order_checked", "order_reported", "order_checked"]
    assert verify(tmp_path).ok
