"""Start-up: `bastion lint` and `bastion --version` import only what linting needs.

Each runs in a fresh interpreter (the CLI's own `main`), which then lists
`sys.modules`: the service, the venue SDKs, numpy, matplotlib, durable-rules and the
HTTP server stack must not be among them (they cost most of a pre-commit hook's time).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = (
    "bastion.service",
    "alpaca",
    "binance",
    "krakenex",
    "durable",
    "matplotlib",
    "numpy",
    "uvicorn",
    "starlette",
)
_PROBE = """
import json, sys
from bastion.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _imported(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return int(report["code"] or 0), report["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize(
    "argv",
    [
        ("lint", "policies/"),
        ("--version",),
        ("lint", "--format", "sarif", "policies/"),
        ("lint", "--format", "codeclimate", "policies/"),
    ],
    ids=" ".join,
)
def test_startup_when_linting_or_version_then_no_service_sdk_or_numpy_imported(
    argv: tuple[str, ...],
) -> None:
    """None of the FORBIDDEN packages is in sys.modules once the command has run."""
    code, modules = _imported(*argv)
    assert code == 0
    assert "bastion.cli.main" in modules
    assert _heavy(modules) == []


def test_startup_when_alert_file_linted_then_alert_linter_is_still_used() -> None:
    """The lazy import of the AlertPolicy linter: an alerts file is still linted."""
    code, modules = _imported("lint", "examples/alerts/alerts.yaml")
    assert code == 0
    assert "bastion.service.alerting.lint" in modules


def test_startup_when_help_asked_then_every_command_is_listed() -> None:
    """`bastion --help` still imports every command module and lists them all."""
    done = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    assert listed >= {"lint", "diff", "test", "serve", "replay", "completion"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(("--version",), "bastion "), (("lint", "--help"), "usage: bastion lint")],
    ids=" ".join,
)
def test_startup_when_version_or_command_help_then_answered_on_stdout(
    argv: tuple[str, ...], expected: str
) -> None:
    """The lazy parser still answers `--version` and a command's own `--help` (stdout, 0)."""
    done = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith(expected), done.stderr
