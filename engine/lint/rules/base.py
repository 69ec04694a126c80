"""What every rule module uses to make a located finding."""

from __future__ import annotations

from bastion.engine.lint.findings import CODES, Finding
from bastion.engine.policy.model import Policy


def finding(policy: Policy, code: str, pointer: str, message: str, *, key: bool = False) -> Finding:
    at = policy.locate(pointer, key=key)
    return Finding(
        at.file, at.line, at.column, code, CODES[code].severity, message, pointer, policy.name
    )
