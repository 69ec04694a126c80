"""bench/replay/run.py on a small history: it still runs end to end, so it cannot rot.

Only what does not depend on the machine's speed is asserted (every line printed, a
verdict given); the figures are the benchmark's to print, not this test's to check.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

BENCH = ROOT / "bench" / "replay" / "run.py"


def test_replay_bench_when_small_history_then_every_figure_and_a_verdict_printed() -> None:
    """Ten symbols, twenty positions, sixty days: rates, ratios and PASS or FAIL."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--days", "60", "--symbols", "10", "--positions", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "history: 60 daily steps, 10 symbols, 20 positions" in out
    for line in ("build snapshots", "live evaluate", "one policy set:", "two policy sets:"):
        assert line in out
    assert " x live" in out
    assert out.rstrip().splitlines()[-1].startswith(("PASS: ", "FAIL: "))
