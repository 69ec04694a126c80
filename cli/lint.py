"""Validate policy files against their schemas and lint them for semantic mistakes.

Each finding is reported as file:line:col with a stable code (BST...). Directories
are searched recursively for *.yaml / *.yml; hidden entries (.*) are skipped, and a
Kubernetes ConfigMap mounted as a directory is read once, through its ..data symlink
(README "Hot reload from a Kubernetes ConfigMap"). Exit 0 when clean, 1 when there are
errors (or warnings with --strict), 2 on a usage error or an unreadable path.

examples:
  bastion lint                               # ./policies
  bastion lint policies/ --format github     # annotations in GitHub Actions
  bastion lint policies/ --format sarif > bastion.sarif
  bastion lint --format codeclimate > gl-code-quality-report.json   # GitLab code quality
  bastion lint --explain BST501              # what a code means and the fix
  bastion lint --strict policies/            # warnings fail too: a unit slip (0.03 for 3 %)
  bastion lint examples/alerts/alerts.yaml   # the --alerts file of bastion serve
"""

from __future__ import annotations

import argparse
import sys

from bastion.engine.errors import UsageError
from bastion.engine.lint.findings import CODES
from bastion.engine.lint.reporters import REPORTERS
from bastion.engine.lint.runner import LintResult, lint_paths
from bastion.engine.policy.loader import discover, is_service_config

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="policy files or directories (default: policies)"
    )
    parser.add_argument(
        "--format", choices=sorted(REPORTERS), default="text", help="output format (default text)"
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    parser.add_argument("--explain", metavar="CODE", help="explain one finding code and exit")
    parser.add_argument(
        "--list-codes", action="store_true", help="list every finding code and exit"
    )


def explain(code: str) -> str:
    info = CODES.get(code.upper())
    if info is None:
        raise UsageError(f"unknown code {code!r}; `bastion lint --list-codes` lists them")
    return f"{info.code} {info.title} ({info.severity})\n\n{info.explanation}\n\nFix: {info.fix}\n"


def with_alert_files(result: LintResult, paths: list[str]) -> LintResult:
    """`result` with the kind: AlertPolicy files under `paths` linted too; their linter
    (service.alerting.lint) is imported only when there is one (start-up)."""
    if not any(is_service_config(path) for path in discover(paths)):
        return result
    from bastion.service.alerting.lint import with_alert_files  # noqa: PLC0415

    return with_alert_files(result, paths)


def run(args: argparse.Namespace) -> int:
    if args.explain:
        sys.stdout.write(explain(args.explain))
        return 0
    if args.list_codes:
        for info in CODES.values():
            sys.stdout.write(f"{info.code}  {info.severity:<7}  {info.title}\n")
        return 0
    paths = args.paths or ["policies"]
    result = with_alert_files(lint_paths(paths), paths)  # and kind: AlertPolicy (--alerts)
    from bastion.adapters.replay_config import with_replay_files  # noqa: PLC0415 - lint only

    result = with_replay_files(result, paths)  # and kind: ReplayFeed (replay --config)
    sys.stdout.write(REPORTERS[args.format](result))
    return 1 if result.failed(strict=args.strict) else 0
