"""The shipped policy tests (policies/tests/) pass on the shipped policies, fire every
rule, and catch deliberate mistakes in the policies (a mutation test)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import POLICIES

Run = Callable[..., tuple[int, str, str]]
SUITE = POLICIES / "tests"


def test_shipped_suite_when_run_on_shipped_policies_then_all_pass_with_full_coverage(
    run_cli: Run,
) -> None:
    """`bastion test policies/tests --fail-under 100` exits 0: every test passes and
    every breaker, escalation level, limit and protection fired."""
    code, out, err = run_cli(
        "test", str(SUITE), "--coverage", "--fail-under", "100", "--format", "json"
    )
    report = json.loads(out)
    assert (code, err) == (0, ""), out
    assert report["failed"] == 0 and report["passed"] >= 40
    assert report["coverage"]["percent"] == 100 and report["coverage"]["uncovered"] == []


# Each mutation: (file, the text written, what replaces it). Every one must still lint
# clean (exit 2 would be a broken set, not a caught mistake) and fail some test.
MUTATIONS = {
    "breaker threshold raised": ("breakers.yaml", "threshold: 1000\n", "threshold: 1500\n"),
    "comparison >= made >": (
        "breakers.yaml",
        'metric: portfolio.loss_pct\n      comparison: ">="',
        'metric: portfolio.loss_pct\n      comparison: ">"',
    ),
    "breaker removed": (
        "breakers.yaml",
        '    - id: volume_anomaly\n      metric: market.volume_multiple\n      comparison: ">="\n'
        "      threshold: 5       # five times average volume\n      action: alert\n"
        "      severity: warning\n      reset: auto\n",
        "",
    ),
    "action changed": (
        "breakers.yaml",
        "threshold: 15\n      action: reduce_only",
        "threshold: 15\n      action: reduce_size",
    ),
    "reset made automatic": (
        "breakers.yaml",
        "  defaults:\n    cooldown_s: 3600   # 60 minutes\n    reset: manual",
        "  defaults:\n    cooldown_s: 3600   # 60 minutes\n    reset: auto",
    ),
    "overlay threshold loosened": ("com-accounts.yaml", "threshold: 500\n", "threshold: 5000\n"),
    "escalation level removed": (
        "escalation.yaml",
        "    - name: recovery\n      breach_atr: 2.0\n      interval_s: 30\n"
        "      actions: [stop_loss, hedge, reduce_size]\n",
        "",
    ),
    "hysteresis removed": ("escalation.yaml", "hysteresis_atr: 0.25", "hysteresis_atr: 0"),
    "per-asset limit doubled": ("limits.yaml", "max_per_asset_pct: 5", "max_per_asset_pct: 10"),
    "holding period shortened": ("protection.yaml", "min_holding_days: 5", "min_holding_days: 4"),
    "roll urgency moved": ("roll.yaml", "    medium: 0.40", "    medium: 0.45"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_shipped_suite_when_policy_mutated_then_a_test_fails(
    mutation: str, run_cli: Run, tmp_path: Path
) -> None:
    """A deliberate mistake in a shipped policy makes at least one shipped test fail
    (exit 1, not 2: the mutated set still lints clean)."""
    file, before, after = MUTATIONS[mutation]
    candidate = tmp_path / "candidate"
    shutil.copytree(POLICIES, candidate, ignore=shutil.ignore_patterns("tests"))
    path = candidate / file
    text = path.read_text(encoding="utf-8")
    assert text.count(before) == 1, f"{mutation}: the text to mutate moved in {file}"
    path.write_text(text.replace(before, after), encoding="utf-8")
    code, out, err = run_cli("test", str(SUITE), "--policies", str(candidate))
    assert code == 1, f"{mutation}: {out}{err}"
    assert re.search(r"^FAIL ", out, re.MULTILINE), out
