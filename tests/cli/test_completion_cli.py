"""`bastion completion bash|zsh|fish`: scripts that parse in their shell and complete
sub-commands, options and choices from the real parser."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.cli.completion import CHOICE, DIRECTORY, FILE, FLAG, command_tree
from bastion.cli.main import COMMANDS, build_parser
from tests.conftest import ROOT

Run = Callable[..., tuple[int, str, str]]


def _script(run_cli: Run, shell: str, tmp_path: Path) -> Path:
    code, out, err = run_cli("completion", shell)
    assert code == 0, err
    path = tmp_path / f"bastion.{shell}"
    path.write_text(out)
    return path


def _bash_complete(script: Path, words: list[str]) -> list[str]:
    """COMPREPLY of the script's `_bastion` for a command line whose last word is being
    typed (an empty last word: after a space)."""
    program = (
        f"source {shlex.quote(str(script))}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_bastion\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line]


def test_completion_when_bash_then_script_is_valid_syntax(run_cli: Run, tmp_path: Path) -> None:
    """`bash -n` accepts the script."""
    script = _script(run_cli, "bash", tmp_path)
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["bastion", "li"], ["lint"]),
        (["bastion", "au"], ["audit", "auth"]),
        (["bastion", "audit", "v"], ["verify"]),
        (["bastion", "serve", "--ad"], ["--adapter"]),
        (["bastion", "serve", "--adapter", ""], ["sim", "replay", "alpaca", "binance", "kraken"]),
        (["bastion", "lint", "--format", "s"], ["sarif"]),
        (["bastion", "lint", "--format", "=", "j"], ["json"]),
        (["bastion", "completion", ""], ["bash", "zsh", "fish"]),
        (["bastion", "locks", "--format", "json", ""], ["list", "release"]),
        (["bastion", "lint", "polic"], ["policies"]),
        (["bastion", "eval", "--policies", "polic"], ["policies"]),
    ],
)
def test_completion_when_bash_completes_then_it_offers_what_the_parser_accepts(
    run_cli: Run, tmp_path: Path, words: list[str], expected: list[str]
) -> None:
    """Sub-commands (nested too), options, choices (also after `--opt=`), paths."""
    script = _script(run_cli, "bash", tmp_path)
    assert _bash_complete(script, words) == expected


def test_completion_when_bash_at_top_then_every_command_is_offered(
    run_cli: Run, tmp_path: Path
) -> None:
    """A new command in cli/main.py's COMMANDS is completed without touching this module."""
    script = _script(run_cli, "bash", tmp_path)
    assert _bash_complete(script, ["bastion", ""]) == list(COMMANDS)


def test_completion_when_zsh_then_script_is_valid_syntax(run_cli: Run, tmp_path: Path) -> None:
    """`zsh -n` accepts the script (when zsh is installed)."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed: the zsh script's syntax is not checked here")
    script = _script(run_cli, "zsh", tmp_path)
    assert script.read_text().startswith("#compdef bastion\n")
    result = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_completion_when_zsh_then_every_dispatched_function_is_defined(run_cli: Run) -> None:
    """Each sub-command a zsh function dispatches to has its own function, with the
    choices of its options (`--format[...]:format:(json text)`)."""
    code, script, _ = run_cli("completion", "zsh")
    assert code == 0
    defined = set(re.findall(r"^(_bastion\w*)\(\) \{", script, flags=re.MULTILINE))
    called = set(re.findall(r"\) (_bastion\w*) ;;", script))
    assert called and called <= defined
    assert {"_bastion", "_bastion_audit_verify", "_bastion_data_check"} <= defined
    assert (
        "--adapter[data feed" in script and ":adapter:(sim replay alpaca binance kraken)" in script
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("bastion au", ["audit", "auth"]),
        ("bastion audit ", ["show", "verify"]),
        ("bastion data check --format ", ["json", "text"]),
        ("bastion serve --ad", ["--adapter"]),
    ],
)
def test_completion_when_fish_completes_then_it_offers_what_the_parser_accepts(
    run_cli: Run, tmp_path: Path, line: str, expected: list[str]
) -> None:
    """fish parses the script and `complete -C` offers the expected words (when fish is
    installed)."""
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed: the fish script is not run here")
    script = _script(run_cli, "fish", tmp_path)
    program = f"source {shlex.quote(str(script))}; complete -C {shlex.quote(line)}"
    result = subprocess.run(
        ["fish", "--no-config", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [entry.split("\t")[0] for entry in result.stdout.splitlines()] == expected


def test_completion_when_unknown_shell_then_exit_2(run_cli: Run) -> None:
    """An unknown shell is a usage error naming the choices."""
    code, _, err = run_cli("completion", "powershell")
    assert code == 2
    assert "bash" in err and "fish" in err


def test_command_tree_when_parser_read_then_kinds_follow_the_arguments() -> None:
    """Flags take nothing, --format has its choices, DIR is a directory, FILE a file."""
    tree = command_tree(build_parser())
    serve = next(node for node in tree.walk() if node.path == ("serve",))
    kinds = {flag: option for option in serve.options for flag in option.flags}
    assert kinds["--once"].kind == FLAG
    assert kinds["--adapter"].kind == CHOICE and "sim" in kinds["--adapter"].choices
    assert kinds["--policies"].kind == DIRECTORY
    assert kinds["--state"].kind == FILE
    nested = {node.path for node in tree.walk()}
    assert {("audit", "verify"), ("audit", "show"), ("data", "check")} <= nested
