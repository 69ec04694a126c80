"""The last cycle's snapshot over HTTP (GET /api/v1/snapshot, viewer) and `bastion serve
--record DIR`: what they write is what `bastion eval --snapshot` reads, and a cycle
reproduced from the recorded snapshot and state makes the same decisions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.state import State
from bastion.service.snapshot_record import SnapshotRecorder
from tests.conftest import POLICIES
from tests.service.http_support import bearer, call, default_logging  # noqa: F401
from tests.service.status_page_support import KEY, Desk, desk


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Desk]:
    """The one-breaker desk with --auth, no cycle yet."""
    with desk(tmp_path) as running:
        yield running


def test_snapshot_when_no_cycle_yet_then_503_saying_why(served: Desk) -> None:
    """Before the first cycle with data there is nothing to give: 503, and why."""
    reply = call(served.url + "/api/v1/snapshot", headers=bearer("vera"))
    assert reply.status == 503
    assert "no snapshot yet" in reply.json()["error"]


def test_snapshot_when_no_token_then_401(served: Desk) -> None:
    """The book's data needs a viewer token."""
    served.next_cycle()
    assert call(served.url + "/api/v1/snapshot").status == 401


def test_snapshot_when_cycled_then_the_bare_document_with_cycle_headers(
    served: Desk, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    """200 with the evaluated snapshot as the body (loadable as it is), the cycle's
    number, time and policy version in headers; `bastion eval --snapshot` reads the
    saved answer."""
    served.next_cycle()
    cycle = served.next_cycle()
    reply = call(served.url + "/api/v1/snapshot", headers=bearer("vera"))
    assert reply.status == 200
    assert reply.headers["X-Bastion-Cycle"] == "2" == str(cycle.number)
    assert reply.headers["X-Bastion-Cycle-At"] == cycle.at.isoformat()
    assert reply.headers["X-Bastion-Policy-Version"] == cycle.policy_version
    assert reply.headers["X-Bastion-Fresh-Data"] == "true"
    assert Snapshot.from_dict(json.loads(reply.body, parse_float=str)) == cycle.snapshot
    saved = tmp_path / "SNAPSHOT.json"
    saved.write_bytes(reply.body)
    code, out, err = run_cli("eval", "--policies", str(served.policies), "--snapshot", str(saved))
    assert code == 0, err
    assert "trading states:" in out


def test_snapshot_when_account_named_then_the_snapshot_holding_it_else_404(served: Desk) -> None:
    """`?account=ID` (what `bastion serve --ray` needs) works on a single service too:
    the snapshot when it holds the account, 404 naming the accounts when not."""
    cycle = served.next_cycle()
    assert cycle.snapshot is not None
    account = cycle.snapshot.accounts[0].id
    reply = call(served.url + f"/api/v1/snapshot?account={account}", headers=bearer("vera"))
    assert reply.status == 200
    assert "X-Bastion-Partition" not in reply.headers
    reply = call(served.url + "/api/v1/snapshot?account=nobody-1", headers=bearer("vera"))
    assert reply.status == 404
    assert account in reply.json()["error"]


def test_record_when_cycles_run_then_newest_kept_and_each_reproduces_its_cycle(
    served: Desk, tmp_path: Path
) -> None:
    """Each cycle writes <name>.snapshot.json and <name>.state.json; only the newest
    `keep` pairs stay; evaluating a recorded pair gives the cycle's decisions again (the
    trip included)."""
    directory = tmp_path / "recorded"
    recorder = SnapshotRecorder.open(directory, keep=3)
    registry = CollectorRegistry()
    recorder.register(registry)
    tripped = None
    for _ in range(60):
        cycle = served.next_cycle()
        assert recorder.record(cycle)
        if KEY in served.service.breakers_not_armed():
            tripped = cycle
            break
    assert tripped is not None
    snapshots = sorted(directory.glob("cycle-*.snapshot.json"))
    states = sorted(directory.glob("cycle-*.state.json"))
    assert len(snapshots) == len(states) == 3
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temp left
    newest = snapshots[-1]
    assert newest.name.endswith(f"-{tripped.number:06d}.snapshot.json")
    snapshot = load_snapshot(newest)
    state = State.from_dict(json.loads(newest.with_name(_state_name(newest)).read_text()))
    compiled = compile_policy_set(served.service.reloader.current.policy_set)
    try:
        decisions, _ = evaluate(compiled, snapshot, state, tripped.at)
    finally:
        compiled.close()
    assert [d.id for d in decisions] == [d.id for d in tripped.decisions]
    assert registry.get_sample_value("bastion_snapshots_recorded_total") >= 3


def test_record_when_directory_gone_then_counted_logged_and_the_next_write_works(
    served: Desk, tmp_path: Path
) -> None:
    """A write that fails returns False, counts, logs `snapshot_record_failed` with the
    file and error, and never raises; once the directory is back, writes work again."""
    directory = tmp_path / "recorded"
    recorder = SnapshotRecorder.open(directory, keep=5)
    registry = CollectorRegistry()
    recorder.register(registry)
    shutil.rmtree(directory)
    directory.write_text("not a directory")
    with capture_logs() as entries:
        assert recorder.record(served.next_cycle()) is False
    (failed,) = [e for e in entries if e["event"] == "snapshot_record_failed"]
    assert failed["directory"] == str(directory)
    assert failed["file"].startswith("cycle-") and failed["error"]
    assert registry.get_sample_value("bastion_snapshot_record_failures_total") == 1
    directory.unlink()
    directory.mkdir()
    assert recorder.record(served.next_cycle()) is True
    assert len(list(directory.glob("cycle-*.snapshot.json"))) == 1


def test_record_when_directory_cannot_be_made_then_usage_error(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    """`bastion serve --record` under a file: exit 2 naming the directory and the fix."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _out, err = run_cli(
        "serve", "--once", "--no-audit", "--policies", str(POLICIES), "--record", str(blocker / "d")
    )
    assert code == 2
    assert f"--record {blocker / 'd'}: cannot write there" in err


def test_serve_once_when_record_given_then_the_cycle_is_written(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    """`bastion serve --once --record DIR` (sim) leaves one pair that `bastion eval`
    reads back."""
    directory = tmp_path / "recorded"
    code, _out, err = run_cli(
        "serve", "--once", "--no-audit", "--policies", str(POLICIES), "--record", str(directory)
    )
    assert code == 0, err
    (snapshot,) = directory.glob("cycle-*-000001.snapshot.json")
    state = snapshot.with_name(_state_name(snapshot))
    code, out, err = run_cli(
        "eval", "--policies", str(POLICIES), "--snapshot", str(snapshot), "--state", str(state)
    )
    assert code == 0, err
    assert "trading states:" in out


def _state_name(snapshot: Path) -> str:
    return snapshot.name.removesuffix(".snapshot.json") + ".state.json"
