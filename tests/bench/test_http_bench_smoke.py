"""bench/http/run.py in its --quick shape: the benchmark still runs end to end, so it cannot rot.

It starts a real `bastion serve --adapter sim` on a free loopback port and loads it for
about a second per run. Only what does not depend on the machine's speed is asserted:
the runs happened, answers came back, the document has its fields. The figures and the
PASS / FAIL verdicts are the benchmark's to print, not this test's to check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench" / "http" / "run.py"
TIMEOUT_S = 180  # the quick run takes ~10 s; generous on a loaded 2-core machine


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.slow
def test_http_bench_when_run_quick_then_every_run_is_measured_and_reported() -> None:
    """--quick --format json exits 0 with both closed-loop runs, the open-loop run, the
    floor, cycle counts, CPU shares and the three targets' verdicts."""
    done = _run("--quick", "--format", "json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["in_process"]["checks"] > 0
    phases = report["phases"]
    assert [(p["mode"], p["clients"]) for p in phases] == [
        ("closed", 1),
        ("closed", 4),
        ("open", 4),
    ]
    for phase in phases:
        assert phase["checks"] > 0, phase
        assert phase["non_200"] == 0 and phase["connection_failures"] == 0, phase
        assert phase["latency_ms"]["p50"] is not None
        assert set(phase["cycles"]) >= {"done", "expected", "missed"}
        assert set(phase["cpu_share_of_one_core"]) == {"load_generator", "server", "others"}
        lag = phase["server_loop_lag_ms"]  # the service's own histogram, read around the run
        assert lag is not None and lag["mean"] >= 0 and lag["p99_at_most"] > 0, phase
    assert len(report["targets"]) == 3
    assert all(isinstance(t["passed"], bool) and t["measured"] for t in report["targets"])
    assert report["meta"]["service_exit_code"] == 0  # stopped gracefully by SIGTERM


def test_http_bench_when_clients_not_numbers_then_usage_error_exit_2() -> None:
    """A bad --clients list is a usage error (exit 2) that names the option."""
    done = _run("--clients", "1,many")
    assert done.returncode == 2
    assert "--clients" in done.stderr
