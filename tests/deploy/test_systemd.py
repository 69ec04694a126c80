"""The systemd unit: parsed here, and `systemd-analyze verify` when it exists."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli.main import build_parser
from tests.conftest import ROOT
from tests.deploy.kit import DEPLOY, get, running_service

UNIT = DEPLOY / "systemd" / "bastion.service"
INSTALLED_BASTION = "/opt/bastion/bin/bastion"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def _exec_start() -> list[str]:
    return shlex.split(_unit()["Service"]["ExecStart"].replace("\\\n", " "))


def test_unit_when_parsed_then_it_runs_unprivileged_and_restarts_on_failure() -> None:
    """A dedicated user, a state directory, a reload on SIGHUP, no restart loop on exit 2."""
    service = _unit()["Service"]
    assert service["User"] == "bastion"
    assert service["StateDirectory"] == "bastion"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["NoNewPrivileges"] == "yes"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_unit_when_exec_start_parsed_then_bastion_accepts_its_arguments() -> None:
    """ExecStart is a `bastion serve` command line the real parser accepts."""
    argv = _exec_start()
    assert argv[0] == INSTALLED_BASTION
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert args.state == "/var/lib/bastion/state.json"
    assert args.host == "127.0.0.1"  # loopback: without --auth the service refuses others


def test_unit_when_verified_by_systemd_then_no_finding(tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing (it exits 0 on unknown keys, so its
    output is what counts); the binary path points at this venv's bastion."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    local = tmp_path / UNIT.name
    bastion = Path(sys.prefix) / "bin" / "bastion"
    local.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_BASTION, str(bastion)))
    result = subprocess.run(
        [analyze, "verify", str(local)], capture_output=True, text=True, timeout=60, check=False
    )
    findings = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not findings, findings


def test_unit_when_exec_start_run_natively_then_service_answers(tmp_path: Path) -> None:
    """ExecStart, run here with the unit's paths mapped to this checkout and a temporary
    state directory: it serves, and writes the state and the audit trail there."""
    mapped = {
        INSTALLED_BASTION: str(Path(sys.prefix) / "bin" / "bastion"),
        "/etc/bastion/policies": str(ROOT / "policies"),
        "/var/lib/bastion/state.json": str(tmp_path / "state.json"),
        "/var/lib/bastion/audit": str(tmp_path / "audit"),
    }
    argv = [mapped.get(word, word) for word in _exec_start()]
    assert argv[1] == "serve"
    arguments = argv[2:]
    port_at = arguments.index("--port")
    del arguments[port_at : port_at + 2]
    with running_service(tmp_path, *arguments) as port:
        assert get(port, "/healthz")[0] == 200
    assert (tmp_path / "state.json").exists()
    assert (tmp_path / "audit").is_dir()
