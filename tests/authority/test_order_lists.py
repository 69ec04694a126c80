"""Order lists and brackets: every leg checked, the list denied as a whole
(engine/authority/order_list.py, order_list_check.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.engine.authority.order_list import OrderListInvalid, order_list_from_dict
from bastion.engine.authority.order_list_check import STOP_SIDE, check_list
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.state import State
from tests.authority.builders import NOW, D, snapshot
from tests.authority.conftest import PolicyFactory


def _bracket(
    target: int = 100, stop: int | None = 95, profit: int | None = 110, **entry: Any
) -> dict[str, Any]:
    legs: list[dict[str, Any]] = [
        {"role": "entry", "action": "open", "symbol": "XYZ", "target_size": target, **entry}
    ]
    if stop is not None:
        legs.append(
            {
                "role": "stop_loss",
                "action": "close",
                "symbol": "XYZ",
                "order_type": "stop",
                "trigger_price": stop,
            }
        )
    if profit is not None:
        legs.append(
            {
                "role": "take_profit",
                "action": "close",
                "symbol": "XYZ",
                "order_type": "limit",
                "price": profit,
            }
        )
    return {"id": "B-1", "contingency": "bracket", "orders": legs}


def _buys(*sizes: int, contingency: str = "none") -> dict[str, Any]:
    return {
        "id": "L-1",
        "contingency": contingency,
        "orders": [
            {
                "action": "open" if i == 0 or contingency == "oco" else "increase",
                "symbol": "XYZ",
                "target_size": sum(sizes[: i + 1]) if contingency != "oco" else size,
            }
            for i, size in enumerate(sizes)
        ],
    }


def test_check_list_when_bracket_within_limits_then_every_leg_approved(
    default_policies: CompiledPolicySet,
) -> None:
    """Entry, stop-loss and take-profit pass; the children reduce what the entry buys."""
    result = check_list(
        default_policies, order_list_from_dict(_bracket()), snapshot(), State(), NOW
    )
    assert result.outcome == "approved"
    assert [leg.outcome for leg in result.legs] == ["approved"] * 3
    assert [leg.result.request.current_size for leg in result.legs[1:]] == [D(100), D(100)]
    assert result.decision.subject.scope == "order_list"


def test_check_list_when_entry_downsized_then_children_downsized_to_match(
    policies: PolicyFactory,
) -> None:
    """max_per_asset 5 % of 100 000 (50 units at 100): the entry is cut from 100 to 50,
    each child sells 50, not 100, and says so."""
    limits = policies(limits={"risk": {"max_per_asset_pct": 5}})
    result = check_list(limits, order_list_from_dict(_bracket()), snapshot(), State(), NOW)
    assert result.outcome == "downsized"
    entry, stop, profit = result.legs
    assert entry.result.approved_size == D(50)
    assert stop.outcome == profit.outcome == "downsized"
    assert "downsized with the entry: stop_loss sells 50 units, not 100" in stop.reasons


def test_check_list_when_stop_above_entry_of_long_then_list_denied_as_a_whole(
    default_policies: CompiledPolicySet,
) -> None:
    """A stop at 105 above a long entry at 100 would fill at once: that leg is denied,
    and with it the list; the other legs keep their own answers."""
    document = _bracket(stop=105)
    result = check_list(default_policies, order_list_from_dict(document), snapshot(), State(), NOW)
    assert result.outcome == "denied" and not result.approved
    assert result.blocking == (f"orders[1]:{STOP_SIDE}",)
    assert result.legs[0].approved and result.legs[2].approved
    assert "denied as a whole" in result.reasons[0]
    assert result.state == State()  # a denied question leaves nothing remembered


def test_check_list_when_child_sells_more_than_entry_adds_then_denied(
    default_policies: CompiledPolicySet,
) -> None:
    """On an increase from 10 to 60, a stop-loss closing all 60 would reverse the 10 held."""
    document = _bracket(target=60, profit=None)
    document["orders"][0].update(action="increase", current_size=10)
    result = check_list(default_policies, order_list_from_dict(document), snapshot(), State(), NOW)
    assert result.outcome == "denied"
    assert result.blocking == ("orders[1]:bracket.size",)


def test_check_list_when_buys_fit_alone_but_not_together_then_both_denied(
    policies: PolicyFactory,
) -> None:
    """Cumulative: 300 then 300 more units of XYZ at 100 with cash 50 000 and no margin:
    the second leg sees the first as pending and is cut; with on_breach deny the list is
    denied (Nautilus: test_submit_order_list_buys_when_over_free_balance_then_denies)."""
    limits = policies(limits={"on_breach": "deny", "region": {"margin_allowed": False}})
    snap = snapshot(cash=50_000)
    result = check_list(limits, order_list_from_dict(_buys(300, 300)), snap, State(), NOW)
    assert [leg.outcome for leg in result.legs] == ["approved", "denied"]
    assert result.outcome == "denied"


def test_check_list_when_oco_then_each_leg_against_the_state_before(
    policies: PolicyFactory,
) -> None:
    """OCO legs are alternatives: 300 or 300 units fit the cash each; only one is kept."""
    limits = policies(limits={"on_breach": "deny", "region": {"margin_allowed": False}})
    snap = snapshot(cash=50_000)
    document = _buys(300, 300, contingency="oco")
    result = check_list(limits, order_list_from_dict(document), snap, State(), NOW)
    assert result.outcome == "approved"
    assert len(result.state.authority.pending) == 1


def test_check_list_when_sent_bracket_then_only_the_entry_adds_pending_exposure(
    default_policies: CompiledPolicySet,
) -> None:
    """A reported bracket: the entry counts as pending; its children add nothing."""
    document = order_list_from_dict(_bracket())
    result = check_list(default_policies, document, snapshot(), State(), NOW, sent=True)
    orders = list(result.state.authority.pending.orders())
    assert [(order.symbol, order.units) for order in orders] == [("XYZ", D(100))]


def test_check_list_when_trading_halted_then_every_leg_denied(
    default_policies: CompiledPolicySet,
) -> None:
    """HALTED allows only cancels: the entry is denied, the list with it (Nautilus:
    test_submit_order_list_when_trading_halted_then_denies_orders)."""
    halted = State(trading_states={"acct-1": "HALTED"})
    result = check_list(default_policies, order_list_from_dict(_bracket()), snapshot(), halted, NOW)
    assert result.outcome == "denied"
    assert "limit.trading_state" in result.legs[0].blocking


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"contingency": "ladder"}, "contingency"),
        ({"orders": []}, "orders"),
        ({"id": ""}, "id"),
    ],
)
def test_order_list_when_shape_broken_then_invalid_names_the_field(
    change: dict[str, Any], path: str
) -> None:
    """A list that cannot be read names the field (the CLI exits 2, HTTP answers 422)."""
    with pytest.raises(OrderListInvalid) as raised:
        order_list_from_dict({**_bracket(), **change})
    assert path in [error.path for error in raised.value.errors]


def test_order_list_when_bracket_child_opens_then_invalid() -> None:
    """A bracket's stop-loss reduces: an open there is refused with its path."""
    document = _bracket()
    document["orders"][1]["action"] = "open"
    with pytest.raises(OrderListInvalid) as raised:
        order_list_from_dict(document)
    assert "orders[1].action" in [error.path for error in raised.value.errors]


