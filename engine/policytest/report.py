"""Reports of a `bastion test` run, picked by name: text, json, junit (JUnit XML for CI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from bastion.engine.policytest.coverage import Coverage
from bastion.engine.policytest.runner import TestResult


@dataclass(frozen=True, slots=True)
class Run:
    results: tuple[TestResult, ...]
    coverage: Coverage | None = None  # with --coverage

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results if not result.passed)


def _diff(result: TestResult) -> list[str]:
    width = max((len(m.what) for m in result.mismatches), default=0)
    lines = [f"    at step {result.step}{_named(result.step_name)} ({result.place}):"]
    for mismatch in result.mismatches:
        lines.append(f"      {mismatch.what:<{width}}  - expected {mismatch.expected}")
        lines.append(f"      {'':<{width}}  + actual   {mismatch.actual}")
    lines += [f"      note: {note}" for note in result.notes]
    return lines


def _named(name: str) -> str:
    return f" {name!r}" if name else ""


def _coverage_lines(coverage: Coverage) -> list[str]:
    covered = len(coverage.items) - len(coverage.uncovered)
    lines = [f"coverage: {covered}/{len(coverage.items)} rules fired ({coverage.percent:.1f} %)"]
    if coverage.uncovered:
        lines.append("never fired:")
        lines += [f"  {item.label}" for item in coverage.uncovered]
    return lines


def render_text(run: Run) -> str:
    lines: list[str] = []
    for result in run.results:
        mark = "PASS" if result.passed else "FAIL"
        lines.append(f"{mark} {result.file} :: {result.name}")
        if not result.passed:
            lines += _diff(result)
    passed = len(run.results) - run.failed
    lines.append(f"{passed} passed, {run.failed} failed")
    if run.coverage is not None:
        lines += _coverage_lines(run.coverage)
    return "\n".join(lines) + "\n"


def render_json(run: Run) -> str:
    payload: dict[str, object] = {
        "passed": len(run.results) - run.failed,
        "failed": run.failed,
        "tests": [
            {
                "file": r.file,
                "suite": r.suite,
                "name": r.name,
                "passed": r.passed,
                "steps_run": r.steps_run,
                "failing_step": r.step,
                "failing_step_name": r.step_name or None,
                "place": r.place or None,
                "mismatches": [
                    {"what": m.what, "expected": m.expected, "actual": m.actual}
                    for m in r.mismatches
                ],
                "notes": list(r.notes),
            }
            for r in run.results
        ],
    }
    if run.coverage is not None:
        payload["coverage"] = {
            "percent": round(run.coverage.percent, 2),
            "rules": len(run.coverage.items),
            "uncovered": [
                {"kind": i.kind, "policy": i.policy, "rule": i.rule} for i in run.coverage.uncovered
            ],
        }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def render_junit(run: Run) -> str:
    root = ElementTree.Element(
        "testsuites", name="bastion test", tests=str(len(run.results)), failures=str(run.failed)
    )
    suites: dict[str, list[TestResult]] = {}
    for result in run.results:
        suites.setdefault(result.file, []).append(result)
    for file, results in suites.items():
        failures = sum(1 for r in results if not r.passed)
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=results[0].suite,
            file=file,
            tests=str(len(results)),
            failures=str(failures),
            errors="0",
        )
        for result in results:
            case = ElementTree.SubElement(
                suite, "testcase", classname=results[0].suite, name=result.name, file=file
            )
            if not result.passed:
                first = result.mismatches[0] if result.mismatches else None
                message = (
                    f"step {result.step}: {first.what}: expected {first.expected}, "
                    f"got {first.actual}"
                    if first
                    else f"step {result.step} failed"
                )
                failure = ElementTree.SubElement(case, "failure", message=message, type="mismatch")
                failure.text = "\n".join(_diff(result))
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


REPORTERS: dict[str, Callable[[Run], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
}


def render(run: Run, name: str) -> str:
    return REPORTERS[name](run)


def summary(results: Sequence[TestResult]) -> str:
    failed = sum(1 for r in results if not r.passed)
    return f"{len(results) - failed} passed, {failed} failed"
