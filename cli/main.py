"""`bastion` entry point: one module per sub-command, registered in COMMANDS.

Exit codes (STYLE.md rule 6): 0 ok, 1 findings / denials / failed tests,
2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, Protocol, cast

from bastion.engine.errors import BastionError
from bastion.engine.native import StaleBuild

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class Command(Protocol):
    """What a sub-command module provides."""

    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Sub-command name -> module. Explicit, no scanning: add a line to add a command.
COMMANDS: dict[str, str] = {
    "lint": "bastion.cli.lint",
    "diff": "bastion.cli.diff",
    "schema": "bastion.cli.schema",
    "eval": "bastion.cli.eval",
    "check": "bastion.cli.check",
    "replay": "bastion.cli.replay",
    "test": "bastion.cli.policy_test",
    "serve": "bastion.cli.serve",
    "atr": "bastion.cli.atr",
    "data": "bastion.cli.data",
    "audit": "bastion.cli.audit",
    "auth": "bastion.cli.auth",
    "locks": "bastion.cli.locks",
    "completion": "bastion.cli.completion",
}


def _version() -> str:
    # importlib.metadata costs ~25 ms: read only when --version is asked for.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("bastion-risk")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


class _VersionAction(argparse.Action):
    """`--version`, with the version read when asked for (not at every start)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


def _selected(argv: Sequence[str]) -> str | None:
    """The sub-command `argv` runs (its first word that is one), or None: then every
    command module is imported (help, completion, an unknown word's error)."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `argv`, only the module of the command it runs is imported
    (start-up: `bastion lint` never imports the service, the venue SDKs or numpy)."""
    parser = argparse.ArgumentParser(
        prog="bastion",
        description="Bastion: risk policies as YAML, validated, linted and evaluated.",
        epilog="Exit codes: 0 ok, 1 findings/denials, 2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = _selected(argv) if argv is not None else None
    lazy = argv is not None and (selected is not None or "--version" in argv)
    for name, module_name in COMMANDS.items():
        if lazy and name != selected:
            sub.add_parser(name)  # never shown: argv runs another command or --version
            continue
        command = cast(Command, import_module(module_name))
        command_parser = sub.add_parser(
            name,
            help=command.HELP.splitlines()[0],
            description=command.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(command_parser)
        command_parser.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)
    except StaleBuild as error:  # a command's import refused a stale compiled order check
        print(f"bastion: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    run = cast("Callable[[argparse.Namespace], int] | None", getattr(args, "_run", None))
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except BastionError as error:
        print(f"bastion {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StaleBuild as error:  # imported on first use: refused as at start (PLAYBOOKS)
        print(f"bastion {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        return 130
    except BrokenPipeError:
        # `bastion atr big.csv | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
