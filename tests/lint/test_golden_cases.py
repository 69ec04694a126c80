"""Golden lint cases: tests/cases/lint/<case>/ holds policy files and expected.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.engine.lint.codes_doc import render_markdown
from bastion.engine.lint.findings import CODES
from tests.conftest import ROOT

CASES_DIR = ROOT / "tests" / "cases" / "lint"
CASES = sorted(path for path in CASES_DIR.iterdir() if path.is_dir())
# Codes exercised by unit tests instead of a folder (a 1 MiB file; an unreadable file).
COVERED_ELSEWHERE = {"BST005", "BST009"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_lint_when_golden_case_then_exact_findings_and_exit(
    case: Path,
    run_cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each case yields exactly its expected codes at their file:line:col."""
    expected = json.loads((case / "expected.json").read_text())
    monkeypatch.chdir(case)
    code, out, _ = run_cli("lint", ".", "--format", "json")
    report = json.loads(out)
    got = [
        {key: finding[key] for key in ("file", "line", "column", "code", "severity")}
        for finding in report["findings"]
    ]
    want = [{k: v for k, v in f.items() if k != "message_contains"} for f in expected["findings"]]
    assert got == want
    assert code == expected["exit"]
    for finding, wanted in zip(report["findings"], expected["findings"], strict=True):
        assert wanted.get("message_contains", "") in finding["message"]


def test_catalogue_when_every_code_listed_then_each_has_a_golden_case() -> None:
    """Every finding code is exercised by at least one golden case."""
    seen = {
        finding["code"]
        for case in CASES
        for finding in json.loads((case / "expected.json").read_text())["findings"]
    }
    assert set(CODES) - COVERED_ELSEWHERE - seen == set()


def test_catalogue_when_read_then_every_code_has_explanation_and_fix() -> None:
    """Codes are stable identifiers with a title, an explanation and a fix."""
    for code, info in CODES.items():
        assert code == info.code and code.startswith("BST") and len(code) == 6
        assert info.title and info.explanation.endswith(".") and info.fix.endswith(".")


def test_docs_when_compared_with_catalogue_then_lint_codes_md_in_sync() -> None:
    """docs/lint-codes.md is what `make docs` generates from the catalogue."""
    on_disk = (ROOT / "docs" / "lint-codes.md").read_text(encoding="utf-8")
    assert on_disk == render_markdown(), "run `make docs` and commit the result"
