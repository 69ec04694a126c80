"""`bastion lint --format codeclimate`: GitLab's code-quality report (Code Climate JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import jsonschema

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.reporters import REPORTERS
from bastion.engine.lint.runner import LintResult
from tests.conftest import ROOT

Run = Callable[..., tuple[int, str, str]]

# The fields GitLab reads (docs: "Code Quality" > "Implement a custom tool").
ISSUE_SHAPE = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "type": {"const": "issue"},
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "pattern": "^BST[0-9]{3}$"},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "not": {"pattern": "^/"}},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}
ERROR = Finding("p/a.yaml", 7, 5, "BST101", "error", "thresholds out of order", "/spec", "esc")
WARNING = Finding("p/a.yaml", 9, 1, "BST501", "warning", "a unit slip", "/spec/x", "esc")


def _render(*findings: Finding) -> list[dict[str, object]]:
    report = json.loads(REPORTERS["codeclimate"](LintResult(1, findings, ())))
    assert isinstance(report, list)
    return report


def test_codeclimate_when_findings_then_each_issue_has_gitlab_fields() -> None:
    """description, check_name, fingerprint, severity, location.path/lines.begin."""
    issue, warning = _render(ERROR, WARNING)
    jsonschema.validate([issue, warning], ISSUE_SHAPE)
    assert issue["check_name"] == "BST101" and issue["severity"] == "major"
    assert issue["location"] == {"path": "p/a.yaml", "lines": {"begin": 7}}
    assert warning["severity"] == "minor"


def test_codeclimate_when_finding_moves_then_fingerprint_is_unchanged() -> None:
    """The line is left out of the fingerprint: a moved finding is not a new one."""
    (before,) = _render(ERROR)
    (after,) = _render(replace(ERROR, line=40))
    assert before["fingerprint"] == after["fingerprint"]


def test_codeclimate_when_same_finding_twice_then_fingerprints_differ() -> None:
    """GitLab keeps one issue per fingerprint: duplicates get their own."""
    first, second = _render(ERROR, replace(ERROR, line=12))
    assert first["fingerprint"] != second["fingerprint"]


def test_codeclimate_when_real_broken_cases_linted_then_report_validates(
    run_cli: Run,
) -> None:
    """The report of the lint test cases (every kind of mistake) has the shape."""
    code, out, _ = run_cli("lint", "--format", "codeclimate", str(ROOT / "tests/cases/lint"))
    report = json.loads(out)
    assert code == 1 and report
    jsonschema.validate(report, ISSUE_SHAPE)
    assert len({issue["fingerprint"] for issue in report}) == len(report)


def test_codeclimate_when_clean_then_empty_array(run_cli: Run) -> None:
    """No finding: `[]`, which GitLab reads as no code-quality issue."""
    code, out, _ = run_cli("lint", "--format", "codeclimate", str(ROOT / "policies"))
    assert code == 0 and json.loads(out) == []
