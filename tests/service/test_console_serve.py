"""`bastion serve` end to end: piped, stdout is JSON lines only (never mixed with plain
text); in a terminal, a live view and a summary at Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import POLICIES, ROOT

EXAMPLE = ROOT / "examples" / "replay"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _bastion() -> str:
    found = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert found is not None
    return found


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every line of stdout parsed as JSON: a plain line fails the test, naming it."""
    events = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"stdout line {number} is not JSON: {line[:200]!r}") from None
    return events


def test_serve_once_when_stdout_piped_then_every_line_is_json(tmp_path: Path) -> None:
    """`bastion serve --once | ...`: the cycle is one `cycle_evaluated` JSON line."""
    done = subprocess.run(
        [_bastion(), "serve", "--once", "--no-audit", "--policies", str(POLICIES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    events = _json_lines(done.stdout)
    (cycle,) = [e for e in events if e["event"] == "cycle_evaluated"]
    assert cycle["trading_states"] and cycle["next_evaluation_s"]


def test_serve_replay_when_piped_at_high_speed_then_json_only_no_stale_data_and_summary(
    tmp_path: Path,
) -> None:
    """A replay at 2,000,000x with stdout piped: JSON lines only; no stale_data decision
    or alert (replayed bars are not stale against wall time); the replay summary and the
    run summary (trips, time per state, the reset request for what is still tripped)."""
    config = tmp_path / "replay.yaml"
    config.write_text(
        f"bars: {{SPY: {EXAMPLE / 'SPY.csv'}, AAPL: {EXAMPLE / 'AAPL.csv'}}}\n"
        f"positions: {EXAMPLE / 'positions.json'}\n",
        encoding="utf-8",
    )
    command = [_bastion(), "serve", "--adapter", "replay", "--config", str(config)]
    done = subprocess.run(
        [*command, "--policies", str(POLICIES), "--speed", "2000000", "--port", "0", "--no-audit"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = _json_lines(done.stdout)
    stale = [e for e in events if "stale_data" in json.dumps(e)]
    assert stale == [], stale[:3]
    (replayed,) = [e for e in events if e["event"] == "replay_summary"]
    assert replayed["lines"][0].startswith("replay: ")
    (summary,) = [e for e in events if e["event"] == "run_summary"]
    assert summary["time_in_states_s"]["gen-01"]["HALTED"] > 0
    assert summary["trips"]["daily_loss_usd@account:gen-01"] == 1
    (gen,) = [s for s in summary["still_tripped"] if s["subject"] == "account:gen-01"]
    assert '"breaker": "daily_loss_usd"' in gen["reset_command"]
    assert gen["reset_command"].endswith("/api/v1/breakers/reset")


def test_serve_when_sigint_in_a_terminal_then_live_lines_and_summary(tmp_path: Path) -> None:
    """In a terminal: readable lines (the regime, trips with value vs threshold), no JSON;
    Ctrl-C (SIGINT) prints the summary with how to reset what is still tripped."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: bastion serve on the pty
        os.chdir(tmp_path)
        args = ["serve", "--policies", str(POLICIES), "--port", "0", "--no-audit"]
        os.execv(_bastion(), [_bastion(), *args, "--speed", "3000"])
    output = _read_until(fd, b"TRIP ", timeout_s=60)
    os.kill(pid, signal.SIGINT)
    output += _read_until(fd, b"\x00never", timeout_s=30)  # to the end of the output
    _, status = os.waitpid(pid, 0)
    text = ANSI.sub("", output.decode("utf-8", "replace"))  # colours and cursor moves
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "REGIME  market  " in text  # the sim's regime, shown
    assert " vs >= " in text and "=> " in text
    assert '{"event"' not in text
    assert "summary: " in text and "time per trading state" in text
    assert "still tripped: " in text and "/api/v1/breakers/reset" in text


def _read_until(fd: int, marker: bytes, timeout_s: float) -> bytes:
    """Read the pty until `marker` appears, the child closes it, or the time is up."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child exited: the pty is closed
            break
        if not chunk:
            break
        data += chunk
    return data
