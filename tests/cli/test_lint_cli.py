"""`bastion lint` and `bastion schema` from the command line: output and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
CASES = ROOT / "tests" / "cases" / "lint"


def test_lint_when_shipped_policies_then_exit_0(run_cli: Run) -> None:
    """Clean input exits 0 and says so."""
    code, out, _ = run_cli("lint", str(POLICIES))
    assert code == 0 and "no problems found" in out


def test_lint_when_no_path_then_defaults_to_policies_dir(
    run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without arguments, ./policies is linted."""
    monkeypatch.chdir(ROOT)
    code, out, _ = run_cli("lint")
    assert code == 0 and "7 files checked" in out  # six policies and bastion.yaml


def test_lint_when_error_finding_then_exit_1(run_cli: Run) -> None:
    """Any error is exit 1."""
    code, out, _ = run_cli("lint", str(CASES / "breaker-never-fires"))
    assert code == 1 and "BST303" in out


def test_lint_when_only_warnings_then_exit_0_unless_strict(run_cli: Run) -> None:
    """Warnings pass by default and fail with --strict."""
    assert run_cli("lint", str(CASES / "shadow-mode"))[0] == 0
    assert run_cli("lint", str(CASES / "shadow-mode"), "--strict")[0] == 1


def test_lint_when_path_missing_then_exit_2_with_message(run_cli: Run) -> None:
    """An unreadable path is a usage error, exit 2, named on stderr."""
    code, _, err = run_cli("lint", "no/such/dir")
    assert code == 2 and "no/such/dir" in err


def test_lint_when_bad_format_then_exit_2(run_cli: Run) -> None:
    """argparse rejects an unknown format with exit 2."""
    assert run_cli("lint", "--format", "xml")[0] == 2


def test_lint_when_explain_code_then_prints_explanation_and_fix(run_cli: Run) -> None:
    """--explain tells what a code means and how to fix it."""
    code, out, _ = run_cli("lint", "--explain", "bst501")
    assert code == 0 and out.startswith("BST501 unit-slip-pct") and "Fix:" in out
    assert run_cli("lint", "--explain", "BST999")[0] == 2


def test_lint_when_list_codes_then_every_code_listed(run_cli: Run) -> None:
    """--list-codes prints the catalogue."""
    code, out, _ = run_cli("lint", "--list-codes")
    assert code == 0 and "BST001" in out and "BST701" in out


def test_schema_when_kind_given_then_prints_that_schema(run_cli: Run) -> None:
    """`bastion schema BreakerPolicy` and `bastion schema breakers` print the same JSON."""
    code, out, _ = run_cli("schema", "BreakerPolicy")
    assert code == 0 and json.loads(out)["title"] == "Bastion BreakerPolicy"
    assert run_cli("schema", "breakers")[1] == out
    assert run_cli("schema", "Nope")[0] == 2


def test_schema_when_out_dir_then_writes_files_equal_to_committed(
    run_cli: Run, tmp_path: Path
) -> None:
    """`bastion schema --out DIR` writes the same files as schemas/."""
    assert run_cli("schema", "--out", str(tmp_path))[0] == 0
    for path in (ROOT / "schemas").glob("*.schema.json"):
        if (tmp_path / path.name).exists():
            assert (tmp_path / path.name).read_text() == path.read_text()


def test_console_script_when_run_as_process_then_lints_and_exits(tmp_path: Path) -> None:
    """The installed `bastion` script works end to end, GitHub format included."""
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    target = tmp_path / "policies"
    shutil.copytree(CASES / "unknown-extends", target)
    done = subprocess.run(
        [script, "lint", str(target), "--format", "github"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.startswith("::error file=")
    assert "did you mean" in done.stdout


def test_main_when_no_command_then_help_and_exit_2(run_cli: Run) -> None:
    """`bastion` alone prints help and exits 2."""
    code, _, err = run_cli()
    assert code == 2 and "lint" in err


def test_pre_commit_hooks_when_entry_run_then_lints_the_policies() -> None:
    """Each hook in .pre-commit-hooks.yaml is well formed and its command passes here."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    for hook in hooks:
        assert {"id", "name", "entry", "language", "files"} <= hook.keys()
        argv = [script, *hook["entry"].split()[1:], *hook.get("args", [])]
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
