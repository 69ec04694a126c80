"""`bastion test` from the command line: pass / fail / broken, formats, coverage."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

from tests.conftest import POLICIES

Run = Callable[..., tuple[int, str, str]]
CALM = POLICIES / "tests" / "snapshots" / "calm.json"


def _write(tmp_path: Path, body: str, name: str = "suite.yaml") -> Path:
    head = f"""\
        apiVersion: bastion/v1
        kind: PolicyTest
        metadata: {{name: scratch}}
        policies: {POLICIES}
        snapshot: {CALM}
        """
    path = tmp_path / name
    path.write_text(textwrap.dedent(head) + textwrap.dedent(body), encoding="utf-8")
    return path


PASSING = """\
    tests:
      - name: daily loss halts
        steps:
          - set: [gen-01 equity 95000]
            expect:
              trading_state: {gen-01: HALTED}
    """
FAILING = """\
    tests:
      - name: expects the wrong state
        steps:
          - name: calm
            expect:
              trading_state: {gen-01: ACTIVE}
          - name: the loss
            after: 1m
            set: [gen-01 equity 95000]
            expect:
              trading_state: {gen-01: REDUCING}
              breakers: {daily_loss_pct@account:gen-01: tripped}
    """


def test_test_when_every_expectation_holds_then_exit_0_and_pass_line(
    run_cli: Run, tmp_path: Path
) -> None:
    """A passing test prints PASS with its name and exits 0."""
    code, out, _ = run_cli("test", str(_write(tmp_path, PASSING)))
    assert code == 0
    assert "PASS" in out and "daily loss halts" in out and "1 passed, 0 failed" in out


def test_test_when_expectation_differs_then_exit_1_with_diff_at_failing_step(
    run_cli: Run, tmp_path: Path
) -> None:
    """A failing test names the step (number, name, file:line:col) and shows expected
    against actual only for what differs."""
    path = _write(tmp_path, FAILING)
    code, out, _ = run_cli("test", str(path))
    assert code == 1
    assert f"at step 2 'the loss' ({path}:12:" in out
    assert "trading_state gen-01" in out
    assert "- expected REDUCING" in out and "+ actual   HALTED" in out
    assert "daily_loss_pct" not in out  # it held: not part of the diff


def test_test_when_format_json_then_mismatches_are_data(run_cli: Run, tmp_path: Path) -> None:
    """--format json gives each test's result and its mismatches."""
    code, out, _ = run_cli("test", str(_write(tmp_path, FAILING)), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["failed"] == 1
    [test] = report["tests"]
    assert test["failing_step"] == 2
    assert test["mismatches"] == [
        {"what": "trading_state gen-01", "expected": "REDUCING", "actual": "HALTED"}
    ]


def test_test_when_format_junit_then_failure_element_per_failed_test(
    run_cli: Run, tmp_path: Path
) -> None:
    """--format junit is JUnit XML: one testcase per test, a failure element when it failed."""
    _write(tmp_path, PASSING, "a.yaml")
    _write(tmp_path, FAILING, "b.yaml")
    code, out, _ = run_cli("test", str(tmp_path), "--format", "junit")
    root = ElementTree.fromstring(out.split("\n", 1)[1])
    assert code == 1
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1 and "expected REDUCING, got HALTED" in (
        failures[0].get("message") or ""
    )


def test_test_when_file_breaks_schema_then_exit_2_with_file_line_col(
    run_cli: Run, tmp_path: Path
) -> None:
    """A misspelt key is a broken file (exit 2), located at file:line:col."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: typo
            steps:
              - expect:
                  trading_states: {gen-01: ACTIVE}
        """,
    )
    code, _, err = run_cli("test", str(path))
    assert code == 2
    assert f"{path}:10:" in err and "trading_states" in err


def test_test_when_edit_names_unknown_field_then_exit_2_naming_the_fields(
    run_cli: Run, tmp_path: Path
) -> None:
    """An edit that does not apply is a broken file, with the fields that exist."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: bad edit
            steps:
              - set: [gen-01 equty 1]
        """,
    )
    code, _, err = run_cli("test", str(path))
    assert code == 2
    assert f"{path}:9:" in err and "no field 'equty'" in err and "equity_usd" in err


