"""The outcome observed after a step, and how it differs from the one expected.

Only what the test names is compared: an expectation is a subset. Each difference is a
`Mismatch` (what, expected, actual) that the reports print as a diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.engine.authority.answer import ExecutionDecision
from bastion.engine.state import State

STATUS_RANK = {"armed": 0, "cooldown": 1, "tripped": 2}


@dataclass(frozen=True, slots=True)
class Mismatch:
    what: str  # e.g. "trading_state gen-01", "check 'open AAPL' outcome"
    expected: str
    actual: str


def breaker_status(state: State, key: str) -> str:
    """The status of BREAKER@SCOPE:ID under any policy (the strictest wins); armed
    when it never tripped."""
    statuses = [
        breaker.status
        for stored, breaker in state.breakers.items()
        if stored.partition(":")[2] == key or stored == key
    ]
    return max(statuses, key=STATUS_RANK.__getitem__, default="armed")


def symbol_status(state: State, symbol: str) -> str:
    if symbol in state.halted_symbols:
        return "halted"
    if symbol in state.reducing_symbols:
        return "reducing"
    return "active"


def lock_status(state: State, key: str, now: datetime) -> str:
    protection, _, account = key.partition("@")
    for lock in state.locks.values():
        if lock.protection == protection and lock.account_id == account and lock.until > now:
            return "locked"
    return "unlocked"


def observe(category: str, key: str, state: State, now: datetime, base_level: str) -> str:
    """What the state says for one expected entry."""
    if category == "escalation":
        escalation = state.escalations.get(key)
        return escalation.level_name if escalation else base_level
    if category == "breakers":
        return breaker_status(state, key)
    if category == "trading_state":
        return state.trading_state(key)
    if category == "symbols":
        return symbol_status(state, key)
    if category == "roll_urgency":
        return state.roll_urgencies.get(key, "none")
    if category == "locks":
        return lock_status(state, key, now)
    raise ValueError(category)  # the schema admits no other


def compare_state(
    expect: Mapping[str, Mapping[str, str]], state: State, now: datetime, base_level: str
) -> list[Mismatch]:
    mismatches = []
    for category, entries in expect.items():
        for key, expected in entries.items():
            actual = observe(category, key, state, now, base_level)
            if str(actual) != str(expected):
                mismatches.append(Mismatch(f"{category} {key}", str(expected), str(actual)))
    return mismatches


def _same_number(expected: Any, actual: Decimal | None) -> bool:
    if actual is None:
        return expected is None
    try:
        return Decimal(str(expected)) == actual
    except InvalidOperation:
        return False


def compare_check(
    name: str, expect: Mapping[str, Any], answer: ExecutionDecision
) -> list[Mismatch]:
    mismatches = []
    label = f"check {name!r}"
    if "outcome" in expect and expect["outcome"] != answer.outcome:
        mismatches.append(Mismatch(f"{label} outcome", expect["outcome"], answer.outcome))
    if "approved_size" in expect and not _same_number(
        expect["approved_size"], answer.approved_size
    ):
        actual = "none" if answer.approved_size is None else f"{answer.approved_size.normalize():f}"
        mismatches.append(Mismatch(f"{label} approved_size", str(expect["approved_size"]), actual))
    if "blocking" in expect and sorted(expect["blocking"]) != sorted(answer.blocking):
        mismatches.append(
            Mismatch(
                f"{label} blocking",
                ", ".join(sorted(expect["blocking"])) or "none",
                ", ".join(sorted(answer.blocking)) or "none",
            )
        )
    if "reasons_contain" in expect:
        text = expect["reasons_contain"]
        if not any(text in reason for reason in answer.reasons):
            mismatches.append(
                Mismatch(f"{label} reasons", f"one containing {text!r}", " | ".join(answer.reasons))
            )
    if "override_applied" in expect and expect["override_applied"] != answer.override_applied:
        mismatches.append(
            Mismatch(
                f"{label} override_applied",
                str(expect["override_applied"]).lower(),
                str(answer.override_applied).lower(),
            )
        )
    return mismatches


@dataclass(frozen=True, slots=True)
class Known:
    """What an expectation may name, so a typo is a broken test, not a silent pass."""

    positions: frozenset[str]
    accounts: frozenset[str]
    symbols: frozenset[str]
    breakers: frozenset[str]  # breaker ids in the policy set
    history: frozenset[str]  # history-protection ids in the policy set


BREAKER_SCOPES = ("account", "position", "symbol", "strategy", "portfolio", "system")


def unknown_name(category: str, key: str, known: Known) -> str | None:
    """Why `key` cannot be meant in the step's snapshot (None when it can): a typo the
    test itself made, so the file is broken."""
    if category in ("escalation", "roll_urgency") and key not in known.positions:
        return f"no position {key!r} in the snapshot (positions: {_few(known.positions)})"
    if category == "trading_state" and key not in known.accounts:
        return f"no account {key!r} in the snapshot (accounts: {_few(known.accounts)})"
    if category == "symbols" and key not in known.symbols:
        return f"no symbol {key!r} in the snapshot (symbols: {_few(known.symbols)})"
    if category == "breakers":
        scope = key.partition("@")[2].partition(":")[0]
        if scope not in BREAKER_SCOPES:
            return f"{key!r}: the scope is one of {', '.join(BREAKER_SCOPES)}"
    if category == "locks" and key.partition("@")[2] not in known.accounts:
        return f"no account {key.partition('@')[2]!r} in the snapshot"
    return None


def missing_rules(expect: Mapping[str, Mapping[str, str]], known: Known) -> list[Mismatch]:
    """Breakers and history protections the test names that the policy set lacks: a
    failed test (the set under test removed or renamed them), shown as the actual."""
    mismatches = []
    for key, expected in expect.get("breakers", {}).items():
        breaker = key.partition("@")[0]
        if breaker not in known.breakers:
            actual = f"no breaker {breaker!r} in the policy set"
            mismatches.append(Mismatch(f"breakers {key}", str(expected), actual))
    for key, expected in expect.get("locks", {}).items():
        protection = key.partition("@")[0]
        if protection not in known.history:
            actual = f"no history protection {protection!r} in the policy set"
            mismatches.append(Mismatch(f"locks {key}", str(expected), actual))
    return mismatches


def _few(names: frozenset[str]) -> str:
    shown = sorted(names)
    return ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "") if shown else "none"
