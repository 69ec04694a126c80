"""`file:line:col: severity CODE message`, one a line, then a summary line."""

from __future__ import annotations

from bastion.engine.lint.runner import LintResult


def render(result: LintResult) -> str:
    lines = [
        f"{f.file}:{f.line}:{f.column}: {f.severity} {f.code} {f.message}" for f in result.findings
    ]
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    if result.findings:
        lines.append(
            f"{files} checked: {result.errors} error(s), {result.warnings} warning(s) "
            "(`bastion lint --explain CODE` tells what a code means and how to fix it)"
        )
    else:
        lines.append(f"{files} checked: no problems found")
    return "\n".join(lines) + "\n"
