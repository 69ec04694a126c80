"""The real `bastion serve --state F`: kill -9 after acknowledged reports, a full disk,
an edited or unusable state file."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bastion.service.state_store import ACCEPT_EDITED_FLAG, StateStore
from tests.conftest import POLICIES

DEADLINE_S = 15.0
KILLS = 20
REPORTS_PER_START = 3
FULL_DISK_BYTES = 512  # RLIMIT_FSIZE: every state file is larger


def _bastion() -> str:
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    return script


def _command(state: Path) -> list[str]:
    serve = [_bastion(), "serve", "--policies", str(POLICIES)]
    return [*serve, "--state", str(state), "--log-format", "json"]


@dataclass
class Running:
    process: subprocess.Popen[str]
    url: str = ""
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


def _serve(state: Path, *extra: str, preexec: Callable[[], None] | None = None) -> Running:
    """`bastion serve` on the sim feed with --state, its output drained by threads."""
    process = subprocess.Popen(
        [*_command(state), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=preexec,  # noqa: PLW1509 - only sets a resource limit and a signal
    )
    running = Running(process)
    for stream, into in ((process.stdout, running.stdout), (process.stderr, running.stderr)):
        threading.Thread(target=_drain, args=(stream, into), daemon=True).start()

    def started() -> str:
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", "".join(running.stderr))
        assert process.poll() is None, "".join(running.stderr)
        return found.group(1) if found else ""

    running.url = _until(started, "the service to start")
    return running


def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, json.loads(text) if text.startswith("{") else text


def _report(url: str, order_id: str, action: str) -> tuple[int, Any]:
    order: dict[str, Any] = {"order_id": order_id, "account_id": "gen-01", "symbol": "ETH-USD"}
    order |= {"action": "open", "target_size": "0.1"} if action == "open" else {}
    order |= {"action": "close", "current_size": "0.1"} if action == "close" else {}
    return _call(f"{url}/api/v1/orders", json.dumps(order).encode())


def _stop(running: Running) -> int:
    running.process.send_signal(signal.SIGTERM)
    return running.process.wait(timeout=DEADLINE_S)


@pytest.mark.slow  # 20 starts of `bastion serve`: about 25 s, more on a busy machine
def test_serve_when_killed_right_after_each_acknowledged_report_then_nothing_lost(
    tmp_path: Path, cleanup: list[Running]
) -> None:
    """20 times: start from the file, report orders, kill -9 right after the last
    acknowledgment. Every acknowledged order is there after the restart: its id answers
    as a duplicate, its open / close is in the order memory."""
    state = tmp_path / "state.json"
    acknowledged: list[str] = []
    for start in range(KILLS):
        running = _serve(state)
        cleanup.append(running)
        if acknowledged:  # the previous run's last acknowledged report survived the kill
            status, again = _report(running.url, acknowledged[-1], "open")
            assert (status, again["duplicate"]) == (200, True)
        for number in range(REPORTS_PER_START):
            order_id = f"run{start}-ord{number}"
            status, answer = _report(running.url, order_id, ("open", "close")[number % 2])
            assert (status, answer["recorded"]) == (200, True), answer
            acknowledged.append(order_id)
        running.process.send_signal(signal.SIGKILL)
        running.process.wait(timeout=DEADLINE_S)
    loaded = StateStore(state).load()
    assert loaded is not None and not loaded.edited
    assert [o["order_id"] for o in loaded.body["orders"]] == acknowledged
    trades = loaded.body["engine"]["authority"]["trades"]["gen-01/ETH-USD"]
    assert len(trades) == KILLS * REPORTS_PER_START


def _limit_file_size() -> None:
    """In the child: files may not grow past FULL_DISK_BYTES (a full disk), and the
    write fails with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, hard))


def _persist_failures(url: str) -> float:
    _, text = _call(f"{url}/metrics")
    found = re.search(r'^bastion_persist_failures_total\{what="state"\} (\S+)$', text, re.M)
    assert found, "bastion_persist_failures_total is not exported"
    return float(found.group(1))


