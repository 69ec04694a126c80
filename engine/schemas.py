"""Every JSON Schema Bastion publishes, by file stem (schemas/<stem>.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from bastion.engine.authority.request import REQUEST_SCHEMA
from bastion.engine.policy.envelope import all_schemas
from bastion.engine.policytest.schema import POLICYTEST_SCHEMA
from bastion.engine.snapshot.schema import SNAPSHOT_SCHEMA


def published_schemas() -> dict[str, dict[str, Any]]:
    """Policy kinds, plus the data formats that other parts of Bastion register here."""
    return {
        **all_schemas(),
        "snapshot": SNAPSHOT_SCHEMA,
        "request": REQUEST_SCHEMA,
        "policytest": POLICYTEST_SCHEMA,
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
