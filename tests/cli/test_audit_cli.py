"""`bastion audit verify|show`: summary, first file:line, JSON, filters, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.service.audit import AuditTrail
from tests.conftest import ROOT
from tests.service.audit_support import (
    KEY,
    StepClock,
    files_of,
    forged_line,
    lines_of,
    write_lines,
    write_realistic,
    write_sample_trail,
)

Run = Callable[..., tuple[int, str, str]]
EXAMPLE = ROOT / "examples" / "audit"


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A keyed 300-record trail over several files, with the key in the environment."""
    directory = tmp_path / "audit"
    trail = AuditTrail.open(directory, clock=StepClock(), key=KEY, max_bytes=8_000, fsync=False)
    write_realistic(trail, 300)
    trail.close()
    monkeypatch.setenv("BASTION_AUDIT_KEY", KEY.decode())
    return directory


def test_audit_verify_when_intact_then_exit_0_and_summary(run_cli: Run, keyed: Path) -> None:
    """An intact trail: one summary line with records, files, the time span, HMACs checked."""
    code, out, _ = run_cli("audit", "verify", str(keyed))
    files = len(files_of(keyed))
    assert code == 0
    assert out == (
        f"intact: 300 records in {files} files, chain from 2026-12-01T21:30:01.000000Z "
        "to 2026-12-01T21:35:00.000000Z, hmac: checked\n"
    )


def test_audit_verify_when_line_deleted_then_exit_1_first_file_line_named(
    run_cli: Run, keyed: Path
) -> None:
    """A deleted line: exit 1, the problem first as file:line, then the TAMPERED summary."""
    path = files_of(keyed)[2]
    lines = lines_of(path)
    del lines[4]
    write_lines(path, lines)
    code, out, _ = run_cli("audit", "verify", str(keyed))
    first, *_, summary = out.splitlines()
    assert code == 1
    assert first.startswith(f"{path.name}:5: record(s) seq ") and first.endswith("removed")
    assert summary.startswith(f"TAMPERED: 1 problem(s), the first at {path.name}:5;")


def test_audit_verify_when_line_added_by_hand_and_key_set_then_exit_1(
    run_cli: Run, keyed: Path
) -> None:
    """A well-chained line without the HMAC is caught with BASTION_AUDIT_KEY set."""
    path = files_of(keyed)[-1]
    lines = lines_of(path)
    write_lines(path, [*lines, forged_line(lines[-1], kind="breaker_reset_requested")])
    code, out, _ = run_cli("audit", "verify", str(keyed))
    assert code == 1 and out.startswith(f"{path.name}:{len(lines) + 1}: no HMAC")


