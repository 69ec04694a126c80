"""Stage: lint paths = load (read, schema, resolve) + semantic rules -> a LintResult."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.engine.errors import PolicyError
from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules import run_rules
from bastion.engine.policy.loader import load_policies
from bastion.engine.policy.model import Policy, PolicySet


@dataclass(frozen=True, slots=True)
class LintResult:
    files: int
    findings: tuple[Finding, ...]
    policies: tuple[Policy, ...]
    declarations: tuple[Policy, ...] = ()  # PolicySet (bastion.yaml); one unless BST608

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def failed(self, *, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)


def lint_paths(paths: Sequence[str | Path]) -> LintResult:
    """Every finding for the policy files under `paths` (UsageError if a path is missing).

    A directory is a policy set: it is also checked against its PolicySet declaration
    (or, without one, for all five kinds). Files named one by one are checked as files.
    """
    loaded = load_policies(paths)
    directories = [str(path) for path in paths if Path(path).is_dir()]
    if loaded.declared and not loaded.declarations:
        directories = []  # the declaration's own errors fail lint; no guess at what it said
    findings = [
        *loaded.findings,
        *run_rules(loaded.policies, loaded.declarations, directories),
    ]
    unique: dict[tuple[str, int, int, str, str], Finding] = {}
    for item in sorted(findings):
        unique.setdefault((item.file, item.line, item.column, item.code, item.message), item)
    return LintResult(
        loaded.files,
        tuple(unique.values()),
        tuple(loaded.policies),
        tuple(loaded.declarations),
    )


class PolicySetError(PolicyError):
    """The policy set has lint errors and must not be used (the findings are attached)."""

    def __init__(self, result: LintResult) -> None:
        self.result = result
        errors = [f for f in result.findings if f.severity == "error"]
        shown = "\n".join(
            f"  {f.file}:{f.line}:{f.column}: {f.code} {f.message}" for f in errors[:10]
        )
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        super().__init__(
            f"{len(errors)} error(s) in the policy set; `bastion lint` shows them all:\n"
            f"{shown}{more}",
            code=errors[0].code if errors else "BST007",
        )


def load_policy_set(paths: Sequence[str | Path]) -> PolicySet:
    """The policies under `paths` as one set, or PolicySetError if lint finds any error.

    The same checks as `bastion lint`: a set that does not lint clean is never used.
    """
    return load_policy_set_with_warnings(paths)[0]


def load_policy_set_with_warnings(
    paths: Sequence[str | Path],
) -> tuple[PolicySet, tuple[Finding, ...]]:
    """`load_policy_set`, and the set's lint warnings (what `--strict` would fail on):
    a hot reload logs and audits them."""
    result = lint_paths(paths)
    if result.errors:
        raise PolicySetError(result)
    declaration = result.declarations[0] if result.declarations else None
    warnings = tuple(f for f in result.findings if f.severity == "warning")
    return PolicySet(result.policies, declaration), warnings
