"""Baseline vs candidate: the first disagreement is found at the step where it happens,
with what differs; order checks whose answer changed are listed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
CALM = ROOT / "examples" / "snapshots" / "calm.json"
PEAK = Decimal(80900)  # com-01's peak equity in calm.json
# com-01's drawdown at each step, in per cent: the candidate's drawdown breaker (8)
# trips at the third step, the baseline's (10) only at the fourth.
DRAWDOWNS = (5, 7, 9, 11, 9)


def _snapshots(folder: Path) -> list[datetime]:
    """calm.json an hour apart, com-01 drawing down (no loss on the day)."""
    base: dict[str, Any] = json.loads(CALM.read_text(encoding="utf-8"))
    start = datetime.fromisoformat(base["as_of"].replace("Z", "+00:00"))
    folder.mkdir()
    times = []
    for index, drawdown in enumerate(DRAWDOWNS):
        document = json.loads(json.dumps(base))
        at = start + timedelta(hours=index)
        document["as_of"] = at.isoformat()
        for account in document["accounts"]:
            if account["id"] == "com-01":
                equity = str(PEAK * (100 - drawdown) / 100)
                account["equity_usd"] = account["day_start_equity_usd"] = equity
        (folder / f"step-{index}.json").write_text(json.dumps(document), encoding="utf-8")
        times.append(at)
    return times


def _checks(path: Path, times: list[datetime]) -> None:
    """An open for com-01 after the first step and again after the third."""
    request = {"account_id": "com-01", "symbol": "SPY", "action": "open", "target_size": 1}
    lines = [
        json.dumps(
            {
                "at": (at + timedelta(minutes=10)).isoformat(),
                "request": {**request, "id": f"open-{n}"},
            }
        )
        for n, at in ((0, times[0]), (2, times[2]))
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_replay_when_candidate_trips_a_step_earlier_then_first_disagreement_at_that_step(
    run_cli: Run, candidate: Path, tmp_path: Path
) -> None:
    """Drawdown 8 % (candidate) vs 10 % (baseline): they part at the 9 % step, on com-01."""
    times = _snapshots(tmp_path / "snapshots")
    _checks(tmp_path / "checks.jsonl", times)
    code, out, err = run_cli(
        "replay",
        "--policies",
        str(candidate),
        "--baseline",
        str(POLICIES),
        "--snapshots",
        str(tmp_path / "snapshots"),
        "--checks",
        str(tmp_path / "checks.jsonl"),
        "--format",
        "json",
    )
    assert code == 1, err
    impact = json.loads(out)
    first = impact["first_disagreement"]
    assert datetime.fromisoformat(first["at"]) == times[2]
    assert {
        "what": "trading_state",
        "subject": "account:com-01",
        "baseline": "ACTIVE",
        "candidate": "REDUCING",
    } in first["differences"]
    assert any(
        d["what"] == "breaker" and d["breaker"] == "drawdown" and d["candidate"] == "tripped"
        for d in first["differences"]
    )
    # From the fourth step both have tripped: they agree again on the trading state.
    com = impact["accounts"]["com-01"]
    assert com["baseline"]["steps"]["REDUCING"] == 2 and com["candidate"]["steps"]["REDUCING"] == 3
    assert impact["disagreeing_steps"] == 1
    changed = impact["checks"]["changed"]
    assert [c["label"] for c in changed] == ["open-2"]
    assert changed[0]["baseline"]["outcome"] != "denied"
    assert changed[0]["candidate"]["outcome"] == "denied"


def test_replay_when_checks_file_has_a_bad_line_then_exit_2_naming_the_line(
    run_cli: Run, tmp_path: Path
) -> None:
    """A checks line without `at` is unreadable input: exit 2, file and line named."""
    _snapshots(tmp_path / "snapshots")
    checks = tmp_path / "checks.jsonl"
    checks.write_text('\n{"request": {"symbol": "QQQ", "action": "open"}}\n', encoding="utf-8")
    code, _, err = run_cli(
        "replay", "--snapshots", str(tmp_path / "snapshots"), "--checks", str(checks)
    )
    assert code == 2 and f"{checks}:2" in err
