"""Stage: lint paths = load (read, schema, resolve) + semantic rules -> a LintResult."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules import run_rules
from bastion.engine.policy.loader import load_policies
from bastion.engine.policy.model import Policy


@dataclass(frozen=True, slots=True)
class LintResult:
    files: int
    findings: tuple[Finding, ...]
    policies: tuple[Policy, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def failed(self, *, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)


def lint_paths(paths: Sequence[str | Path]) -> LintResult:
    """Every finding for the policy files under `paths` (UsageError if a path is missing)."""
    loaded = load_policies(paths)
    findings = [*loaded.findings, *run_rules(loaded.policies)]
    unique: dict[tuple[str, int, int, str, str], Finding] = {}
    for item in sorted(findings):
        unique.setdefault((item.file, item.line, item.column, item.code, item.message), item)
    return LintResult(loaded.files, tuple(unique.values()), tuple(loaded.policies))
