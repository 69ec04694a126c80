"""docs/lint-codes.md, generated from the code catalogue (`make docs`)."""

from __future__ import annotations

import sys

from bastion.engine.lint.findings import CODES

HEADER = """# Lint codes

Every finding `bastion lint` reports carries one of these stable codes. A code never
changes meaning once released. `bastion lint --explain CODE` prints one entry.
This file is generated from `engine/lint/findings.py` by `make docs`; do not edit it.

| code | name | severity |
|---|---|---|
"""


def render_markdown() -> str:
    table = "".join(
        f"| [{c.code}](#{c.code.lower()}) | {c.title} | {c.severity} |\n" for c in CODES.values()
    )
    sections = "".join(
        f"\n## {c.code}\n\n**{c.title}** ({c.severity})\n\n{c.explanation}\n\n**Fix:** {c.fix}\n"
        for c in CODES.values()
    )
    return HEADER + table + sections


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
