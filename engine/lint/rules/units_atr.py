"""BST512: a value in ATRs written as a fraction of the price (0.02 for "2 %").

Escalation thresholds (`breach_atr`, compared with position.breach_atr), the
de-escalation `hysteresis_atr` and the sizing `atr_multiple` are in ATRs, a unit a
per cent of the price is easily mistaken for. Every field of any kind whose name
says ATRs is read against its shipped value (units_scale: an escalation level's own
threshold, else the field's, else its schema default); a field without one is not
read. Defaults are never slips: only numbers a file wrote are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.lint.rules.units import default_at
from bastion.engine.lint.rules.units_scale import (
    ATRS,
    FIELD_REFERENCE,
    LEVEL_REFERENCE,
    is_slip,
    plain,
    slip_phrase,
    times_below,
    unit_of,
)
from bastion.engine.policy.convert import dec
from bastion.engine.policy.kinds import KINDS
from bastion.engine.policy.model import Policy
from bastion.engine.policy.yamlsource import pointer_join


def _atr_fields(node: Any, pointer: str) -> Iterator[tuple[str, str, Any, Any]]:
    """(pointer, field name, value, the mapping holding it) for every ATR field."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = pointer_join(pointer, key)
            if unit_of(str(key)) == ATRS and not isinstance(value, dict | list):
                yield child, str(key), value, node
            yield from _atr_fields(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _atr_fields(value, pointer_join(pointer, index))


def _reference(policy: Policy, pointer: str, field: str, holder: Any) -> Decimal | None:
    if field == "breach_atr" and policy.kind == "EscalationPolicy":
        return LEVEL_REFERENCE.get(str(holder.get("name")))
    if field in FIELD_REFERENCE:
        return FIELD_REFERENCE[field]
    usual = default_at(KINDS[policy.kind].spec_schema, pointer.split("/")[2:])
    if isinstance(usual, int | float) and not isinstance(usual, bool):
        return dec(usual)
    return None


def check(policy: Policy) -> Iterator[Finding]:
    written = policy.positions.values
    for pointer, field, raw, holder in _atr_fields(policy.document.get("spec"), "/spec"):
        if pointer not in written or isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        reference = _reference(policy, pointer, field, holder)
        value = dec(raw)
        if reference is None or not is_slip(value, ATRS, reference):
            continue
        where = f'level "{holder["name"]}" ' if "name" in holder and "breach_atr" in holder else ""
        yield finding(
            policy,
            "BST512",
            pointer,
            f"{where}{field} is {plain(value)}, in ATRs, not a fraction of the price: "
            f"{slip_phrase(value, ATRS)}, {times_below(value, reference)} below the shipped "
            f"{plain(reference)}; give it in ATRs (a move of the price divided by the ATR)",
        )