def test_audit_verify_when_json_then_document_with_problems(run_cli: Run, keyed: Path) -> None:
    """--format json carries ok, counts, first_bad and every problem with its code."""
    files = files_of(keyed)
    files[1].unlink()
    code, out, _ = run_cli("audit", "verify", str(keyed), "--format", "json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False and document["hmac"] == "checked"
    assert document["first_bad"] == f"{files[2].name}:1"
    assert document["problems"][0]["code"] == "file_removed"


def test_audit_verify_when_key_wrong_then_exit_1(
    run_cli: Run, keyed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrong key fails every HMAC: one problem line at the first record, counted."""
    monkeypatch.setenv("BASTION_AUDIT_KEY", "a-different-key-0123456789")
    code, out, _ = run_cli("audit", "verify", str(keyed))
    assert code == 1 and "HMAC does not match" in out and "(300 records)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "verify", "/nonexistent/audit"], "not a directory"),
        (["audit", "verify", "--anchor", "12:abc"], "want SEQ:HASH"),
        (["audit", "show", "--since", "yesterday"], "not an ISO time"),
        (["audit"], "required"),
    ],
    ids=["missing-dir", "bad-anchor", "bad-since", "no-subcommand"],
)
def test_audit_when_input_unreadable_or_usage_wrong_then_exit_2(
    run_cli: Run, args: list[str], message: str
) -> None:
    """Unreadable directories and bad arguments exit 2 and say why."""
    code, _, err = run_cli(*args)
    assert code == 2 and message in err


def test_audit_verify_when_directory_empty_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """A directory without audit files is the wrong directory, not an intact trail."""
    code, _, err = run_cli("audit", "verify", str(tmp_path))
    assert code == 2 and "no audit files" in err


def test_audit_verify_when_key_too_short_then_exit_2(
    run_cli: Run, keyed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weak key is refused with the fix, not used."""
    monkeypatch.setenv("BASTION_AUDIT_KEY", "short")
    code, _, err = run_cli("audit", "verify", str(keyed))
    assert code == 2 and "at least 16" in err


def test_audit_show_when_filtered_then_one_line_per_matching_record(run_cli: Run) -> None:
    """Text: time, kind, principal, subject, summary; filters by kind and principal."""
    code, out, _ = run_cli(
        "audit", "show", str(EXAMPLE), "--kind", "order_checked", "--principal", "trader-*"
    )
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[1].startswith(
        "2026-12-01T22:55:00.000000Z  order_checked  trader-1  account:acc-1  outcome=denied"
    )


def test_audit_show_when_time_window_and_json_then_lines_as_written(run_cli: Run) -> None:
    """--since inclusive, --until exclusive; JSON lines are byte for byte the file's lines."""
    code, out, _ = run_cli(
        "audit",
        "show",
        str(EXAMPLE),
        "--since",
        "2026-12-01T23:29",
        "--until",
        "2026-12-02T00:20:00Z",
        "--format",
        "json",
    )
    written = [line.decode() for path in files_of(EXAMPLE) for line in lines_of(path)]
    shown = out.splitlines()
    assert code == 0 and [json.loads(line)["seq"] for line in shown] == [7, 8, 9]
    assert all(line in written for line in shown)


def test_audit_show_when_line_damaged_then_skipped_with_warning(
    run_cli: Run, tmp_path: Path
) -> None:
    """`show` reads on past a damaged line and names it on stderr."""
    directory = Path(shutil.copytree(EXAMPLE, tmp_path / "audit"))
    path = files_of(directory)[0]
    lines = lines_of(path)
    lines[2] = b"{garbage"
    write_lines(path, lines)
    code, out, err = run_cli("audit", "show", str(directory))
    assert code == 0 and len(out.splitlines()) == 10
    assert f"warning: {path.name}:3: not JSON" in err


def test_audit_example_when_regenerated_then_identical_and_intact(tmp_path: Path) -> None:
    """examples/audit/ is what write_sample_trail writes (regenerate it with that function
    if the format changes) and verifies intact."""
    write_sample_trail(tmp_path)
    assert [p.name for p in files_of(tmp_path)] == [p.name for p in files_of(EXAMPLE)]
    for fresh, shipped in zip(files_of(tmp_path), files_of(EXAMPLE), strict=True):
        assert fresh.read_bytes() == shipped.read_bytes(), shipped.name


def test_audit_help_when_asked_then_examples_shown(run_cli: Run) -> None:
    """Both sub-commands explain themselves with examples and exit codes."""
    for sub in ("verify", "show"):
        code, out, _ = run_cli("audit", sub, "--help")
        assert code == 0 and "examples:" in out and "Exit codes" in out


def test_audit_verify_when_run_as_console_script_then_exit_0() -> None:
    """The installed entry point verifies the shipped example trail."""
    script = Path(sys.executable).parent / "bastion"
    completed = subprocess.run(
        [str(script), "audit", "verify", str(EXAMPLE), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["records"] == 11


def test_audit_verify_when_many_problems_then_text_capped_json_complete(
    run_cli: Run, keyed: Path
) -> None:
    """Text shows the first 50 problems and how many more; JSON lists every one."""
    for path in files_of(keyed)[:6]:
        write_lines(path, [b"{damaged" for _ in lines_of(path)])
    _, out, _ = run_cli("audit", "verify", str(keyed), "--format", "json")
    problems = json.loads(out)["problems"]
    assert len(problems) > 60
    code, out, _ = run_cli("audit", "verify", str(keyed))
    assert code == 1 and f"... and {len(problems) - 50} more problem(s)" in out
    assert len([line for line in out.splitlines() if "unreadable record" in line]) == 50
