"""Run policy unit tests: steps over time, each with the outcome a risk officer expects.

A test file (kind: PolicyTest, schemas/policytest.schema.json) names the policy set
(a path relative to the file; --policies overrides it, to run the same suite against a
candidate set) and its tests: each a sequence of steps, each step a snapshot (a file,
inline, or edits of the previous one such as 'SPY price 571.2'), optional manual
resets and order checks, and the expected escalation levels, breakers, trading
states, symbol states, roll urgencies and check outcomes (any subset). Steps run in
order through the same engine and authority as `bastion eval` and `bastion check`, at
the time each step names. Test files are never read as policies: lint, the loader and
the service's watcher skip them. README "Testing policies" has the format.

examples:
  bastion test                                   # every test under policies/tests/
  bastion test policies/tests/breakers.yaml
  bastion test --policies candidate/             # the shipped suite against a candidate
  bastion test --coverage --fail-under 100       # and list every rule no test fired
  bastion test --format junit > report.xml       # for CI

Exit 0 every test passed, 1 a test failed (or coverage is under --fail-under), 2 a test
file, a file it names or the policy set is broken (file:line:col and the fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bastion.engine.errors import BastionError, UsageError
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.loader import discover as discover_files
from bastion.engine.policy.loader import is_test_file
from bastion.engine.policytest.coverage import Coverage, measure
from bastion.engine.policytest.model import TestFile, TestFileError, load_test_file
from bastion.engine.policytest.report import Run, render, render_text
from bastion.engine.policytest.runner import Fired, TestResult, policies_of, run_file

HELP = __doc__ or ""
EXIT_OK, EXIT_FAILED, EXIT_BROKEN = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        default=["policies/tests"],
        metavar="PATH",
        help="test files or directories searched for them (default: policies/tests)",
    )
    parser.add_argument(
        "--policies",
        metavar="DIR",
        help="run against this policy set instead of the one each file names",
    )
    parser.add_argument("--format", choices=("text", "json", "junit"), default="text")
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="list every breaker, escalation level, limit and protection no test fired",
    )
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="N",
        help="exit 1 when coverage is below N per cent (implies --coverage)",
    )


def discover(paths: list[str]) -> list[Path]:
    """Test files named, or found (recursively) under directories: YAML with kind
    PolicyTest (snapshots and other YAML beside them, and hidden entries, are skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # the loader's search: hidden entries skipped, a ConfigMap key found once
            found += [p for p in discover_files([path]) if is_test_file(p)]
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    if not found:
        raise UsageError(f"no test files (kind: PolicyTest) under {', '.join(paths)}")
    return list(dict.fromkeys(found))


def _merge(parts: list[Coverage]) -> Coverage:
    items = tuple(item for part in parts for item in part.items)
    uncovered = tuple(item for part in parts for item in part.uncovered)
    return Coverage(items, uncovered)


def run(args: argparse.Namespace) -> int:
    broken: list[str] = []
    files: list[TestFile] = []
    for path in discover(args.paths):
        try:
            files.append(load_test_file(path))
        except TestFileError as error:
            broken.append(str(error))
    by_set: dict[Path, list[TestFile]] = {}
    for test_file in files:
        by_set.setdefault(policies_of(test_file, args.policies), []).append(test_file)
    results: list[TestResult] = []
    coverages: list[Coverage] = []
    for policies, members in by_set.items():
        try:
            policy_set = load_policy_set([policies])
        except BastionError as error:
            broken += [f"{m.place}: policy set {policies}: {error}" for m in members]
            continue
        compiled = compile_policy_set(policy_set)
        fired = Fired()
        try:
            for test_file in members:
                passed_or_failed, problems = run_file(test_file, compiled, fired)
                results += passed_or_failed
                broken += [str(problem) for problem in problems]
            coverages.append(measure(compiled, fired.keys))
        finally:
            compiled.close()
    want_coverage = args.coverage or args.fail_under is not None
    report = Run(tuple(results), _merge(coverages) if want_coverage else None)
    output = render(report, args.format)
    sys.stdout.write(output)
    if args.format == "junit" and report.coverage is not None:
        sys.stderr.write(render_text(Run((), report.coverage)).split("\n", 1)[1])
    for problem in broken:
        print(f"bastion test: error: {problem}", file=sys.stderr)
    if broken:
        return EXIT_BROKEN
    if report.failed:
        return EXIT_FAILED
    coverage = report.coverage
    if args.fail_under is not None and coverage is not None and coverage.percent < args.fail_under:
        print(
            f"bastion test: coverage {coverage.percent:.1f} % is under "
            f"--fail-under {args.fail_under:g} %",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK
