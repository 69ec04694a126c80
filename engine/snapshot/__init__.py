"""The Snapshot: the frozen, validated input of every evaluation.

`model` holds the frozen dataclasses, `fields` the field tables every other module is
generated from, `validate` the cerberus validation and the JSON loader, `schema` the
published JSON Schema (schemas/snapshot.schema.json), `consistency` the cross-field
checks, `history` how much trade history a snapshot keeps, `typed` the field rules for
records built in code, `built` the same rules applied without cerberus to a document the
snapshot builder assembled, and `messages` how errors name fields and values.
"""

from __future__ import annotations

from bastion.engine.snapshot.history import bounded
from bastion.engine.snapshot.model import (
    Account,
    ClosedTrade,
    Instrument,
    ListedOption,
    Market,
    OptionChain,
    OptionLeg,
    OrderFlow,
    Position,
    Regime,
    Snapshot,
    System,
)
from bastion.engine.snapshot.validate import (
    FieldError,
    SnapshotInvalid,
    load_snapshot,
    parse_snapshot,
    validate_snapshot,
)

__all__ = [
    "Account",
    "ClosedTrade",
    "FieldError",
    "Instrument",
    "ListedOption",
    "Market",
    "OptionChain",
    "OptionLeg",
    "OrderFlow",
    "Position",
    "Regime",
    "Snapshot",
    "SnapshotInvalid",
    "System",
    "bounded",
    "load_snapshot",
    "parse_snapshot",
    "validate_snapshot",
]
