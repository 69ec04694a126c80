"""Code Climate JSON: GitLab's code-quality report (`artifacts: reports: codequality`).

A JSON array, one issue per finding, with the fields GitLab reads: `description`,
`check_name` (the BST code), `fingerprint` (stable across commits: it leaves out the
line, so a finding that only moved is not reported as new), `severity` (error -> major,
warning -> minor) and `location.path` / `location.lines.begin`. `type` and
`categories` complete the Code Climate issue shape.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.runner import LintResult

SEVERITIES = {"error": "major", "warning": "minor"}


def _path(file: str) -> str:
    """Relative to the working directory (the repository root in CI) when under it."""
    path = Path(file)
    if path.is_absolute():
        with contextlib.suppress(ValueError):  # outside: the absolute path
            path = path.relative_to(Path.cwd())
    return path.as_posix()


def _fingerprint(finding: Finding, seen: dict[str, int]) -> str:
    key = "\0".join(
        (_path(finding.file), finding.code, finding.policy, finding.path, finding.message)
    )
    occurrence = seen.get(key, 0)  # the same finding twice in a file: two issues
    seen[key] = occurrence + 1
    return hashlib.sha256(f"{key}\0{occurrence}".encode()).hexdigest()


def issues(result: LintResult) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    return [
        {
            "type": "issue",
            "check_name": finding.code,
            "description": f"{finding.code} {finding.message}",
            "categories": ["Bug Risk"],
            "severity": SEVERITIES.get(finding.severity, "info"),
            "fingerprint": _fingerprint(finding, seen),
            "location": {
                "path": _path(finding.file),
                "lines": {"begin": max(finding.line, 1)},
            },
        }
        for finding in result.findings
    ]


def render(result: LintResult) -> str:
    return json.dumps(issues(result), indent=2, ensure_ascii=False) + "\n"
