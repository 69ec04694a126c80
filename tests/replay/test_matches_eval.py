"""The replay's numbers are `bastion eval`'s: stepping `eval --state` by hand over the
same snapshots gives the same trading state per account at every step and the same
breaker trips."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bastion.adapters.replay_frames import BarReplay, bar_files
from tests.conftest import POLICIES
from tests.replay.conftest import CRASH

Run = Callable[..., tuple[int, str, str]]
START, END = "2024-03-11", "2024-04-12"  # the sell-off and the start of the recovery


def _write_snapshots(folder: Path) -> list[Path]:
    """The frames `bastion replay --bars` evaluates, written as snapshot files."""
    history = BarReplay(
        bar_files(CRASH),
        CRASH / "positions.json",
        start=datetime.fromisoformat(START).replace(tzinfo=UTC),
        end=datetime.fromisoformat(END).replace(tzinfo=UTC),
    )
    folder.mkdir()
    files = []
    for index, frame in enumerate(history.frames()):
        assert not frame.left_out  # a snapshot file cannot carry them: keep the test exact
        path = folder / f"{index:03d}.json"
        path.write_text(json.dumps(frame.snapshot.to_dict()), encoding="utf-8")
        files.append(path)
    return files


def _step_eval(
    run_cli: Run, files: list[Path], state: Path
) -> tuple[Counter[tuple[str, str]], list[tuple[str, str, str]]]:
    """(account, trading state) counted over the steps, and every trip, from `eval`."""
    states: Counter[tuple[str, str]] = Counter()
    trips: list[tuple[str, str, str]] = []
    for path in files:
        args = ["eval", "--policies", str(POLICIES), "--snapshot", str(path), "--format", "json"]
        if state.exists():
            args += ["--state", str(state)]
        code, out, err = run_cli(*args, "--state-out", str(state))
        assert code == 0, err
        payload = json.loads(out)
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        for account in snapshot["accounts"]:
            trading = payload["state"]["trading_states"].get(account["id"], "ACTIVE")
            states[(account["id"], trading)] += 1
        trips += [
            (d["time"], d["rule"], d["subject"]["scope"] + ":" + d["subject"]["id"])
            for d in payload["decisions"]
            if d["kind"] == "breaker" and d["outcome"] == "trip"
        ]
    return states, trips


def test_replay_when_stepping_eval_by_hand_then_same_states_and_trips(
    run_cli: Run, tmp_path: Path
) -> None:
    """Replay (from bars and from the written snapshots) and eval stepped by hand agree."""
    files = _write_snapshots(tmp_path / "snapshots")
    assert len(files) > 15
    code, out, err = run_cli(
        "replay",
        "--policies",
        str(POLICIES),
        "--snapshots",
        str(tmp_path / "snapshots"),
        "--format",
        "json",
    )
    assert code == 0, err
    from_snapshots = json.loads(out)
    code, out, err = run_cli(
        "replay",
        "--policies",
        str(POLICIES),
        "--bars",
        str(CRASH),
        "--positions",
        str(CRASH / "positions.json"),
        "--from",
        START,
        "--to",
        END,
        "--format",
        "json",
    )
    assert code == 0, err
    from_bars = json.loads(out)
    states, trips = _step_eval(run_cli, files, tmp_path / "state.json")
    for impact in (from_snapshots, from_bars):
        assert impact["period"]["steps"] == len(files)
        counted = Counter(
            {
                (account, state): steps
                for account, by_set in impact["accounts"].items()
                for state, steps in by_set["policies"]["steps"].items()
                if steps
            }
        )
        assert counted == states
        replayed = [
            (datetime.fromisoformat(t["at"]), t["rule"], t["subject"])
            for t in impact["breaker_trips"]["policies"]
        ]
        assert replayed == [(datetime.fromisoformat(at), rule, s) for at, rule, s in trips]
    assert any(state == "HALTED" for _, state in states), "the crash halts an account"
