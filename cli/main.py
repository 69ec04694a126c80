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
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, cast

from bastion.engine.errors import BastionError

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
    try:
        return version("bastion-risk")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bastion",
        description="Bastion: risk policies as YAML, validated, linted and evaluated.",
        epilog="Exit codes: 0 ok, 1 findings/denials, 2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
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
    parser = build_parser()
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
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        return 130
    except BrokenPipeError:
        # `bastion atr big.csv | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
