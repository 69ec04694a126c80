"""The trail on real engine output: crash-day decisions and order checks, written and
read back exactly, across a restart, verified intact."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.audit import AuditTrail, read_records, verify
from tests.conftest import POLICIES, ROOT
from tests.service.audit_support import KEY, StepClock, files_of


def test_audit_when_real_crash_day_decisions_written_then_read_back_and_intact(
    tmp_path: Path,
) -> None:
    """Every crash-day decision goes in as `decision_made` with its full record, comes
    back equal to `Decision.to_dict()` (as JSON), and the keyed chain verifies."""
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    assert decisions
    clock = StepClock(snapshot.as_of, timedelta(milliseconds=5))
    with AuditTrail.open(tmp_path, clock=clock, key=KEY, max_bytes=16_000) as trail:
        trail.append("service_started", principal="local", adapter="replay")
        for decision in decisions:
            trail.append(
                "decision_made", subject=decision.subject.label(), decision=decision.to_dict()
            )
    with AuditTrail.open(tmp_path, clock=clock, key=KEY, max_bytes=16_000) as trail:
        trail.append("service_stopped", principal="local", reason="SIGTERM")
    result = verify(tmp_path, key=KEY)
    assert result.ok, result.problems
    assert result.records == len(decisions) + 2 and result.files == len(files_of(tmp_path))
    written = list(read_records(tmp_path, kinds={"decision_made"}))
    expected = [json.loads(json.dumps(d.to_dict(), default=str)) for d in decisions]
    assert [r.data["decision"] for r in written] == expected
    assert [r.subject for r in written] == [d.subject.label() for d in decisions]
