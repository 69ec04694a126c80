"""History protections in a policy test: `locks` expectations, a check denied by a lock,
and the protection counted by coverage once it locked."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.conftest import POLICIES

Run = Callable[..., tuple[int, str, str]]
COOLDOWN = """\
  history:
    - id: cooldown
      method: cooldown
      lookback_s: 3600
      trade_limit: 1
      lock_s: 1800
      scope: symbol
"""


def _candidate(tmp_path: Path) -> Path:
    candidate = tmp_path / "candidate"
    shutil.copytree(POLICIES, candidate, ignore=shutil.ignore_patterns("tests"))
    protection = candidate / "protection.yaml"
    text = protection.read_text(encoding="utf-8")
    protection.write_text(text.replace("  on_error: deny\n", "  on_error: deny\n" + COOLDOWN))
    return candidate


def _snapshot_with_a_closed_trade(tmp_path: Path) -> Path:
    data = json.loads((POLICIES / "tests" / "snapshots" / "calm.json").read_text())
    data["trades"] = [
        {
            "id": "t1",
            "account_id": "gen-01",
            "symbol": "XYZ",
            "side": "long",
            "strategy_id": "trend_following_v1",
            "units": 10,
            "opened_at": "2026-11-20T14:00:00Z",
            "closed_at": "2026-11-20T15:20:00Z",
            "entry_price_usd": 100,
            "exit_price_usd": 99,
            "profit_usd": -10,
            "profit_pct": -1,
            "exit_reason": "stop_loss",
        }
    ]
    path = tmp_path / "traded.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_test_when_history_protection_locks_then_locks_checks_and_coverage_agree(
    run_cli: Run, tmp_path: Path
) -> None:
    """A cooldown after a closed XYZ trade locks XYZ: `locks` says locked, an open is
    denied by `history.cooldown`, the lock ends after 1800 s, and coverage counts it."""
    suite = tmp_path / "history.yaml"
    suite.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: bastion/v1
            kind: PolicyTest
            metadata: {{name: history}}
            policies: {_candidate(tmp_path)}
            snapshot: {_snapshot_with_a_closed_trade(tmp_path)}
            tests:
              - name: cooldown after a closed trade
                steps:
                  - expect:
                      locks: {{cooldown@gen-01: locked}}
                    checks:
                      - order: {{account_id: gen-01, symbol: XYZ, action: open, target_size: 1}}
                        expect: {{outcome: denied, blocking: [history.cooldown]}}
                  - at: "2026-11-20T15:50:01Z"
                    expect:
                      locks: {{cooldown@gen-01: unlocked}}
            """
        ),
        encoding="utf-8",
    )
    code, out, err = run_cli("test", str(suite), "--coverage", "--format", "json")
    report = json.loads(out)
    assert (code, err) == (0, ""), out
    uncovered = {(item["kind"], item["rule"]) for item in report["coverage"]["uncovered"]}
    assert ("protection", "history.cooldown") not in uncovered
    assert ("protection", "core_asset_immunity") in uncovered