@pytest.mark.parametrize(
    ("side", "stop", "profit", "blocking"),
    [
        ("long", 95, 90, "orders[2]:bracket.take_profit_side"),
        ("short", 95, 90, "orders[1]:bracket.stop_loss_side"),
        ("short", 105, 110, "orders[2]:bracket.take_profit_side"),
    ],
)
def test_check_list_when_price_on_the_wrong_side_then_that_leg_denies_the_list(
    default_policies: CompiledPolicySet, side: str, stop: int, profit: int, blocking: str
) -> None:
    """Entry at 100: a long's take-profit below it, a short's stop below it or its
    take-profit above it would fill at a loss or at once."""
    document = _bracket(stop=stop, profit=profit, side=side)
    for leg in document["orders"][1:]:
        leg["side"] = side
    result = check_list(default_policies, order_list_from_dict(document), snapshot(), State(), NOW)
    assert result.outcome == "denied"
    assert result.blocking == (blocking,)


def test_check_list_when_short_bracket_on_the_right_side_then_approved(
    default_policies: CompiledPolicySet,
) -> None:
    """A short entry at 100 with its stop at 105 and its take-profit at 90 passes."""
    document = _bracket(stop=105, profit=90, side="short")
    for leg in document["orders"][1:]:
        leg["side"] = "short"
    result = check_list(default_policies, order_list_from_dict(document), snapshot(), State(), NOW)
    assert result.outcome == "approved", result.reasons
