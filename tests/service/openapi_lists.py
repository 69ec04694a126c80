"""Keeps service/openapi.json's order-list schemas in step with the request schema.

    .venv/bin/python -m tests.service.openapi_lists --write

OrderRequest (and its $defs) are schemas/request.schema.json; OrderListLeg is the same
with `role`; CheckRequest / ReportRequest say a body is one order or an order list.
tests/service/test_order_lists_http.py checks the file is what this writes.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "service" / "openapi.json"
REQUEST = ROOT / "schemas" / "request.schema.json"
ROLE = {
    "enum": ["entry", "stop_loss", "take_profit", "leg"],
    "default": "leg",
    "description": "A bracket's entry, stop_loss or take_profit; leg in other lists.",
}


def _rewritten(node: Any) -> Any:
    text = json.dumps(node).replace('"#/$defs/', '"#/components/schemas/OrderRequest')
    return json.loads(text)


def updated(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]
    published = json.loads(REQUEST.read_text())
    request = _rewritten(
        {k: v for k, v in published.items() if k not in ("$schema", "$id", "$defs")}
    )
    schemas["OrderRequest"] = request
    for name, definition in published["$defs"].items():
        schemas[f"OrderRequest{name}"] = _rewritten(definition)
    leg = copy.deepcopy(request)
    leg["title"] = "Order list leg"
    leg["description"] = "One order of an order list: an order request plus its role."
    leg["properties"] = {"role": ROLE, **leg["properties"]}
    schemas["OrderListLeg"] = leg
    schemas["OrderList"] = {
        "type": "object",
        "description": "Orders sent together: each leg checked, the list denied as a whole "
        "when any leg is denied (README: Order lists and brackets).",
        "required": ["id", "orders"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "minLength": 1, "description": "The list's id."},
            "contingency": {
                "enum": ["bracket", "oco", "oto", "none"],
                "default": "none",
                "description": "bracket: entry then stop_loss / take_profit; oto: the first "
                "triggers the rest; oco: alternatives; none: independent.",
            },
            "orders": {
                "type": "array",
                "minItems": 1,
                "maxItems": 50,
                "items": {"$ref": "#/components/schemas/OrderListLeg"},
            },
        },
    }
    schemas["CheckRequest"] = {
        "description": "One order request, or an order list.",
        "oneOf": [
            {"$ref": "#/components/schemas/OrderRequest"},
            {"$ref": "#/components/schemas/OrderList"},
        ],
    }
    schemas["ReportRequest"] = {
        "description": "One order sent (with its order_id), or an order list sent (its id "
        "is the report's key).",
        "oneOf": [
            {"$ref": "#/components/schemas/OrderReport"},
            {"$ref": "#/components/schemas/OrderList"},
        ],
    }
    schemas["ListAnswer"] = {
        "type": "object",
        "description": "An order list's answer: the list's outcome, and each leg's decision "
        "(as a single check's answer, plus index and role). Send the orders only when "
        "`approved` is true, each at its leg's `approved_size`.",
        "required": [
            "order_list",
            "contingency",
            "approved",
            "outcome",
            "blocking",
            "reasons",
            "legs",
        ],
        "properties": {
            "order_list": {"type": "string"},
            "contingency": {"enum": ["bracket", "oco", "oto", "none"]},
            "approved": {"type": "boolean"},
            "outcome": {"enum": ["approved", "downsized", "denied"]},
            "blocking": {"type": "array", "items": {"type": "string"}},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "legs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "A leg's decision, as a single check's answer.",
                    "required": ["index", "role", "approved", "outcome", "approved_size"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "role": ROLE,
                        "approved": {"type": "boolean"},
                        "outcome": {"enum": ["approved", "downsized", "denied"]},
                        "approved_size": {"type": ["string", "null"]},
                        "blocking": {"type": "array", "items": {"type": "string"}},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "decision": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}},
            },
        },
    }
    check = document["paths"]["/api/v1/check"]["post"]
    check["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/CheckRequest"
    }
    check["responses"]["200"]["content"]["application/json"]["schema"] = {
        "oneOf": [
            {"$ref": "#/components/schemas/CheckAnswer"},
            {"$ref": "#/components/schemas/ListAnswer"},
        ]
    }
    report = document["paths"]["/api/v1/orders"]["post"]
    report["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/ReportRequest"
    }
    return document


def text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    current = json.loads(OPENAPI.read_text())
    if "--write" in sys.argv:
        OPENAPI.write_text(text(updated(current)))
    else:
        sys.exit(0 if text(updated(current)) == OPENAPI.read_text() else 1)
