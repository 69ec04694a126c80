"""`bastion replay --report`: the example history gives report.json, report.md and
report.html, with plots inline and nothing loaded from elsewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import POLICIES
from tests.replay.conftest import CRASH

Run = Callable[..., tuple[int, str, str]]


def _replay(run_cli: Run, *args: str) -> tuple[int, str, str]:
    return run_cli(
        "replay", "--bars", str(CRASH), "--positions", str(CRASH / "positions.json"), *args
    )


def test_replay_when_example_history_with_report_then_three_files_and_summary(
    run_cli: Run, tmp_path: Path
) -> None:
    """The crash-and-recovery example writes all three report files and the plots."""
    report = tmp_path / "report"
    code, out, err = _replay(run_cli, "--policies", str(POLICIES), "--report", str(report))
    assert code == 0, err
    for name in ("report.json", "report.md", "report.html", "equity.svg", "trips.svg"):
        assert (report / name).is_file(), name
    impact = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert impact["period"]["steps"] > 100
    assert set(impact["accounts"]) == {"gen-01", "com-01", "rev-01"}
    assert impact["breaker_trips"]["policies"], "the crash trips breakers"
    assert impact["checks"] == {"count": 0, "note": impact["checks"]["note"]}
    assert "no order checks" in impact["checks"]["note"]
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "<script" not in page
    assert re.search(r"""(src|href)=["']?(https?:)?//""", page) is None  # nothing fetched
    assert "<link" not in page
    markdown = (report / "report.md").read_text(encoding="utf-8")
    assert "![Equity and trading state per account](equity.svg)" in markdown
    assert out.startswith("replay: ") and "com-01" in out and "report.html" in out


def test_replay_when_candidate_moves_com_thresholds_then_disagreement_in_crash_week_exit_1(
    run_cli: Run, candidate: Path
) -> None:
    """The proposed com overlay parts from the shipped set in the sell-off, on com-01."""
    code, out, err = _replay(
        run_cli, "--policies", str(candidate), "--baseline", str(POLICIES), "--format", "json"
    )
    assert code == 1, err
    impact = json.loads(out)
    first = impact["first_disagreement"]
    assert "2024-03-18" <= first["at"] <= "2024-03-29"
    assert any(d["subject"] == "account:com-01" for d in first["differences"])
    gen = impact["accounts"]["gen-01"]
    assert gen["baseline"] == gen["candidate"]  # the overlay covers com accounts only


def test_replay_when_baseline_is_the_same_set_then_no_disagreement_exit_0(run_cli: Run) -> None:
    """A set replayed against itself agrees at every step."""
    code, out, _ = _replay(
        run_cli, "--policies", str(POLICIES), "--baseline", str(POLICIES), "--to", "2024-02-15"
    )
    assert code == 0
    assert "first disagreement: none" in out and "disagreeing steps: 0 of" in out


def test_replay_when_bars_without_positions_then_exit_2_naming_the_option(run_cli: Run) -> None:
    """--bars needs --positions: a usage error, exit 2."""
    code, _, err = run_cli("replay", "--bars", str(CRASH))
    assert code == 2 and "--positions" in err


def test_replay_when_to_before_history_then_exit_2_with_the_range(run_cli: Run) -> None:
    """A window outside the bars is refused with the range the bars cover."""
    code, _, err = _replay(run_cli, "--to", "2020-01-01")
    assert code == 2 and "nothing to replay" in err


def test_replay_when_save_snapshots_then_one_file_per_step_that_eval_reads(
    run_cli: Run, tmp_path: Path
) -> None:
    """--save-snapshots writes each step's snapshot; `bastion eval` reads them."""
    saved = tmp_path / "snapshots"
    code, out, err = _replay(
        run_cli, "--to", "2024-01-31", "--save-snapshots", str(saved), "--format", "json"
    )
    assert code == 0, err
    files = sorted(saved.glob("*.json"))
    assert len(files) == json.loads(out)["period"]["steps"] > 10
    assert files[0].name.startswith("00000-20231228T000000Z")
    code, _, err = run_cli("eval", "--policies", str(POLICIES), "--snapshot", str(files[-1]))
    assert code == 0, err
