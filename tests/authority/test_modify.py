"""Modify: a change to an open order, its exposure measured on the units it adds, its
own rate limit (engine/authority/modify.py, controls/modify_rate.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bastion.engine.authority.modify import modify_key
from bastion.engine.authority.request import RequestInvalid, request_from_dict
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.state import AuthorityState, State
from tests.authority.builders import ACCOUNT, NOW, D, decide, position, request, snapshot
from tests.authority.conftest import PolicyFactory

HELD = snapshot(positions=[position(quantity=40)])  # 4 000 USD of XYZ


def test_modify_when_size_raised_past_a_limit_then_the_added_units_are_cut(
    policies: PolicyFactory,
) -> None:
    """max_per_asset 5 % (50 units at 100): raising the order from 40 to 80 adds 40 units;
    only 10 fit."""
    limits = policies(limits={"risk": {"max_per_asset_pct": 5}})
    order = request("modify", modified_order_id="o-1", current_size=40, target_size=80)
    result = decide(limits, order, HELD)
    assert (result.outcome, result.approved_size) == ("downsized", D(50))


def test_modify_when_size_lowered_then_exposure_limits_pass(policies: PolicyFactory) -> None:
    """A smaller order adds nothing: the exposure limits do not apply, even over a cap."""
    limits = policies(limits={"risk": {"max_per_asset_pct": 1}})
    order = request("modify", modified_order_id="o-1", current_size=40, target_size=30)
    result = decide(limits, order, HELD)
    assert (result.outcome, result.approved_size) == ("approved", D(30))


def test_modify_when_current_size_not_in_memory_then_measured_from_the_book(
    policies: PolicyFactory,
) -> None:
    """current_size 70 names units Bastion never approved (the book holds 40): the modify
    to 80 is measured from 40, as if the whole order were new (the safe side)."""
    limits = policies(limits={"risk": {"max_per_asset_pct": 5}})
    order = request("modify", modified_order_id="o-1", current_size=70, target_size=80)
    result = decide(limits, order, HELD)
    assert result.request.current_size == D(40)
    assert (result.outcome, result.approved_size) == ("downsized", D(50))


def test_modify_when_rate_reached_then_the_next_modify_denied(policies: PolicyFactory) -> None:
    """orders.modify_rate 2/1s: two modifies remembered in the second before, the third is
    the excess (Nautilus: test_modify_order_beyond_rate_limit_then_rejects); the submit
    rate does not count them."""
    limits = policies(limits={"orders": {"modify_rate": "2/1s", "submit_rate": "1/1s"}})
    times = (NOW - timedelta(milliseconds=500), NOW - timedelta(milliseconds=100))
    memory = State(authority=AuthorityState(submits={modify_key(ACCOUNT): times}))
    order = request("modify", modified_order_id="o-1", current_size=40, target_size=30)
    result = decide(limits, order, HELD, memory)
    assert (result.outcome, result.blocking) == ("denied", ("limit.modify_rate",))
    later = decide(limits, order, HELD, memory, NOW + timedelta(seconds=1))
    assert later.approved


def test_modify_when_approved_then_remembered_under_the_modify_rate(
    default_policies: CompiledPolicySet,
) -> None:
    """The approval is counted for the modify rate, not the submit rate."""
    order = request("modify", modified_order_id="o-1", current_size=40, target_size=30)
    submits = decide(default_policies, order, HELD).state.authority.submits
    assert submits == {modify_key(ACCOUNT): (NOW,)}


@pytest.mark.parametrize(
    ("state", "target", "approved"),
    [("REDUCING", 30, True), ("REDUCING", 50, False), ("HALTED", 30, False)],
)
def test_modify_when_trading_state_restricts_then_only_what_adds_nothing_passes(
    default_policies: CompiledPolicySet, state: str, target: int, approved: bool
) -> None:
    """REDUCING allows a modify that adds nothing, not one raising the order; HALTED none
    (Nautilus: a modify increasing exposure is rejected while REDUCING, every one HALTED)."""
    order = request("modify", modified_order_id="o-1", current_size=40, target_size=target)
    result = decide(default_policies, order, HELD, State(trading_states={ACCOUNT: state}))
    assert result.approved is approved
    if not approved:
        assert result.blocking == ("limit.trading_state",)


def test_modify_request_when_order_id_missing_then_invalid() -> None:
    """A modify names the order it changes; no other action may."""
    with pytest.raises(RequestInvalid) as raised:
        request_from_dict({"symbol": "XYZ", "action": "modify", "target_size": 5})
    assert [e.path for e in raised.value.errors] == ["modified_order_id"]
    with pytest.raises(RequestInvalid):
        request_from_dict({"symbol": "XYZ", "action": "open", "modified_order_id": "o-1"})


def test_modify_rate_when_policy_read_then_the_field_is_used(policies: PolicyFactory) -> None:
    """orders.modify_rate is read into the spec and the compiled window."""
    limits = policies(limits={"orders": {"modify_rate": "5/2s"}})
    governing = limits.governing_order_rules("gen", "XYZ", None)
    assert governing.limits is not None
    assert governing.limits.spec.modify_rate.count == 5
    assert governing.modify_window == timedelta(seconds=2)
