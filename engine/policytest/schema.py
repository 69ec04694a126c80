"""The published JSON Schema of a policy test file (schemas/policytest.schema.json).

A test file carries its own `kind: PolicyTest`: the policy loader, `bastion lint` and
the service's directory watcher skip it, so a test never reads as a policy and editing
one never reloads the service.
"""

from __future__ import annotations

from typing import Any

TEST_KIND = "PolicyTest"
SCHEMA_ID = "https://bastion-risk.dev/schemas/policytest.schema.json"

_TIME = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$",
}
_DURATION = {"type": "string", "pattern": r"^\d+(\.\d+)?(s|m|h|d)$"}
_NUMBER = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _map(description: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": values,
    }


_SNAPSHOT = {
    "description": "A whole snapshot: a path (relative to the test file) to a snapshot "
    "JSON or YAML file, or the snapshot itself inline (schemas/snapshot.schema.json).",
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "object"}],
}

_CHECK_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "description": "What the authority must answer; any subset.",
    "properties": {
        "outcome": {
            "enum": ["approved", "downsized", "denied"],
            "description": "approved, downsized or denied.",
        },
        "approved_size": {
            **_NUMBER,
            "description": "The target size the order may go to (downsized or approved).",
        },
        "blocking": {
            **_NAMES,
            "description": "Exactly the protections and limits that block, e.g. "
            "[limit.max_per_asset]; [] for none.",
        },
        "reasons_contain": {
            "type": "string",
            "description": "Text one of the reasons must contain.",
        },
        "override_applied": {
            "type": "boolean",
            "description": "Whether a regime override lifted a protection.",
        },
    },
}

_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "description": "The outcome after the step's evaluation; any subset. Only what is "
    "named is compared.",
    "properties": {
        "escalation": _map(
            "Escalation level name per position id, e.g. {SPY-101: recovery}.",
            {"type": "string"},
        ),
        "breakers": _map(
            "Breaker status per BREAKER@SCOPE:ID, e.g. {daily_loss_pct@account:gen-01: "
            "tripped}: tripped, cooldown or armed (never tripped counts as armed).",
            {"enum": ["tripped", "cooldown", "armed"]},
        ),
        "trading_state": _map(
            "Trading state per account id: ACTIVE, REDUCING or HALTED.",
            {"enum": ["ACTIVE", "REDUCING", "HALTED"]},
        ),
        "symbols": _map(
            "Symbol state for every account: halted, reducing or active.",
            {"enum": ["halted", "reducing", "active"]},
        ),
        "roll_urgency": _map(
            "Roll urgency per option position id (none when no roll is recommended).",
            {"type": "string"},
        ),
        "locks": _map(
            "History-protection lock per PROTECTION@SUBJECT: locked or unlocked.",
            {"enum": ["locked", "unlocked"]},
        ),
    },
}

_CHECK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["order"],
    "description": "One order checked by the authority after the step's evaluation.",
    "properties": {
        "name": {"type": "string", "description": "What the check shows (for reports)."},
        "order": {
            "type": "object",
            "description": "The order request (schemas/request.schema.json).",
        },
        "repeat": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "description": "Send the order this many times back to back (submit rates); "
            "`expect` applies to the last answer.",
        },
        "expect": _CHECK_EXPECT,
    },
}

_RESET = {
    "description": "A manual reset before the step's evaluation: BREAKER@SCOPE:ID, or "
    "{breaker, by, reason}.",
    "anyOf": [
        {"type": "string", "pattern": r"^[^@\s]+@[^:\s]+:\S+$"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["breaker"],
            "properties": {
                "breaker": {
                    "type": "string",
                    "pattern": r"^[^@\s]+@[^:\s]+:\S+$",
                    "description": "BREAKER@SCOPE:ID, e.g. drawdown@account:gen-01.",
                },
                "by": {"type": "string", "description": "Who resets (default bastion-test)."},
                "reason": {"type": "string", "description": "Why (default: policy test)."},
            },
        },
    ],
}

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "description": "One evaluation: the snapshot, then resets, evaluation, order checks.",
    "properties": {
        "name": {"type": "string", "description": "What the step shows (for reports)."},
        "at": {**_TIME, "description": "Evaluation time (ISO 8601 with a timezone)."},
        "after": {
            **_DURATION,
            "description": "Evaluation time as a wait after the previous step: 90s, 5m, 2h, 1d.",
        },
        "snapshot": _SNAPSHOT,
        "set": {
            "type": "array",
            "description": "Edits on the snapshot, one a line: SUBJECT FIELD VALUE, e.g. "
            "'SPY price 571.2', 'gen-01 equity 480000', 'system error_rate 12', "
            "'regime severity high', 'gen-01/trend-spy consecutive_losses 6'; a value "
            "ending in % changes the field by that per cent ('SPY price -3%').",
            "items": {"type": "string", "pattern": r"^\s*\S+\s+\S+\s+\S+\s*$"},
        },
        "reset": {"type": "array", "items": _RESET, "description": "Manual resets."},
        "evaluate": {
            "type": "boolean",
            "description": "false: no evaluation this step, only the order checks, on "
            "the state the previous step left (orders between two cycles). Default true.",
        },
        "checks": {"type": "array", "items": _CHECK, "description": "Order checks."},
        "expect": _EXPECT,
    },
}

POLICYTEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Bastion policy test",
    "description": "Unit tests of a policy set: steps over time and the outcomes expected "
    "(`bastion test`, README 'Testing policies').",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "tests"],
    "properties": {
        "apiVersion": {"const": "bastion/v1", "description": "Always bastion/v1."},
        "kind": {"const": TEST_KIND, "description": "Always PolicyTest."},
        "metadata": {
            "type": "object",
            "description": "Name and description of the suite.",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "Suite name."},
                "description": {"type": "string", "description": "What the suite covers."},
            },
        },
        "policies": {
            "type": "string",
            "minLength": 1,
            "description": "The policy set (directory or file) relative to this file; "
            "`bastion test --policies DIR` overrides it. Default: ..",
        },
        "snapshot": {
            **_SNAPSHOT,
            "description": "The snapshot every test starts from (a test's first step "
            "may name its own).",
        },
        "tests": {
            "type": "array",
            "minItems": 1,
            "description": "The tests; each starts from an empty state.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "steps"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Test name."},
                    "description": {"type": "string", "description": "What it shows."},
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "items": _STEP,
                        "description": "Evaluations, in time order.",
                    },
                },
            },
        },
    },
}