def test_test_when_time_goes_back_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """Steps run forward in time: an earlier `at` is refused."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: back in time
            steps:
              - {}
              - at: "2026-11-20T15:00:00Z"
        """,
    )
    code, _, err = run_cli("test", str(path))
    assert code == 2 and "time goes back" in err


def test_test_when_policies_override_then_suite_runs_against_candidate(
    run_cli: Run, tmp_path: Path
) -> None:
    """--policies runs the same test against another set: a looser candidate fails it."""
    candidate = tmp_path / "candidate"
    shutil.copytree(POLICIES, candidate, ignore=shutil.ignore_patterns("tests"))
    breakers = candidate / "breakers.yaml"
    breakers.write_text(
        breakers.read_text(encoding="utf-8").replace(
            'metric: system.error_rate_pct\n      comparison: ">="\n      threshold: 10',
            'metric: system.error_rate_pct\n      comparison: ">="\n      threshold: 11',
        ),
        encoding="utf-8",
    )
    suite = _write(
        tmp_path,
        """\
        tests:
          - name: a 10 % error rate halts
            steps:
              - set: [system error_rate 10]
                expect:
                  trading_state: {gen-01: HALTED}
        """,
    )
    assert run_cli("test", str(suite))[0] == 0
    code, out, _ = run_cli("test", str(suite), "--policies", str(candidate))
    assert code == 1 and "+ actual   ACTIVE" in out


def test_test_when_coverage_under_fail_under_then_exit_1_listing_unfired_rules(
    run_cli: Run, tmp_path: Path
) -> None:
    """--fail-under fails a passing suite that leaves rules unfired, and lists them."""
    code, out, err = run_cli("test", str(_write(tmp_path, PASSING)), "--fail-under", "90")
    assert code == 1 and "is under --fail-under 90 %" in err
    assert "never fired:" in out
    assert "breaker default-breakers/volume_anomaly" in out
    assert "breaker default-breakers/daily_loss_pct" not in out.split("never fired:")[1]


def test_test_when_no_test_files_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """A directory without test files is a usage error, not a silent pass."""
    (tmp_path / "policy.yaml").write_text("kind: BreakerPolicy\n", encoding="utf-8")
    code, _, err = run_cli("test", str(tmp_path))
    assert code == 2 and "no test files" in err


def test_test_when_expectation_names_unknown_position_then_exit_2_not_a_pass(
    run_cli: Run, tmp_path: Path
) -> None:
    """A position the step's snapshot lacks is a typo in the test: a broken file (it
    would otherwise compare with the resting level and pass)."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: typo
            steps:
              - expect:
                  escalation: {SPY-2: normal}
        """,
    )
    code, _, err = run_cli("test", str(path))
    assert code == 2 and "no position 'SPY-2'" in err, err


def test_test_when_expected_breaker_not_in_policy_set_then_test_fails(
    run_cli: Run, tmp_path: Path
) -> None:
    """A breaker the set under test lacks (removed, renamed) fails the test, even when
    it is expected armed: the set no longer has what the test relies on."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: removed breaker
            steps:
              - expect:
                  breakers: {daily_los_pct@account:gen-01: armed}
        """,
    )
    code, out, _ = run_cli("test", str(path))
    assert code == 1
    assert "+ actual   no breaker 'daily_los_pct' in the policy set" in out


def test_test_when_order_names_unknown_account_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """An order for an account the snapshot lacks is a broken test, not a denial."""
    path = _write(
        tmp_path,
        """\
        tests:
          - name: typo
            steps:
              - checks:
                  - order: {account_id: gen-02, symbol: XYZ, action: open, target_size: 1}
                    expect: {outcome: denied}
        """,
    )
    code, _, err = run_cli("test", str(path))
    assert code == 2 and f"{path}:10:" in err and "gen-02" in err


def test_test_when_step_gives_inline_snapshot_then_it_is_used(run_cli: Run, tmp_path: Path) -> None:
    """A whole snapshot may be written inline in a step (JSON is YAML)."""
    calm = json.loads(CALM.read_text(encoding="utf-8"))
    calm["accounts"][0]["equity_usd"] = 95000
    path = _write(
        tmp_path,
        f"""\
        tests:
          - name: inline
            steps:
              - snapshot: {json.dumps(calm)}
                expect:
                  trading_state: {{gen-01: HALTED, com-01: ACTIVE}}
        """,
    )
    code, out, _ = run_cli("test", str(path))
    assert code == 0, out
