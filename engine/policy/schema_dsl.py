"""Small builders for JSON Schema (draft 2020-12) fragments.

The policy schemas are written in Python so that the envelope is defined once and
every kind shares it; `bastion schema --out schemas/` writes the JSON files that
editors read, and a test keeps those files identical to what these builders make.
Every builder demands a description: a risk officer reads them as hover help.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://bastion-risk.dev/schemas/"
# On an object: {field: why it was removed}. A field once allowed, now gone, is reported
# with its reason and fix (lint BST018), not as a typo (BST011).
REMOVED = "x-removed"


def _common(
    schema: Schema, description: str, default: Any, examples: Sequence[Any] | None
) -> Schema:
    schema["description"] = description
    if default is not None:
        schema["default"] = default
    if examples:
        schema["examples"] = list(examples)
    return schema


def number(
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    integer: bool = False,
    default: float | None = None,
    examples: Sequence[float] | None = None,
) -> Schema:
    schema: Schema = {"type": "integer" if integer else "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if exclusive_minimum is not None:
        schema["exclusiveMinimum"] = exclusive_minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return _common(schema, description, default, examples)


def percent(description: str, **kwargs: Any) -> Schema:
    """A `_pct` field: 0 to 100, where 5 means five per cent."""
    kwargs.setdefault("minimum", 0)
    kwargs.setdefault("maximum", 100)
    return number(f"{description} In per cent: 5 means 5 %, not 0.05.", **kwargs)


def ratio(description: str, **kwargs: Any) -> Schema:
    """A `_ratio` field: 0 to 1."""
    kwargs.setdefault("minimum", 0)
    kwargs.setdefault("maximum", 1)
    return number(f"{description} A ratio from 0 to 1.", **kwargs)


def seconds(description: str, **kwargs: Any) -> Schema:
    kwargs.setdefault("minimum", 0)
    return number(f"{description} In seconds.", **kwargs)


def string(
    description: str,
    *,
    enum: Sequence[str] | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    default: str | None = None,
    examples: Sequence[str] | None = None,
) -> Schema:
    schema: Schema = {"type": "string"}
    if enum is not None:
        schema["enum"] = list(enum)
    if pattern is not None:
        schema["pattern"] = pattern
    if min_length is not None:
        schema["minLength"] = min_length
    return _common(schema, description, default, examples)


def boolean(description: str, *, default: bool | None = None) -> Schema:
    return _common({"type": "boolean"}, description, default, None)


def array(
    description: str,
    items: Schema,
    *,
    min_items: int | None = None,
    unique: bool = False,
    default: list[Any] | None = None,
    examples: Sequence[Any] | None = None,
) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items is not None:
        schema["minItems"] = min_items
    if unique:
        schema["uniqueItems"] = True
    return _common(schema, description, default, examples)


def obj(
    description: str,
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] = (),
    examples: Sequence[Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Schema:
    """A closed object: unknown keys are errors (they are usually typos)."""
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    if extra:
        schema.update(extra)
    return _common(schema, description, None, examples)


def map_of(description: str, values: Schema, *, examples: Sequence[Any] | None = None) -> Schema:
    """An object with free keys (names you choose) and values of one shape."""
    return _common({"type": "object", "additionalProperties": values}, description, None, examples)


def without_required(schema: Schema) -> Schema:
    """A copy with every `required`, `minItems` and `default` dropped: the overlay shape.

    An overlay (`extends`) states only what it changes, so nothing is required
    in it, and defaults are applied once, after the overlay is merged onto its base.
    """
    result = copy.deepcopy(schema)
    _strip(result)
    return result


def _strip(node: Any) -> None:
    if isinstance(node, dict):
        for key in ("required", "minItems", "default"):
            node.pop(key, None)
        # An either/or of required fields (a breaker's metric or `when`) is checked
        # on the merged policy; in the overlay it would reject every partial item.
        branches = node.get("oneOf", [])
        if branches and all(set(branch) <= {"required", "not"} for branch in branches):
            node.pop("oneOf")
        for value in node.values():
            _strip(value)
    elif isinstance(node, list):
        for value in node:
            _strip(value)


def apply_defaults(schema: Schema, data: Any) -> Any:
    """A copy of `data` with the schema's defaults filled in where keys are missing."""
    if isinstance(data, dict) and schema.get("type") == "object":
        result = dict(data)
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for key, subschema in properties.items():
            if key not in result and "default" in subschema:
                result[key] = copy.deepcopy(subschema["default"])
            elif key not in result and _all_optional_object(subschema):
                result[key] = {}  # a section left out entirely takes all its defaults
            if key in result:
                result[key] = apply_defaults(subschema, result[key])
        free = schema.get("additionalProperties")
        if isinstance(free, dict):
            for key in result.keys() - properties.keys():
                result[key] = apply_defaults(free, result[key])
        return result
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in data]
    return data


def _all_optional_object(schema: Schema) -> bool:
    return schema.get("type") == "object" and "properties" in schema and not schema.get("required")
