"""The published JSON Schemas: in sync, valid, documented, and their examples valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from bastion.engine.lint.runner import lint_paths
from bastion.engine.policy.envelope import policy_schema
from bastion.engine.policy.kinds import KINDS
from bastion.engine.schemas import published_schemas, schema_text
from tests.conftest import POLICIES, ROOT

SCHEMAS = published_schemas()


@pytest.mark.parametrize("stem", sorted(SCHEMAS))
def test_schema_file_when_compared_with_source_then_identical(stem: str) -> None:
    """schemas/*.json are exactly what the Python sources generate (`make schemas`)."""
    on_disk = (ROOT / "schemas" / f"{stem}.schema.json").read_text(encoding="utf-8")
    assert on_disk == schema_text(SCHEMAS[stem]), "run `make schemas` and commit the result"


@pytest.mark.parametrize("stem", sorted(SCHEMAS))
def test_schema_when_checked_against_metaschema_then_valid_2020_12(stem: str) -> None:
    """Each schema is a valid draft 2020-12 schema with $id and title."""
    schema = SCHEMAS[stem]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{stem}.schema.json") and schema["title"]


def _subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _subschemas(value, f"{path}/{index}")


@pytest.mark.parametrize("stem", sorted(SCHEMAS))
def test_schema_when_walked_then_every_property_has_a_description(stem: str) -> None:
    """Risk officers read descriptions as hover help: none may be missing."""
    missing = [
        f"{path}/properties/{name}"
        for path, node in _subschemas(SCHEMAS[stem])
        for name, prop in (node.get("properties") or {}).items()
        if isinstance(prop, dict) and "description" not in prop and "$ref" not in prop
    ]
    assert missing == []


POLICY_STEMS = sorted(kind.file_stem for kind in KINDS.values())


@pytest.mark.parametrize("stem", POLICY_STEMS)
def test_schema_when_examples_and_defaults_checked_then_each_is_valid(stem: str) -> None:
    """Every `examples` entry and `default` validates against the schema it sits in."""
    root = SCHEMAS[stem]
    registry_root = {k: v for k, v in root.items() if k in ("$defs", "$id", "$schema")}
    checked = 0
    for path, node in _subschemas(root):
        if ("/properties/" not in path and path != "#") or "$ref" in node:
            continue
        subschema = {**registry_root, **{k: v for k, v in node.items() if k != "$id"}}
        validator = jsonschema.Draft202012Validator(subschema)
        for value in [*node.get("examples", []), *([node["default"]] if "default" in node else [])]:
            errors = [e.message for e in validator.iter_errors(value)]
            assert errors == [], f"{stem} {path}: {value!r}"
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_example_when_linted_as_a_file_then_clean(kind: str, tmp_path: Any) -> None:
    """The schema's top-level example is a complete, lint-clean policy."""
    example = policy_schema(KINDS[kind])["examples"][0]
    path = tmp_path / "example.yaml"
    path.write_text(json.dumps(example))
    result = lint_paths([path])
    assert result.findings == ()
    assert len(result.policies) == 1


def test_shipped_policies_when_linted_strictly_then_clean() -> None:
    """policies/ is valid with no warnings, and every kind is shipped."""
    result = lint_paths([POLICIES])
    assert result.findings == ()
    assert {policy.kind for policy in result.policies} == set(KINDS)


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_policy_when_opened_then_first_line_names_its_schema(path: Any) -> None:
    """Editors complete and check the file from its first line."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=../schemas/")
    assert (POLICIES / first.split("=", 1)[1]).resolve().is_file()
