"""bench/scale/run.py in its --quick shape: the benchmark still runs end to end on a local
Ray instance (its own process, shut down at its end), so it cannot rot. Only what does not
depend on the machine's speed is asserted: both cases ran and were reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("ray", reason="ray is not installed: the bastion-risk[ray] extra")

BENCH = ROOT / "bench" / "scale" / "run.py"


@pytest.mark.slow
def test_scale_bench_when_run_quick_then_both_cases_are_measured_and_reported() -> None:
    """--quick --format json exits 0 with positions per second for 1 and 2 actors, their
    ratio, the CPU per position and the machine's cores."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["positions"] == 100
    assert result["one_actor_per_s"] > 0 and result["two_actors_per_s"] > 0
    assert result["ratio_two_to_one"] > 0
    assert result["cores"] >= 1
    assert len(result["all_rounds"]["2"]) == 2
