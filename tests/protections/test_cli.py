"""`bastion locks list|release` on the state `bastion eval` writes from the worked example
(examples/protections), and on a `bastion serve` state file (digest kept valid)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.engine.state import State
from bastion.service.state_store import StateEdited, StateStore
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "protections"
Run = Callable[..., tuple[int, str, str]]
GUARD = "default-protection/stoploss-guard/gen-01/account"
ALL = {
    "default-protection/cooldown/gen-01/symbol=AAPL",
    "default-protection/drawdown/gen-01/account",
    "default-protection/low-profit/gen-01/symbol=AAPL",
    GUARD,
}


@pytest.fixture
def state_file(run_cli: Run, tmp_path: Path) -> Path:
    """The state after `bastion eval` of the worked example: four locks."""
    path = tmp_path / "state.json"
    code, out, _ = run_cli(
        "eval",
        "--policies",
        str(EXAMPLE / "policies"),
        "--snapshot",
        str(EXAMPLE / "snapshot.json"),
        "--state-out",
        str(path),
    )
    assert code == 0 and out.count("locked -> lock_new_risk") == 4
    return path


def _listed(run_cli: Run, path: Path, *extra: str) -> set[str]:
    code, out, _ = run_cli("locks", "list", "--state", str(path), "--format", "json", *extra)
    assert code == 0
    return {lock["id"] for lock in json.loads(out)["locks"]}


def test_locks_when_listed_after_eval_then_every_lock_with_its_trades(
    run_cli: Run, state_file: Path
) -> None:
    """`locks list` shows the four locks the example's trades make, with their trades."""
    assert _listed(run_cli, state_file) == ALL
    code, out, _ = run_cli("locks", "list", "--state", str(state_file))
    assert code == 0 and "trades: T-102, T-103, T-104" in out


def test_locks_when_released_then_not_listed_and_kept_with_who_and_why(
    run_cli: Run, state_file: Path
) -> None:
    """`locks release` ends one lock (exit 0), which `list --all` still shows, released."""
    code, out, _ = run_cli(
        "locks", "release", GUARD, "--state", str(state_file), "--by", "alice", "--reason", "ok"
    )
    assert code == 0 and f"released {GUARD}" in out
    assert _listed(run_cli, state_file) == ALL - {GUARD}
    assert _listed(run_cli, state_file, "--all") == ALL
    lock = State.from_dict(json.loads(state_file.read_text())).locks[GUARD]
    assert (lock.released_by, lock.release_reason) == ("alice", "ok")


def test_locks_when_release_names_no_active_lock_then_exit_1(
    run_cli: Run, state_file: Path
) -> None:
    """An unknown lock: exit 1, the active ones listed; no --by: a usage error (exit 2)."""
    code, _, err = run_cli(
        "locks", "release", "nope", "--state", str(state_file), "--by", "a", "--reason", "b"
    )
    assert code == 1 and GUARD in err
    code, _, err = run_cli("locks", "release", GUARD, "--state", str(state_file))
    assert code == 2 and "--by NAME" in err


def test_locks_when_serve_state_file_then_digest_kept_valid(
    run_cli: Run, state_file: Path, tmp_path: Path
) -> None:
    """A `bastion serve --state` file is read through its store: the release rewrites it
    with a fresh digest, so the service starts from it without --accept-edited-state."""
    served = tmp_path / "serve-state.json"
    engine = json.loads(state_file.read_text())
    StateStore(served).save({"engine": engine, "builder": {}, "pending_resets": [], "orders": []})
    code, _, _ = run_cli(
        "locks", "release", GUARD, "--state", str(served), "--by", "alice", "--reason", "ok"
    )
    assert code == 0
    loaded = StateStore(served).load()
    assert loaded is not None and not loaded.edited
    assert State.from_dict(loaded.body["engine"]).locks[GUARD].released_by == "alice"
    served.write_text(served.read_text().replace("alice", "mallory"))
    with pytest.raises(StateEdited):
        StateStore(served).load()
    code, _, err = run_cli("locks", "list", "--state", str(served))
    assert code == 2 and "edited by hand" in err
