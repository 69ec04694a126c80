"""Reporters, picked by name from a plain dict (like check-jsonschema's)."""

from __future__ import annotations

from collections.abc import Callable

from bastion.engine.lint.reporters import codeclimate, github, json_report, sarif, text
from bastion.engine.lint.runner import LintResult

Reporter = Callable[[LintResult], str]

REPORTERS: dict[str, Reporter] = {
    "text": text.render,
    "json": json_report.render,
    "github": github.render,
    "sarif": sarif.render,
    "codeclimate": codeclimate.render,  # GitLab code quality
}
