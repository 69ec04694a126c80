"""`bastion data check` from the command line: report, lines, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

Run = Callable[..., tuple[int, str, str]]
SPY = ROOT / "examples" / "bars" / "spy_daily.csv"
FIXTURES = ROOT / "tests" / "fixtures" / "bars"


def test_data_check_when_example_file_then_usable_exit_0_with_holiday_gaps(run_cli: Run) -> None:
    """The SPY sample is usable; its two exchange holidays show as one-bar gaps."""
    code, out, _ = run_cli("data", "check", str(SPY))
    assert code == 0 and "verdict: usable" in out
    assert out.count(" gap ") == 2 and "line 11" in out and "line 35" in out
    assert "every 1d (inferred), calendar weekdays (inferred)" in out
    assert "stale not checked (pass --now)" in out


def test_data_check_when_bar_is_corrupt_then_exit_1_naming_the_line(run_cli: Run) -> None:
    """An error-level issue makes the data unusable: exit 1, the file line shown."""
    code, out, _ = run_cli("data", "check", str(FIXTURES / "high_below_close.csv"))
    assert code == 1 and "verdict: UNUSABLE" in out
    assert "line 4" in out and "high_inconsistent" in out


def test_data_check_when_json_then_report_with_lines(run_cli: Run) -> None:
    """JSON carries the score, the confidence and each issue's file line."""
    code, out, _ = run_cli(
        "data", "check", str(FIXTURES / "high_below_close.csv"), "--format", "json"
    )
    document = json.loads(out)
    assert code == 1 and document["usable"] is False
    assert document["issues"][0] | {"message": ""} == {
        "row": 2,
        "line": 4,
        "code": "high_inconsistent",
        "severity": "error",
        "message": "",
    }
    assert (
        document["score_ratio"] == "0.7500"
        and document["first_timestamp"] == "2024-01-02T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("now", "code"), [("2024-03-28T12:00:00Z", 0), ("2024-04-02T12:00:00Z", 1)]
)
def test_data_check_when_now_given_then_stale_data_exits_1(
    run_cli: Run, now: str, code: int
) -> None:
    """With --now, a last bar older than one interval (weekday clock) is unusable."""
    exit_code, out, _ = run_cli("data", "check", str(SPY), "--now", now)
    assert exit_code == code
    assert ("stale yes" in out) is (code == 1)


def test_data_check_when_interval_forced_hourly_then_daily_file_is_full_of_gaps(
    run_cli: Run,
) -> None:
    """A wrong --interval is believed: the report shows why the file does not fit."""
    code, out, _ = run_cli("data", "check", str(SPY), "--interval", "1h", "--calendar", "24x7")
    assert code == 1 and "every 1h," in out


def test_data_check_when_unreadable_then_exit_2_with_line(run_cli: Run) -> None:
    """Unreadable input is exit 2 and names file:line."""
    code, _, err = run_cli("data", "check", str(FIXTURES / "bad_number.csv"))
    assert code == 2 and "bad_number.csv:3:" in err


@pytest.mark.parametrize(
    "args",
    [
        ["data"],
        ["data", "check", str(SPY), "--interval", "1M"],
        ["data", "check", str(SPY), "--now", "soon"],
        ["data", "check", str(SPY), "--min-score", "1.5"],
    ],
    ids=["no-subcommand", "month-interval", "bad-now", "score-above-one"],
)
def test_data_check_when_arguments_bad_then_usage_exit_2(run_cli: Run, args: list[str]) -> None:
    """Usage errors exit 2 with argparse's message."""
    code, _, err = run_cli(*args)
    assert code == 2 and "usage:" in err


def test_data_check_when_run_as_console_script_then_exit_code_is_the_verdict() -> None:
    """The installed entry point returns 1 for unusable data."""
    script = Path(sys.executable).parent / "bastion"
    completed = subprocess.run(
        [str(script), "data", "check", str(FIXTURES / "high_below_close.csv"), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1 and json.loads(completed.stdout)["usable"] is False
