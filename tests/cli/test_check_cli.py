"""`bastion check`: the examples, output, JSON shape, state files, exit codes, README API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
EXAMPLES = ROOT / "examples" / "check"
APPROVAL = EXAMPLES / "approval"
OVERRIDE = EXAMPLES / "regime-override"


def _check(run_cli: Run, *args: str, policies: Path = POLICIES) -> tuple[int, str, str]:
    return run_cli("check", "--policies", str(policies), *args)


def _inputs(case: Path, request: str = "request.json") -> list[str]:
    args = ["--snapshot", str(case / "snapshot.json"), "--request", str(case / request)]
    if (case / "state.json").exists():
        args += ["--state", str(case / "state.json")]
    return args


def _case_folders() -> list[Path]:
    return sorted(path for path in EXAMPLES.iterdir() if path.is_dir())


def _example_checks() -> Iterator[Any]:
    for case in _case_folders():
        expected = case / "expected.json"
        if not expected.exists():  # reported by the completeness test below
            continue
        for item in json.loads(expected.read_text())["checks"]:
            yield pytest.param(case, item, id=f"{case.name}/{item['request']}")


def _request(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads((APPROVAL / "request.json").read_text())
    data.update(changes)
    for name in [key for key, value in changes.items() if value is None]:
        del data[name]
    path = tmp_path / "order.json"
    path.write_text(json.dumps(data))
    return path


# -- the examples -------------------------------------------------------------------


def test_check_examples_when_listed_then_every_folder_complete() -> None:
    """Every example folder has its inputs, a README and an expected outcome for each
    request file it holds."""
    folders = _case_folders()
    assert {f.name for f in folders} >= {
        "approval",
        "downsize",
        "protection-denial",
        "regime-override",
        "kill-switch",
    }
    for case in folders:
        for name in ("snapshot.json", "request.json", "README.md", "expected.json"):
            assert (case / name).is_file(), f"{case.name}/{name} is missing"
        expected = json.loads((case / "expected.json").read_text())["checks"]
        requests = sorted(p.name for p in case.glob("*request.json"))
        assert sorted(item["request"] for item in expected) == requests, case.name
        for item in expected:
            assert {"outcome", "exit_code", "headline"} <= item.keys(), case.name


@pytest.mark.parametrize(("case", "expected"), list(_example_checks()))
def test_check_example_when_run_then_documented_outcome_and_exit_code(
    run_cli: Run, case: Path, expected: dict[str, Any]
) -> None:
    """Each example gives the outcome, exit code and headline its expected.json states."""
    args = _inputs(case, expected["request"])
    code, out, err = _check(run_cli, *args, "--format", "json")
    assert code == expected["exit_code"], err
    payload = json.loads(out)
    decision = payload["decision"] if "decision" in payload else payload["order_list"]
    assert decision["outcome"] == expected["outcome"]
    assert decision["approved"] is (expected["outcome"] != "denied")
    for key in ("blocking", "override_applied", "approved_size"):
        if key in expected:
            assert decision[key] == expected[key], key
    code, out, _ = _check(run_cli, *args)
    assert code == expected["exit_code"]
    assert out.startswith(expected["headline"])


def test_check_when_downsized_then_text_says_the_reduced_size_may_be_sent(run_cli: Run) -> None:
    """A downsize is exit 0 and tells plainly at which size the order may go."""
    code, out, _ = _check(run_cli, *_inputs(EXAMPLES / "downsize"))
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("DOWNSIZED from 150 to 110 units: increase AAPL in gen-01")
    assert "send it at the reduced size, a target of 110 units (add 60 units, not 100)" in first
    assert "blocking: none" in out


def test_check_when_override_applied_then_text_shows_it_with_reason(run_cli: Run) -> None:
    """The override line says it was applied, what it bypassed and why."""
    code, out, _ = _check(run_cli, *_inputs(OVERRIDE))
    assert code == 0 and out.startswith("APPROVED: close NVDA in gen-01 (120 → 0 units)")
    assert (
        "override: applied — regime override bypassed grace_period, holding_period: high "
        "severity risk-off regime" in out
    )


def test_check_when_denied_then_reasons_and_blocking_systems(run_cli: Run) -> None:
    """A denial names why and which system blocks."""
    code, out, _ = _check(run_cli, *_inputs(EXAMPLES / "protection-denial"))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "DENIED: close AAPL in gen-01 (50 → 0 units) — do not send this order"
    assert lines[1] == "  because held 2.03 days < the 5-day minimum holding period"
    assert "blocking: holding_period" in lines
    assert "override: not applied (not available: calm regime severity low < high)" in lines


def test_check_when_explain_then_ordered_trace_with_values(run_cli: Run) -> None:
    """--explain prints every check in order, the values compared and the inputs."""
    code, out, _ = _check(run_cli, *_inputs(EXAMPLES / "kill-switch"), "--explain")
    assert code == 1
    trace = out[out.index("trace:\n") :]
    order = ["core_asset_immunity", "regime_override", "grace_period", "holding_period"]
    positions = [trace.index(f" {name}: ") for name in order]
    assert positions == sorted(positions)
    assert "  ✗ limit.kill_switch.drawdown: kill switch: daily drawdown 11.21 % ≥ 10 %" in trace
    assert "      severity = medium" in trace
    assert "    daily_drawdown_pct = 11.2058" in trace
    assert re.search(r"^decision dec_[0-9a-f]{20}: policy ", out, re.M)


# -- JSON, state, determinism -------------------------------------------------------


def test_check_when_json_twice_then_decision_and_state_and_identical_bytes(run_cli: Run) -> None:
    """JSON has the decision (ExecutionDecision.to_dict) and the new state; same inputs,
    same bytes."""
    args = (*_inputs(OVERRIDE), "--format", "json")
    first, second = _check(run_cli, *args)[1], _check(run_cli, *args)[1]
    assert first == second
    payload = json.loads(first)
    assert set(payload) == {"decision", "state"}
    decision = payload["decision"]
    assert decision["override_applied"] is True and decision["override_reason"]
    assert decision["decision"]["id"].startswith("dec_")
    assert decision["decision"]["kind"] == "check"
    assert decision["decision"]["latency_us"] == 0
    assert payload["state"]["version"] == 1
    overrides = payload["state"]["authority"]["overrides"]
    assert overrides == {"gen-01/NVDA": "2026-11-20T15:30:00+00:00"}


def test_check_when_text_twice_with_explain_then_identical(run_cli: Run) -> None:
    """The text output is deterministic too (no clock, no timings)."""
    args = (*_inputs(EXAMPLES / "downsize"), "--explain")
    assert _check(run_cli, *args) == _check(run_cli, *args)


def test_check_when_state_fed_back_then_submit_rate_denies_the_excess(
    run_cli: Run, tmp_path: Path
) -> None:
    """With submit_rate 2/1m, the third approved-looking order in the window is denied:
    --state-out remembers the submits and --state reads them back."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    limits = policies / "limits.yaml"
    # pending_ttl_s 0: the same open sent again is not "held" (pending) — only the rate binds
    rate = "submit_rate: 2/1m\n    pending_ttl_s: 0"
    limits.write_text(limits.read_text().replace("submit_rate: 100/1s", rate))
    state = tmp_path / "state.json"
    codes = []
    for _ in range(3):
        args = [*_inputs(APPROVAL), "--state-out", str(state)]
        if state.exists():
            args += ["--state", str(state)]
        code, out, err = _check(run_cli, *args, policies=policies)
        codes.append(code)
    assert codes == [0, 0, 1], err
    assert "2 orders in the last 60 s ≥ submit rate 2" in out
    assert "blocking: limit.submit_rate" in out
    submits = json.loads(state.read_text())["authority"]["submits"]["gen-01"]
    assert submits == ["2026-11-20T15:30:00+00:00"] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policies", "state.json"]


