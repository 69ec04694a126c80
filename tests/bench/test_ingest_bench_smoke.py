"""bench/eval/ingest.py in a tiny shape, per venue shape: the benchmark still runs end to
end (polls as each venue's adapter hands them over, the builder, the evaluation), so it
cannot rot. Only what does not depend on the machine's speed is asserted: the row is
printed and says what was measured. The figures are the benchmark's to print."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench" / "eval" / "ingest.py"


@pytest.mark.parametrize(
    ("venue", "said"),
    [
        ("kraken", "exchange calendar: none (24/7); positions with entry times"),
        ("binance", "exchange calendar: none (24/7); positions without entry times"),
        ("alpaca", "exchange calendar: XNYS; positions without entry times"),
    ],
)
def test_ingest_bench_when_tiny_then_runs_and_says_what_it_measured(venue: str, said: str) -> None:
    args = ["--sizes", "200", "--rounds", "1", "--no-cerberus", "--venue", venue]
    run = subprocess.run(
        [sys.executable, str(BENCH), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert said in run.stdout and f"(as {venue}'s)" in run.stdout
    (row,) = [line for line in run.stdout.splitlines() if line.split()[:1] == ["200"]]
    assert row.count(" ms") == 4 and row.count("x") == 5  # costs, then ratios
