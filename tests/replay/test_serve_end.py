"""`bastion serve --adapter replay` ends at the end of the data: exit 0, with the summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import POLICIES, ROOT

EXAMPLE = ROOT / "examples" / "replay"


def test_serve_when_replay_reaches_the_last_bar_then_summary_and_exit_0(tmp_path: Path) -> None:
    """The service stops by itself after the cycle that saw the last bar (no signal)."""
    config = tmp_path / "replay.yaml"
    config.write_text(
        f"bars: {{SPY: {EXAMPLE / 'SPY.csv'}, AAPL: {EXAMPLE / 'AAPL.csv'}}}\n"
        f"positions: {EXAMPLE / 'positions.json'}\n",
        encoding="utf-8",
    )
    bastion = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert bastion is not None
    done = subprocess.run(
        [
            bastion,
            "serve",
            "--adapter",
            "replay",
            "--config",
            str(config),
            "--policies",
            str(POLICIES),
            "--speed",
            "2000000",
            "--port",
            "0",
            "--no-audit",
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # JSON lines only
    (replayed,) = [event for event in events if event["event"] == "replay_summary"]
    summary = "\n".join(replayed["lines"])
    assert "steps from 2024-03-" in summary
    assert "gen-01" in summary and "rev-01" in summary
    assert "breaker trips: policies" in summary