def test_check_when_override_state_fed_back_then_cooldown_holds_the_next(
    run_cli: Run, tmp_path: Path
) -> None:
    """The override's time goes into --state-out; within the cooldown the same close is
    held by the protections it bypassed the first time."""
    state = tmp_path / "state.json"
    shutil.copy(OVERRIDE / "state.json", state)
    args = [
        "--snapshot",
        str(OVERRIDE / "snapshot.json"),
        "--request",
        str(OVERRIDE / "request.json"),
        "--state",
        str(state),
        "--state-out",
        str(state),
    ]
    assert _check(run_cli, *args)[0] == 0
    assert "gen-01/NVDA" in json.loads(state.read_text())["authority"]["overrides"]
    code, out, _ = _check(run_cli, *args, "--now", "2026-11-20T16:30:00Z")
    assert code == 1
    assert "blocking: grace_period, holding_period" in out
    assert "cooling down" in out


def test_check_when_state_from_eval_halts_account_then_even_close_denied(
    run_cli: Run, tmp_path: Path
) -> None:
    """check reads the trading states `bastion eval` writes into the same state file."""
    case, state = EXAMPLES / "kill-switch", tmp_path / "state.json"
    run_cli(
        "eval",
        "--policies",
        str(POLICIES),
        "--snapshot",
        str(case / "snapshot.json"),
        "--state-out",
        str(state),
    )
    code, out, _ = _check(
        run_cli,
        *_inputs(case, "close-request.json"),
        "--state",
        str(state),
    )
    assert code == 1 and "trading state HALTED allows only cancel" in out