def _evaluations(url: str) -> float:
    _, text = _call(f"{url}/metrics")
    found = re.search(r"^bastion_evaluations_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_serve_when_disk_full_then_readyz_503_counted_cadence_on_then_recovers(
    tmp_path: Path, cleanup: list[Running]
) -> None:
    """Saves fail (a file size limit): /readyz 503 "state save failed", the failures
    counted, cycles still run. With room again ready recovers, and it is logged. A final
    save that fails exits 1 naming the file."""
    state = tmp_path / "state.json"
    running = _serve(state, "--speed", "600", preexec=_limit_file_size)
    cleanup.append(running)

    def failing() -> Any:
        status, answer = _call(f"{running.url}/readyz")
        failed = any(r.startswith("state save failed:") for r in answer["reasons"])
        return status == 503 and failed and answer

    answer = _until(failing, "/readyz to say the state save failed")
    assert any("File too large" in r for r in answer["reasons"])
    assert _persist_failures(running.url) >= 1
    cycles = _evaluations(running.url)
    _until(lambda: _evaluations(running.url) > cycles + 1, "cycles to go on")

    resource.prlimit(running.process.pid, resource.RLIMIT_FSIZE, (-1, -1))  # room again
    _until(lambda: _call(f"{running.url}/readyz")[0] == 200, "/readyz to recover")
    assert any('"persist_recovered"' in line for line in running.stdout)
    assert StateStore(state).load() is not None

    resource.prlimit(running.process.pid, resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, -1))
    assert _stop(running) == 1
    assert f"the final save of {state} failed" in "".join(running.stderr)


def _once(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(state), "--once", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_when_state_file_edited_then_refused_unless_accepted(tmp_path: Path) -> None:
    """A breaker state changed by hand: exit 2 naming the file and the flag; with
    --accept-edited-state it starts, and says so in the logs."""
    state = tmp_path / "state.json"
    assert _once(state).returncode == 0
    document = json.loads(state.read_text())
    document["engine"]["trading_states"]["gen-01"] = "ACTIVE"
    document["engine"]["breakers"] = {}  # "re-armed"
    document["engine"]["counters"] = {**document["engine"]["counters"], "edited": 1}
    state.write_text(json.dumps(document))
    refused = _once(state)
    assert refused.returncode == 2
    assert str(state) in refused.stderr and ACCEPT_EDITED_FLAG in refused.stderr
    assert "Traceback" not in refused.stderr
    accepted = _once(state, ACCEPT_EDITED_FLAG)
    assert accepted.returncode == 0
    assert '"state_edited_accepted"' in accepted.stdout


def test_serve_when_legacy_state_file_then_accepted_once_logged_and_rewritten(
    tmp_path: Path,
) -> None:
    """A file from before the digest ({"engine", "builder"} only) starts the service,
    is logged as legacy and is rewritten in the current format."""
    state = tmp_path / "state.json"
    assert _once(state).returncode == 0
    document = json.loads(state.read_text())
    state.write_text(json.dumps({"engine": document["engine"], "builder": document["builder"]}))
    done = _once(state)
    assert done.returncode == 0, done.stderr
    assert '"state_legacy_accepted"' in done.stdout
    assert "digest" in json.loads(state.read_text())


def test_serve_when_state_directory_missing_then_exit_2_naming_it(tmp_path: Path) -> None:
    """No traceback: one line with the path and the fix."""
    state = tmp_path / "missing" / "state.json"
    done = _once(state)
    assert done.returncode == 2
    assert str(tmp_path / "missing") in done.stderr and "Traceback" not in done.stderr


def test_serve_when_state_directory_read_only_then_exit_2_naming_it(tmp_path: Path) -> None:
    """A directory that takes no file (as root, where permission bits do not stop a
    write, /proc stands in for a read-only mount): exit 2 with the path."""
    if os.geteuid() == 0:
        state = Path("/proc/state.json")
    else:
        directory = tmp_path / "ro"
        directory.mkdir(mode=0o555)
        state = directory / "state.json"
    done = _once(state)
    assert done.returncode == 2
    assert str(state) in done.stderr and "Traceback" not in done.stderr
