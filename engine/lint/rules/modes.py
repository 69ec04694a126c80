"""BST701: shadow-mode policies are evaluated but never block — say so."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.model import Policy


def check(policy: Policy) -> Iterator[Finding]:
    if policy.mode == "shadow" and "/mode" in policy.positions.values:
        yield finding(
            policy,
            "BST701",
            "/mode",
            f'{policy.kind} "{policy.name}" is in shadow mode: its decisions are recorded '
            "but never block",
        )
