"""GitHub Actions workflow commands: annotations on the pull request's diff."""

from __future__ import annotations

from bastion.engine.lint.runner import LintResult


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result: LintResult) -> str:
    lines = []
    for f in result.findings:
        level = "error" if f.severity == "error" else "warning"
        where = f"file={_escape_property(f.file)}"
        if f.line:
            where += f",line={f.line},col={f.column}"
        title = _escape_property(f"{f.code} {f.policy}".strip())
        lines.append(f"::{level} {where},title={title}::{_escape_data(f.message)}")
    return "".join(line + "\n" for line in lines)
