"""How the docs test runs a block and reports a command that does not work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.docs.doc_blocks import parse_text
from tests.docs.doc_runner import check, offline_environ, run_block


def _run(tmp_path: Path, *lines: str) -> list[str | None]:
    [block] = parse_text("\n".join(["## S", "```console", *lines, "```"]) + "\n", "DOC.md")
    scratch = tmp_path / "repo"
    scratch.mkdir()
    outcomes = run_block(block, scratch, offline_environ(scratch), {})
    return [check(outcome, block.exit_code) for outcome in outcomes]


def test_run_block_when_commands_share_a_session_then_state_carries_over(tmp_path: Path) -> None:
    """cd and variables of one command are seen by the next command of the block."""
    failures = _run(tmp_path, "$ mkdir d && cd d && export GREETING=hi", "$ echo $GREETING $(pwd)")
    assert failures == [None, None]


def test_check_command_when_exit_code_differs_then_failure_names_line_and_output(
    tmp_path: Path,
) -> None:
    """A failure gives file:line, the command, both exit codes and the output's tail."""
    [failure] = _run(tmp_path, "$ echo something broke >&2; exit 3")
    assert failure is not None
    assert failure.splitlines()[0] == "DOC.md:3: wrong exit code"
    assert "$ echo something broke >&2; exit 3" in failure
    assert "exit code 3, the document expects 0" in failure
    assert "| something broke" in failure


def test_run_block_when_a_command_ends_the_shell_then_later_ones_say_not_run(
    tmp_path: Path,
) -> None:
    """After `exit`, the following commands are reported as not run, not as timed out."""
    [_, failure] = _run(tmp_path, "$ exit 0", "$ true")
    assert failure is not None
    assert "not run: an earlier command of the block ended the shell" in failure


def test_check_command_when_output_line_missing_then_failure_quotes_it(tmp_path: Path) -> None:
    """An expected line that is not printed is quoted in the failure."""
    [failure] = _run(tmp_path, "$ echo APPROVED", "DENIED: ...")
    assert failure is not None
    assert "the output has no line matching 'DENIED: ...'" in failure
    assert "| APPROVED" in failure


def test_offline_environ_when_python_connects_out_then_refused(tmp_path: Path) -> None:
    """A Python started by a documented command cannot reach beyond 127.0.0.1."""
    env = offline_environ(tmp_path / "repo")
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "the network beyond 127.0.0.1 is off" in result.stderr
    assert not any(name.endswith(("_API_KEY", "_SECRET")) for name in env)
