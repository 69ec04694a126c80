"""Reporters for `bastion diff`: text for a terminal, JSON for tools, Markdown for a PR.

Picked from RENDERERS by `--format`. Loosening changes come first in each policy and
are marked so a reviewer cannot miss them (LOOSENS in text, ⚠️ in Markdown).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bastion.engine.policy.diff import Change, PolicyDiff, SetDiff
from bastion.engine.policy.diff_direction import LOOSENS, NEUTRAL, TIGHTENS

_ORDER = {LOOSENS: 0, TIGHTENS: 1, NEUTRAL: 2}
_TEXT_MARK = {LOOSENS: "LOOSENS", TIGHTENS: "tightens", NEUTRAL: "changed"}
_MD_MARK = {LOOSENS: "⚠️ **loosens**", TIGHTENS: "tightens", NEUTRAL: "review"}
_MAX_VALUE = 70


def value_text(value: Any, *, missing: str = "(none)") -> str:
    """A value as people read it: words bare, numbers as written, lists in brackets."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _ordered(policy: PolicyDiff) -> list[Change]:
    return sorted(policy.changes, key=lambda c: _ORDER.get(c.direction, 3))


def _summary_line(diff: SetDiff) -> str:
    counts = diff.summary()
    policies = counts["policies"]
    return (
        f"{policies} {'policy' if policies == 1 else 'policies'} changed in meaning: "
        f"{counts['changes']} {'change' if counts['changes'] == 1 else 'changes'} "
        f"({counts[LOOSENS]} loosen, {counts[TIGHTENS]} tighten, {counts[NEUTRAL]} to review)"
    )


def render_text(diff: SetDiff) -> str:
    lines = [f"bastion diff: {diff.old_label} → {diff.new_label}"]
    if not diff.changed:
        lines.append("no change in meaning (comments, layout and key order are ignored)")
        return "\n".join(lines) + "\n"
    for policy in diff.policies:
        lines.append("")
        lines.append(f"{policy.key} ({policy.status})")
        for change in _ordered(policy):
            mark = _TEXT_MARK.get(change.direction, change.direction)
            path = change.path or "(the whole policy)"
            values = f"{value_text(change.old)} → {value_text(change.new)}"
            lines.append(f"  {mark:<9} {path}: {values}")
            lines.append(f"  {'':<9} {change.reason} — {change.where}")
    lines.append("")
    lines.append(_summary_line(diff))
    return "\n".join(lines) + "\n"


def render_json(diff: SetDiff) -> str:
    return json.dumps(diff.as_dict(), indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diff: SetDiff) -> str:
    lines = [f"### Policy changes: `{diff.old_label}` → `{diff.new_label}`", ""]
    if not diff.changed:
        lines.append("No change in meaning (comments, layout and key order are ignored).")
        return "\n".join(lines) + "\n"
    loosens = diff.count(LOOSENS)
    loosening = "change loosens" if loosens == 1 else "changes loosen"
    warning = f"⚠️ **{loosens} {loosening} protection.** " if loosens else ""
    lines.append(f"{warning}{_summary_line(diff)}.")
    for policy in diff.policies:
        lines += ["", f"#### `{policy.key}` ({policy.status})", ""]
        lines.append("| | Field | Old | New | Why | Where |")
        lines.append("|---|---|---|---|---|---|")
        for change in _ordered(policy):
            cells = (
                _MD_MARK.get(change.direction, change.direction),
                f"`{_cell(change.path or '(the whole policy)')}`",
                _cell(value_text(change.old, missing="—")),
                _cell(value_text(change.new, missing="—")),
                _cell(change.reason),
                f"`{_cell(change.where)}`",
            )
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[SetDiff], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
