"""Anything that goes wrong inside the check is a denial with blocking ("error",); an
order that cannot be valued (no market data) is denied with blocking ("data",)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.engine.authority import OrderRequest, can_execute
from bastion.engine.authority.controls import base
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.state import State
from tests.authority.builders import (
    NOW,
    D,
    account,
    decide,
    market,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import PolicyFactory

ERROR = ("denied", False, None, ("error",))
FINE = request("open", target_size=10)  # approved with the default snapshot and policies


def assert_error_decision(result: Any, mentions: str) -> None:
    assert summary(result) == ERROR
    assert result.override_applied is False
    assert mentions in result.reasons[0]
    assert result.decision.outcome == "denied"
    assert result.decision.rule == "error"
    data = result.to_dict()
    assert data["approved"] is False
    assert data["blocking"] == ["error"]
    json.dumps(data, sort_keys=True)  # the record is still serialisable


def test_error_when_fine_order_then_approved(default_policies: CompiledPolicySet) -> None:
    """The baseline the error tests break: this order passes."""
    assert summary(decide(default_policies, FINE)) == ("approved", True, D(10), ())


def test_error_when_account_not_in_snapshot_then_denied(
    default_policies: CompiledPolicySet,
) -> None:
    result = decide(default_policies, request("open", target_size=10, account_id="nope"))
    assert_error_decision(result, "nope")


def test_error_when_no_account_id_and_several_accounts_then_denied(
    default_policies: CompiledPolicySet,
) -> None:
    snap = snapshot(extra_accounts=[account("acct-2")])
    assert_error_decision(decide(default_policies, FINE, snap), "2 accounts")


# Faults are injected where the check calls out to a module that is never compiled
# (engine/native.py compiles engine/authority: a compiled module calls its own functions
# directly, so patching them would test nothing there): building the book, the fact's
# fillers, and the new state.
@pytest.mark.parametrize(
    "target",
    [
        "bastion.engine.authority.check.book_of",
        "bastion.engine.authority.rules.AuthorityRuleset.fills",
        "bastion.engine.authority.memory.with_authority",
    ],
    ids=["book", "fact", "remember"],
)
def test_error_when_something_inside_the_check_raises_then_denied(
    default_policies: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(target, property(broken) if target.endswith(".fills") else broken)
    assert_error_decision(decide(default_policies, FINE), "ZeroDivisionError: boom")


def test_error_when_the_rules_engine_raises_then_denied(
    default_policies: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    governing = default_policies.governing_order_rules("gen", "XYZ", None)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("engine down")

    monkeypatch.setattr(type(governing.rules), "match_one", broken)
    assert_error_decision(decide(default_policies, FINE), "engine down")


@pytest.mark.parametrize(
    ("snap", "memory"),
    [(None, State()), (object(), State()), ("valid", None), ("valid", object())],
    ids=["snapshot-none", "snapshot-object", "state-none", "state-object"],
)
def test_error_when_snapshot_or_state_unusable_then_denied(
    default_policies: CompiledPolicySet, snap: Any, memory: Any
) -> None:
    snap = snapshot() if snap == "valid" else snap
    result = can_execute(default_policies, FINE, snap, memory, NOW)
    assert summary(result) == ERROR
    assert result.decision.rule == "error"


@pytest.mark.parametrize(
    "order",
    [{"symbol": "XYZ", "action": "open", "target_size": 10}, None, "open XYZ", 42],
    ids=["dict", "none", "text", "number"],
)
def test_error_when_request_is_not_an_order_request_then_denied(
    default_policies: CompiledPolicySet, order: Any
) -> None:
    result = can_execute(default_policies, order, snapshot(), State(), NOW)
    assert summary(result) == ERROR
    assert result.approved_size is None
    json.dumps(result.to_dict(), sort_keys=True)


def test_error_when_state_unusable_then_state_returned_unchanged(
    default_policies: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ValueError("bad")

    # After the book and the context (the fact's fillers): the state already read.
    monkeypatch.setattr("bastion.engine.authority.rules.AuthorityRuleset.fills", property(broken))
    memory = State(trading_states={"acct-1": "REDUCING"})
    result = decide(default_policies, FINE, memory=memory)
    assert summary(result) == ERROR
    assert result.state is memory


@pytest.mark.parametrize(
    "order",
    [
        request("open", "ABC", target_size=10),
        request("open", "ABC"),
        request("increase", "ABC", current_size=1, target_size=2),
    ],
    ids=["open", "open-sized-from-volatility", "increase"],
)
def test_data_when_no_market_for_the_symbol_then_denied(
    default_policies: CompiledPolicySet, order: OrderRequest
) -> None:
    result = decide(default_policies, order)
    assert summary(result) == ("denied", False, None, ("data",))
    assert "ABC" in result.reasons[0]


def test_data_when_no_market_but_order_reduces_then_not_needed(
    default_policies: CompiledPolicySet,
) -> None:
    """A close needs no price: it adds no exposure."""
    result = decide(default_policies, request("close", "ABC", current_size=10))
    assert summary(result) == ("approved", True, D(0), ())


def test_data_when_market_present_for_held_symbol_then_valued(
    default_policies: CompiledPolicySet,
) -> None:
    snap = snapshot(positions=[position("ABC", 1)], markets={"ABC": market()})
    result = decide(default_policies, request("increase", "ABC", target_size=2), snap)
    assert summary(result) == ("approved", True, D(2), ())


# -- sizes that contradict what is held (the snapshot's position, not the request's) ----


@pytest.mark.parametrize(
    ("order", "held_units"),
    [
        (request("decrease", target_size=1000), 10),  # would add exposure past every limit
        (request("decrease", target_size=10), 10),
        (request("increase", target_size=5), 10),  # would sell past the protections
        (request("increase", target_size=10), 10),
        (request("open", target_size=20), 10),
        (request("close"), 0),
    ],
    ids=[
        "decrease-above-held",
        "decrease-to-held",
        "increase-below-held",
        "increase-to-held",
        "open-while-held",
        "close-nothing",
    ],
)
def test_request_when_sizes_contradict_the_held_position_then_denied(
    policies: PolicyFactory, order: OrderRequest, held_units: int
) -> None:
    compiled = policies(limits={"orders": {"max_position_per_symbol_usd": 5000}})
    snap = snapshot(positions=[position(quantity=held_units)] if held_units else [])
    result = decide(compiled, order, snap)
    assert summary(result) == ("denied", False, None, ("request",))
    assert "contradicts" in result.reasons[0]


def test_reasons_when_their_wording_fails_then_outcome_kept_and_reading_never_raises(
    policies: PolicyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reasons are worded when first read; a wording bug shows in the text, never as an
    exception in the caller and never as a different outcome."""
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})

    def broken(*_: object) -> str:
        raise ValueError("template broken")

    # `shown` (engine/decision.py) words every number of a reason: never compiled.
    monkeypatch.setattr(base, "shown", broken)
    result = decide(compiled, request("open", target_size=300, size_increment=1))
    assert summary(result) == ("downsized", True, D(250), ())
    assert "wording unavailable: ValueError: template broken" in result.reasons[0]
    assert result.reasons == result.decision.reasons  # the audit record says the same
