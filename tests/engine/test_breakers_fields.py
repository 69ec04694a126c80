"""Every field of a breaker does something: the schema offers only what the engine reads.

Issue 13: `window_s` was accepted by the schema and passed lint, but nothing read it.
It is removed; a file that still has it is refused with BST018 (tests/cases/lint/
breaker-window-removed). These tests keep the next such field out.
"""

from __future__ import annotations

import dataclasses
import re

from bastion.engine.policy.kinds import breakers as kind
from tests.conftest import ROOT

# Schema property -> the Breaker attribute it becomes.
SCHEMA_TO_MODEL = {
    "id": "id",
    "description": "description",
    "metric": "condition",
    "comparison": "condition",
    "threshold": "condition",
    "when": "condition",
    "scope": "scope",
    "cooldown_s": "cooldown_s",
    "reset": "reset",
    "action": "action",
    "severity": "severity",
    "enabled": "enabled",
    "size_factor": "size_factor",  # reduce_size: authority/controls/breaker_size.py
}
# Read by people in the file, by design; no code needs it.
FOR_PEOPLE = {"description"}


def _engine_sources() -> str:
    """Every source file that may read a Breaker, except the module that builds it."""
    built_in = ROOT / "engine" / "policy" / "kinds" / "breakers.py"
    files = [
        path
        for folder in ("engine", "service", "cli")
        for path in (ROOT / folder).rglob("*.py")
        if path != built_in
    ]
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def test_schema_when_breaker_properties_listed_then_each_maps_to_a_model_field() -> None:
    """No schema property is dropped on the way to the model (as window_s was read into
    a field nobody used)."""
    properties = set(kind.BREAKER_SCHEMA["properties"])
    assert properties == set(SCHEMA_TO_MODEL)
    model = {field.name for field in dataclasses.fields(kind.Breaker)}
    assert set(SCHEMA_TO_MODEL.values()) == model


def test_model_when_breaker_fields_listed_then_each_is_read_by_the_engine() -> None:
    """Each Breaker field but `description` is read outside the module that builds it."""
    sources = _engine_sources()
    unread = [
        field.name
        for field in dataclasses.fields(kind.Breaker)
        if field.name not in FOR_PEOPLE
        and not re.search(rf"\b(breaker|b|item)\.{field.name}\b", sources)
    ]
    assert unread == []


def test_schema_when_window_s_given_then_it_is_a_removed_field_with_its_fix() -> None:
    """window_s is no longer a property; the schema carries why it went, for lint."""
    assert "window_s" not in kind.BREAKER_SCHEMA["properties"]
    assert "delete the line" in kind.BREAKER_SCHEMA["x-removed"]["window_s"]
