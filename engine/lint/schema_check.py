"""Stage: check one document against its kind's JSON Schema, as located findings.

jsonschema's messages are written for programmers ("'x' is a required property");
we turn each error into a code, a place (the key or value it is about) and a
sentence that says the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from bastion.engine.lint.findings import CODES, Finding, did_you_mean
from bastion.engine.policy.envelope import kind_schema
from bastion.engine.policy.kinds import ALL_KINDS
from bastion.engine.policy.schema_dsl import REMOVED
from bastion.engine.policy.vocabulary import API_VERSION
from bastion.engine.policy.yamlsource import Positions, SourceDocument, pointer_join

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "empty",
}


@cache
def validator_for(kind: str) -> jsonschema.Draft202012Validator:
    schema = kind_schema(kind)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def policy_name(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        name = data["metadata"].get("name")
        return name if isinstance(name, str) else ""
    return ""


def check_envelope(document: SourceDocument) -> list[Finding]:
    """apiVersion and kind, checked first: without a known kind there is no schema."""
    data = document.data
    if not isinstance(data, dict):
        at = document.locate("")
        what = "empty" if data is None else f"{_describe(data)}, not a mapping"
        return [
            Finding(
                document.file,
                at.line or 1,
                at.column or 1,
                "BST007",
                "error",
                f"document {document.index + 1} is {what}; a policy is a mapping "
                "with apiVersion, kind, metadata and spec",
            )
        ]
    findings = []
    name = policy_name(data)
    if data.get("apiVersion") != API_VERSION:
        findings.append(
            _envelope_finding(
                document,
                "/apiVersion",
                data.get("apiVersion"),
                f'apiVersion must be "{API_VERSION}"',
                name,
            )
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in ALL_KINDS:
        hint = did_you_mean(str(kind), ALL_KINDS) if isinstance(kind, str) else ""
        findings.append(
            _envelope_finding(
                document, "/kind", kind, f"kind must be one of {', '.join(ALL_KINDS)}{hint}", name
            )
        )
    return findings


def _envelope_finding(
    document: SourceDocument, pointer: str, value: Any, message: str, name: str
) -> Finding:
    at = document.locate(pointer)
    got = "missing" if value is None else f"got {value!r}"
    return Finding(
        document.file, at.line, at.column, "BST016", "error", f"{message} ({got})", pointer, name
    )


def check_schema(document: SourceDocument, data: Any | None = None) -> list[Finding]:
    """Schema findings for a document whose kind is known (`data` may be a merged copy)."""
    instance = document.data if data is None else data
    validator = validator_for(instance["kind"])
    name = policy_name(instance)
    findings: list[Finding] = []
    for error in validator.iter_errors(instance):
        findings.extend(_translate(_deepest(error), document.positions, document.file, name))
    return sorted(set(findings))


_SHAPE_KEYWORDS = ("required", "additionalProperties", "type", "not")


def _deepest(error: ValidationError) -> ValidationError:
    """For oneOf / anyOf, the error of the branch whose shape the value matched.

    A branch whose errors reach deeper into the value is the one the author meant
    (`any:` with a misspelt metric inside, not "unknown field any" from `all:`).
    """
    while error.validator in ("oneOf", "anyOf") and error.context:
        error = max(
            error.context,
            key=lambda e: (
                len(e.absolute_path),
                e.validator not in _SHAPE_KEYWORDS,
                -len(e.schema_path),
            ),
        )
    return error


def _pointer(error: ValidationError) -> str:
    pointer = ""
    for token in error.absolute_path:
        pointer = pointer_join(pointer, token)
    return pointer


def _schema_of(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _field(pointer: str) -> str:
    """`/spec/breakers/0/threshold` -> `spec.breakers[0].threshold`."""
    text = ""
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        text += f"[{token}]" if token.isdigit() else f".{token}"
    return text.lstrip(".") or "the document"


def _translate(
    error: ValidationError, positions: Positions, file: str, name: str
) -> Iterator[Finding]:
    pointer = _pointer(error)
    keyword = str(error.validator)
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = _schema_of(error).get("properties", {})
        removed = _schema_of(error).get(REMOVED, {})  # once allowed: say why it went
        for key in sorted(error.instance.keys() - known.keys()):
            child = pointer_join(pointer, key)
            at = positions.locate(child, key=True)
            if key in removed:
                code, message = "BST018", f"{_field(child)}: {removed[key]}"
            else:
                code = "BST011"
                message = f'unknown field "{key}" in {_field(pointer)}{did_you_mean(key, known)}'
            yield Finding(file, at.line, at.column, code, "error", message, child, name)
        return
    if keyword == "required":
        at = positions.locate(pointer, key=True)
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        yield Finding(
            file,
            at.line,
            at.column,
            "BST010",
            "error",
            f'"{missing}" is required in {_field(pointer)}: {_describe_property(error, missing)}',
            pointer_join(pointer, missing),
            name,
        )
        return
    at = positions.locate(pointer)
    code, message = _message(error, pointer, positions)
    yield Finding(file, at.line, at.column, code, CODES[code].severity, message, pointer, name)


def _message(error: ValidationError, pointer: str, positions: Positions) -> tuple[str, str]:
    keyword, value, schema = str(error.validator), error.instance, _schema_of(error)
    field = _field(pointer)
    if keyword == "type":
        wanted: Any = error.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        expected = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = ""
        if pointer in positions.yaml11_bools:
            hint = "; YAML reads yes/no/on/off as true/false — quote the word to keep it text"
        return "BST012", f"{field} must be {expected}, got {_describe(value)}{hint}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "above",
            "exclusiveMaximum": "below",
        }[keyword]
        unit = _unit_hint(field)
        return "BST013", f"{field} must be {bound} {error.validator_value}, got {value}{unit}"
    if keyword in ("enum", "const"):
        allowed = schema.get("enum") or [schema.get("const")]
        hint = did_you_mean(str(value), [str(a) for a in allowed])
        listed = ", ".join(str(a) for a in allowed)
        if len(allowed) > 12:
            listed = f"one of {len(allowed)} names (see `bastion schema`)"
        return "BST014", f"{field}: {value!r} is not allowed{hint} (allowed: {listed})"
    if keyword == "pattern":
        return "BST015", f"{field}: {value!r} does not match {schema.get('pattern')}"
    if keyword == "uniqueItems":
        return "BST015", f"{field} lists the same item twice; list each once"
    if keyword == "minItems":
        return "BST015", f"{field} needs at least {error.validator_value} item(s)"
    if keyword == "not" and isinstance(value, dict):
        return "BST015", f"{field}: give either metric + comparison + threshold, or when — not both"
    description = schema.get("description", "")
    return "BST015", f"{field}: {error.message}" + (f" ({description})" if description else "")


def _unit_hint(field: str) -> str:
    if field.endswith("_pct"):
        return " (a _pct field is per cent, 0-100)"
    if field.endswith("_ratio"):
        return " (a _ratio field is 0-1)"
    return ""


def _describe_property(error: ValidationError, name: str) -> str:
    properties = _schema_of(error).get("properties", {})
    return str(properties.get(name, {}).get("description", "see `bastion schema`"))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "nothing (empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'text "{value}"'
    return f"{type(value).__name__} {value}"
