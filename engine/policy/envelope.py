"""The envelope every policy file shares, and the full per-kind JSON Schema.

apiVersion: bastion/v1
kind: BreakerPolicy
metadata: {name: default-breakers, owner: risk-office, description: ...}
scope: {account_types: [com], symbols: [...], strategies: [...]}   # optional
extends: default-breakers      # optional overlay on a policy of the same kind
mode: enforce                  # or shadow: evaluate and record, never block
precedence: 0                  # higher wins where scopes overlap
spec: {...}
"""

from __future__ import annotations

from functools import cache
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.kinds import ALL_KINDS, KINDS, SET_KIND, KindDef
from bastion.engine.policy.vocabulary import ACCOUNT_TYPES, API_VERSION, POLICY_MODES

NAME_PATTERN = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


def _name(description: str) -> s.Schema:
    return s.string(
        f"{description} Lower-case letters, digits and dashes.",
        pattern=NAME_PATTERN,
        examples=["default-breakers"],
    )


METADATA_SCHEMA = s.obj(
    "Who owns the policy and what it is for.",
    {
        "name": _name("Unique name of the policy within its kind."),
        "owner": s.string("Team or person accountable for the policy.", examples=["risk-office"]),
        "description": s.string("What the policy is for, for people."),
        "labels": s.map_of("Free-form labels.", s.string("A label value.")),
    },
    required=("name",),
)

SCOPE_SCHEMA = s.obj(
    "What the policy applies to. A missing field means all.",
    {
        "account_types": s.array(
            "Account types: gen, rev or com.",
            s.string("An account type.", enum=ACCOUNT_TYPES),
            min_items=1,
            unique=True,
        ),
        "symbols": s.array(
            "Symbols.", s.string("A symbol.", min_length=1), min_items=1, unique=True
        ),
        "strategies": s.array(
            "Strategy ids.", s.string("A strategy id.", min_length=1), min_items=1, unique=True
        ),
    },
)


def envelope_properties(kind: KindDef, spec: s.Schema) -> dict[str, s.Schema]:
    return {
        "apiVersion": {"const": API_VERSION, "description": f"Always `{API_VERSION}`."},
        "kind": {"const": kind.kind, "description": f"Always `{kind.kind}` in this schema."},
        "metadata": METADATA_SCHEMA,
        "scope": SCOPE_SCHEMA,
        "extends": _name(
            "Name of a policy of the same kind this one overlays: values here replace "
            "the base's; lists of items with an `id` or `name` merge item by item."
        ),
        "mode": s.string(
            "enforce: decisions take effect; shadow: decisions are recorded, never block.",
            enum=POLICY_MODES,
            default="enforce",
        ),
        "precedence": s.number(
            "Where two policies of a kind cover the same accounts, the higher wins.",
            integer=True,
            default=0,
        ),
        "spec": spec,
    }


def policy_schema(kind: KindDef) -> dict[str, Any]:
    """The complete schema of one kind, as written to schemas/<stem>.schema.json."""
    example = {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": f"example-{kind.file_stem}", "owner": "risk-office"},
        "spec": kind.example_spec,
    }
    body = s.obj(
        kind.description,
        envelope_properties(
            kind, {"type": "object", "description": f"{kind.kind} settings (see $defs/spec)."}
        ),
        required=("apiVersion", "kind", "metadata", "spec"),
        examples=[example],
    )
    return {
        "$schema": s.DIALECT,
        "$id": f"{s.SCHEMA_BASE_URL}{kind.file_stem}.schema.json",
        "title": kind.title,
        **body,
        # An overlay states only what it changes: nothing in its spec is required.
        "if": {"required": ["extends"]},
        "then": {"properties": {"spec": {"$ref": "#/$defs/specOverlay"}}},
        "else": {"properties": {"spec": {"$ref": "#/$defs/spec"}}},
        "$defs": {
            "spec": kind.spec_schema,
            "specOverlay": s.without_required(kind.spec_schema),
            **kind.defs,
        },
    }


def declaration_schema(kind: KindDef = SET_KIND) -> dict[str, Any]:
    """The schema of policies/bastion.yaml: the envelope without scope, extends, mode
    and precedence (a declaration covers the whole set and is never in shadow)."""
    example = {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": "bastion", "owner": "risk-office"},
        "spec": kind.example_spec,
    }
    properties = envelope_properties(kind, {"$ref": "#/$defs/spec"})
    for name in ("scope", "extends", "mode", "precedence"):
        del properties[name]
    properties["spec"] = {"$ref": "#/$defs/spec", "description": f"{kind.kind} settings."}
    body = s.obj(
        kind.description,
        properties,
        required=("apiVersion", "kind", "metadata", "spec"),
        examples=[example],
    )
    return {
        "$schema": s.DIALECT,
        "$id": f"{s.SCHEMA_BASE_URL}{kind.file_stem}.schema.json",
        "title": kind.title,
        **body,
        "$defs": {"spec": kind.spec_schema, **kind.defs},
    }


@cache
def kind_schema(kind: str) -> dict[str, Any]:
    """The schema of a kind by name, built once (treat the result as read-only)."""
    if kind == SET_KIND.kind:
        return declaration_schema()
    return policy_schema(KINDS[kind])


def all_schemas() -> dict[str, dict[str, Any]]:
    """File stem -> schema, for every kind and the PolicySet declaration."""
    return {kind.file_stem: kind_schema(name) for name, kind in ALL_KINDS.items()}