# -- exit 2: unreadable input -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"target_size": "abc"}, 'target_size: must be a number ≥ 0, got "abc"'),
        ({"target_size": -5}, "target_size"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"symbol": None}, "symbol: is required"),
        ({"action": "buy"}, "action"),
        ({"account_id": "gen-02"}, "account_id: 'gen-02' is not in the snapshot"),
    ],
    ids=["bad-number", "negative", "unknown-field", "missing-symbol", "bad-action", "account"],
)
def test_check_when_request_malformed_then_exit_2_naming_file_and_field(
    run_cli: Run, tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    """A request that cannot be read is exit 2, never a denial; the file and field are named."""
    order = _request(tmp_path, **changes)
    code, out, err = _check(
        run_cli, "--snapshot", str(APPROVAL / "snapshot.json"), "--request", str(order)
    )
    assert code == 2 and out == ""
    assert str(order) in err and named in err


def test_check_when_request_not_json_then_exit_2_with_line(run_cli: Run, tmp_path: Path) -> None:
    order = tmp_path / "order.json"
    order.write_text('{\n  "symbol": "MSFT",\n}')
    code, _, err = _check(
        run_cli, "--snapshot", str(APPROVAL / "snapshot.json"), "--request", str(order)
    )
    assert code == 2 and f"{order}:3:" in err


def test_check_when_snapshot_unreadable_then_exit_2_naming_fields(
    run_cli: Run, tmp_path: Path
) -> None:
    """A snapshot with bad fields is refused, every field named."""
    data = json.loads((APPROVAL / "snapshot.json").read_text())
    data["accounts"][0]["equity_usd"] = "lots"
    del data["regime"]
    bad = tmp_path / "snap.json"
    bad.write_text(json.dumps(data))
    request = str(APPROVAL / "request.json")
    code, _, err = _check(run_cli, "--snapshot", str(bad), "--request", request)
    assert code == 2
    assert str(bad) in err and "accounts[0].equity_usd" in err and "regime: is required" in err


@pytest.mark.parametrize("which", ["--snapshot", "--request", "--state", "--policies"])
def test_check_when_file_missing_then_exit_2_naming_it(
    run_cli: Run, tmp_path: Path, which: str
) -> None:
    missing = str(tmp_path / "missing.json")
    args = {
        "--snapshot": str(APPROVAL / "snapshot.json"),
        "--request": str(APPROVAL / "request.json"),
    }
    args[which] = missing
    flat = [item for pair in args.items() for item in pair]
    if which == "--policies":
        code, _, err = run_cli("check", *flat)
    else:
        code, _, err = _check(run_cli, *flat)
    assert code == 2 and missing in err


def test_check_when_state_malformed_then_exit_2_naming_the_file(
    run_cli: Run, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "authority": {"trades": {"a/B": [["hold", "x"]]}}}))
    code, _, err = _check(run_cli, *_inputs(APPROVAL), "--state", str(state))
    assert code == 2 and str(state) in err and "malformed" in err


def test_check_when_now_invalid_then_exit_2(run_cli: Run) -> None:
    code, _, err = _check(run_cli, *_inputs(APPROVAL), "--now", "2026-11-20T15:30:00")
    assert code == 2 and "no timezone" in err


def test_check_when_help_then_examples_and_exit_codes(run_cli: Run) -> None:
    """--help shows examples and the three exit codes."""
    code, out, _ = run_cli("check", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "bastion check --snapshot examples/check/approval/snapshot.json" in out
    assert "Exit 0 approved (or downsized" in text and "1 denied" in text
    assert "2 when an input cannot be read" in text
    assert "check" in run_cli("--help")[1]


def test_check_console_script_when_kill_switch_then_exit_1() -> None:
    """The installed script runs an example end to end."""
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    case = EXAMPLES / "kill-switch"
    done = subprocess.run(
        [script, "check", "--policies", str(POLICIES), *_inputs(case)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("DENIED: open MSFT in gen-01")


# -- the README's Python example ----------------------------------------------------


def _readme_check_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Checking an order before it is sent (`bastion check`)")
    end = readme.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", readme[start:end], re.S)
    assert len(blocks) == 2, "the bastion check section has two Python examples, run together"
    return "\n".join(blocks)


def test_check_readme_python_example_when_run_then_works_as_documented(tmp_path: Path) -> None:
    """The Python API example in README.md runs and prints what its comments say."""
    script = tmp_path / "example.py"
    script.write_text(_readme_check_example())
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "downsized True 110"
    assert lines[1].startswith("downsized from 150 to 110 units to meet AAPL exposure")
    assert lines[2] == "False None ('core_asset_immunity',)"
    assert lines[3].startswith("approved Statistics(processed=1, approved=1, downsized=0")
    assert lines[4].startswith("MSFT open ")
    assert lines[5] == "8000.00"
    assert lines[6] == "False"
