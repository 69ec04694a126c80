"""`{"files": N, "findings": [...]}` — the machine-readable format."""

from __future__ import annotations

import json

from bastion.engine.lint.runner import LintResult


def render(result: LintResult) -> str:
    payload = {
        "files": result.files,
        "errors": result.errors,
        "warnings": result.warnings,
        "findings": [finding.as_dict() for finding in result.findings],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
