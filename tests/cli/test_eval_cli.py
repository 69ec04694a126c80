"""`bastion eval`: output, JSON shape, state files, resets, and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
SNAPSHOTS = ROOT / "examples" / "snapshots"


def _eval(run_cli: Run, *args: str) -> tuple[int, str, str]:
    return run_cli("eval", "--policies", str(POLICIES), *args)


def test_eval_when_atr_breach_then_escalation_line_and_exit_0(run_cli: Run) -> None:
    """The example breach prints its escalation with the readable reason."""
    code, out, _ = _eval(run_cli, "--snapshot", str(SNAPSHOTS / "atr-breach.json"))
    assert code == 0
    assert "SPY-123 moved 2.31 ATR against entry (ATR 4.12; recovery threshold 2.0)" in out
    assert out.rstrip().splitlines()[-1].startswith("  tripped: daily_loss_usd@account:gen-01")


def test_eval_when_json_twice_then_documented_shape_and_identical_bytes(run_cli: Run) -> None:
    """JSON has decisions and state, and is byte-identical across runs."""
    args = ("--snapshot", str(SNAPSHOTS / "crash-day.json"), "--format", "json")
    first, second = _eval(run_cli, *args)[1], _eval(run_cli, *args)[1]
    payload = json.loads(first)
    assert {"decisions", "state"} <= payload.keys() and first == second
    assert payload["state"]["version"] == 1
    assert all(d["id"].startswith("dec_") and d["policy_version"] for d in payload["decisions"])


def test_eval_when_state_out_then_written_and_accepted_next_time(
    run_cli: Run, tmp_path: Path
) -> None:
    """--state-out writes a state that --state reads back; no temp files are left."""
    state = tmp_path / "state.json"
    _eval(run_cli, "--snapshot", str(SNAPSHOTS / "atr-breach.json"), "--state-out", str(state))
    assert json.loads(state.read_text())["escalations"]["SPY-123"]["level_name"] == "recovery"
    code, out, _ = _eval(
        run_cli,
        "--snapshot",
        str(SNAPSHOTS / "atr-breach.json"),
        "--state",
        str(state),
        "--now",
        "2026-11-20T15:31:00Z",
    )
    assert code == 0 and "no decisions" in out
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_eval_when_reset_given_then_recorded_with_who_and_why(run_cli: Run, tmp_path: Path) -> None:
    """A manual reset appears as a decision naming the operator and the reason."""
    state = tmp_path / "state.json"
    _eval(run_cli, "--snapshot", str(SNAPSHOTS / "atr-breach.json"), "--state-out", str(state))
    code, out, _ = _eval(
        run_cli,
        "--snapshot",
        str(SNAPSHOTS / "calm.json"),
        "--state",
        str(state),
        "--now",
        "2026-11-20T17:00:00Z",
        "--reset",
        "daily_loss_usd@account:gen-01",
        "--by",
        "alice",
        "--reason",
        "booked",
    )
    assert code == 0 and "manually reset by alice: booked" in out
    assert "gen-01 ACTIVE" in out


def test_eval_when_reset_lacks_by_or_is_malformed_then_exit_2(run_cli: Run) -> None:
    """A reset must say who and why, and name BREAKER@SCOPE:ID."""
    snap = ("--snapshot", str(SNAPSHOTS / "calm.json"))
    assert _eval(run_cli, *snap, "--reset", "drawdown@account:gen-01")[0] == 2
    code, _, err = _eval(run_cli, *snap, "--reset", "drawdown", "--by", "a", "--reason", "b")
    assert code == 2 and "BREAKER@SCOPE:ID" in err


def test_eval_when_snapshot_malformed_then_exit_2_naming_fields(
    run_cli: Run, tmp_path: Path
) -> None:
    """Every problem in the snapshot is listed with its field."""
    data = json.loads((SNAPSHOTS / "calm.json").read_text())
    data["positions"][0]["entry_price_usd"] = "abc"
    data["system"]["error_rate_pct"] = float("nan")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, _, err = _eval(run_cli, "--snapshot", str(bad))
    assert code == 2
    assert "positions[0].entry_price_usd" in err and "system.error_rate_pct" in err


def test_eval_when_snapshot_not_json_then_exit_2_with_line(run_cli: Run, tmp_path: Path) -> None:
    """Invalid JSON is reported with its line and column."""
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "as_of": \n}')
    code, _, err = _eval(run_cli, "--snapshot", str(bad))
    assert code == 2 and ":3:" in err


def test_eval_when_policies_have_errors_then_exit_2_listing_them(
    run_cli: Run, tmp_path: Path
) -> None:
    """A policy set that does not lint clean is never evaluated."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "roll.yaml").write_text(
        (policies / "roll.yaml")
        .read_text()
        .replace("normal_abs_delta: 0.50", "normal_abs_delta: 0.9")
    )
    code, _, err = run_cli(
        "eval", "--policies", str(policies), "--snapshot", str(SNAPSHOTS / "calm.json")
    )
    assert code == 2 and "BST202" in err


def test_eval_when_now_invalid_or_backwards_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """--now must be an aware ISO time, never before the state's last evaluation."""
    snap = ("--snapshot", str(SNAPSHOTS / "calm.json"))
    assert _eval(run_cli, *snap, "--now", "yesterday")[0] == 2
    assert _eval(run_cli, *snap, "--now", "2026-11-20T15:30:00")[0] == 2
    state = tmp_path / "s.json"
    _eval(run_cli, *snap, "--state-out", str(state))
    code, _, err = _eval(run_cli, *snap, "--state", str(state), "--now", "2026-01-01T00:00:00Z")
    assert code == 2 and "before the state's last evaluation" in err


def test_eval_console_script_when_run_then_exit_0() -> None:
    """The installed script evaluates the example end to end."""
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run(
        [
            script,
            "eval",
            "--policies",
            str(POLICIES),
            "--snapshot",
            str(SNAPSHOTS / "option-near-roll.json"),
            "--explain",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "[roll] position:SPY-P591-004" in done.stdout


def test_serve_when_speed_given_for_live_venue_then_exit_2(run_cli: Run) -> None:
    """--speed only applies to sim and replay; a live venue refuses it before any I/O."""
    code, _, err = run_cli("serve", "--adapter", "kraken", "--speed", "60", "--once")
    assert code == 2 and "runs in real time" in err
