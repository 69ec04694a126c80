"""Every limit at its boundary, downsizing, manual positions, submit rate, trading states.

The limits start from LOOSE_LIMITS (conftest): each test tightens only its own limit.
Equity 100 000 USD, XYZ at 100 USD with ATR 2 and atr_multiple 2: 4 USD risk per unit.
A `max_...` value may be reached but not exceeded; max_open_positions and the submit
rate block the order that would go past the count.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.state import State
from tests.authority.builders import (
    ACCOUNT,
    NOW,
    SYMBOL,
    D,
    decide,
    market,
    position,
    request,
    snapshot,
    state,
    summary,
)
from tests.authority.conftest import PolicyFactory


def approved(size: Any) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("approved", True, D(size), ())


def downsized(size: Any) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("downsized", True, D(size), ())


def denied(*blocking: str) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("denied", False, None, blocking)


def held(quantity: Any = 10, symbol: str = SYMBOL, **changes: Any) -> Any:
    """The default snapshot holding `quantity` units of `symbol` (entered 30 days ago)."""
    markets = changes.pop("markets", {SYMBOL: market(), symbol: market()})
    return snapshot(positions=[position(symbol, quantity)], markets=markets, **changes)


# (target, expected) around each boundary: at, just below, just above.
def around(at: int) -> list[tuple[int, Any]]:
    return [(at - 1, approved(at - 1)), (at, approved(at)), (at + 1, downsized(at))]


# -- risk per trade and volatility sizing --------------------------------------------


@pytest.mark.parametrize(("target", "expected"), around(250), ids=["below", "at", "above"])
def test_risk_per_trade_when_order_risk_around_one_percent(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """1 % of 100 000 = 1 000 USD; 4 USD per unit: 250 units."""
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    result = decide(compiled, request("open", target_size=target, size_increment=1))
    assert summary(result) == expected
    assert result.requested_size == D(target)


def test_risk_per_trade_when_exceeded_then_reason_names_limit(policies: PolicyFactory) -> None:
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    result = decide(compiled, request("open", target_size=300, size_increment=1))
    assert summary(result) == downsized(250)
    assert len(result.reasons) == 1
    assert "downsized from 300 to 250" in result.reasons[0]
    assert "max_risk_per_trade" in result.reasons[0]


@pytest.mark.parametrize(
    ("equity", "atr", "current", "expected"),
    [
        (100_000, 2, 0, 250),  # 1 000 / (2 × 2)
        (100_000, 4, 0, 125),  # 1 000 / (4 × 2)
        (200_000, 2, 0, 500),  # 2 000 / (2 × 2)
        (100_000, 2, 10, 260),  # an increase adds 250 to the 10 held
    ],
    ids=["base", "double-atr", "double-equity", "increase"],
)
def test_volatility_sizing_when_target_omitted_then_sized_to_risk_budget(
    policies: PolicyFactory, equity: int, atr: int, current: int, expected: int
) -> None:
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    markets = {SYMBOL: market(atr=atr)}
    if current:
        snap, action = held(current, equity=equity, markets=markets), "increase"
    else:
        snap, action = snapshot(equity=equity, markets=markets), "open"
    result = decide(compiled, request(action, size_increment=1), snap)
    assert summary(result) == approved(expected)
    assert result.requested_size == D(expected)
    assert any(c.name == "sizing" and c.passed for c in result.checks)


@pytest.mark.parametrize(
    ("increment", "expected"),
    [("1", "166"), ("0.5", "166.5"), ("0.01", "166.66"), (None, "166.66666666")],
    ids=["whole", "half", "cent", "default"],
)
def test_volatility_sizing_when_units_fractional_then_rounded_down_to_increment(
    policies: PolicyFactory, increment: str | None, expected: str
) -> None:
    """1 000 USD / (ATR 3 × 2) = 166.66… units, rounded down to the size increment."""
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    snap = snapshot(markets={SYMBOL: market(atr=3)})
    result = decide(compiled, request("open", size_increment=increment), snap)
    assert summary(result) == approved(expected)
    assert result.requested_size == D(expected)


def test_volatility_sizing_when_atr_multiple_changes_then_size_follows(
    policies: PolicyFactory,
) -> None:
    compiled = policies(
        limits={"risk": {"max_risk_per_trade_pct": 1}, "sizing": {"atr_multiple": 4}}
    )
    assert summary(decide(compiled, request("open"))) == approved(125)  # 1 000 / (2 × 4)


def test_volatility_sizing_when_no_atr_then_denied_for_sizing(policies: PolicyFactory) -> None:
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    result = decide(compiled, request("open"), snapshot(markets={SYMBOL: market(atr=0)}))
    assert summary(result) == denied("sizing")


# -- portfolio risk --------------------------------------------------------------------


@pytest.mark.parametrize(("target", "expected"), around(750), ids=["below", "at", "above"])
def test_portfolio_risk_when_total_risk_around_five_percent(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """5 % = 5 000 USD; ABC (500 units × ATR 2 × 2) already risks 2 000: 750 units left."""
    compiled = policies(limits={"risk": {"max_portfolio_risk_pct": 5, "max_risk_per_trade_pct": 5}})
    snap = held(500, "ABC")
    result = decide(compiled, request("open", target_size=target, size_increment=1), snap)
    assert summary(result) == expected


def test_portfolio_risk_when_already_over_budget_then_denied(policies: PolicyFactory) -> None:
    compiled = policies(limits={"risk": {"max_portfolio_risk_pct": 1, "max_risk_per_trade_pct": 1}})
    snap = held(500, "ABC")  # risks 2 000 USD already
    result = decide(compiled, request("open", target_size=1, size_increment=1), snap)
    assert summary(result) == denied("limit.max_portfolio_risk")


# -- per asset, per strategy, per order, per symbol ----------------------------------------


@pytest.mark.parametrize(("target", "expected"), around(50), ids=["below", "at", "above"])
def test_per_asset_when_exposure_around_five_percent(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """5 % = 5 000 USD = 50 units at 100 USD, 10 of them held."""
    compiled = policies(limits={"risk": {"max_per_asset_pct": 5}})
    result = decide(compiled, request("increase", target_size=target, size_increment=1), held(10))
    assert summary(result) == expected


@pytest.mark.parametrize(("target", "expected"), around(50), ids=["below", "at", "above"])
def test_per_strategy_when_strategy_exposure_around_its_cap(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """momentum: 10 % = 10 000 USD; 5 000 already in ABC: 50 units of XYZ left."""
    compiled = policies(limits={"risk": {"max_per_strategy_pct": {"momentum": 10}}})
    snap = snapshot(
        positions=[position("ABC", 50, strategy="momentum")],
        markets={SYMBOL: market(), "ABC": market()},
    )
    order = request("open", target_size=target, strategy_id="momentum", size_increment=1)
    assert summary(decide(compiled, order, snap)) == expected


def test_per_strategy_when_capped_per_strategy_id(policies: PolicyFactory) -> None:
    """Each strategy has its own cap and exposure; a strategy without a cap has none."""
    compiled = policies(limits={"risk": {"max_per_strategy_pct": {"momentum": 10, "carry": 2}}})
    snap = snapshot(
        positions=[position("ABC", 50, strategy="momentum")],
        markets={SYMBOL: market(), "ABC": market()},
    )

    def check(strategy: str | None, target: int) -> Any:
        order = request("open", target_size=target, strategy_id=strategy, size_increment=1)
        return decide(compiled, order, snap)

    assert summary(check("carry", 20)) == approved(20)  # 2 % = 2 000 USD, nothing held
    assert summary(check("carry", 21)) == downsized(20)
    assert summary(check("momentum", 51)) == downsized(50)
    assert summary(check("other", 500)) == approved(500)
    assert summary(check(None, 500)) == approved(500)


def test_per_strategy_when_nothing_left_then_denied_naming_the_strategy(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"risk": {"max_per_strategy_pct": {"momentum": 5}}})
    snap = snapshot(
        positions=[position("ABC", 50, strategy="momentum")],
        markets={SYMBOL: market(), "ABC": market()},
    )
    order = request("open", target_size=1, strategy_id="momentum")
    assert summary(decide(compiled, order, snap)) == denied("limit.max_per_strategy")


@pytest.mark.parametrize(("target", "expected"), around(60), ids=["below", "at", "above"])
def test_notional_per_order_when_order_value_around_cap(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """5 000 USD per order = 50 units on top of the 10 held."""
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 5000}})
    result = decide(compiled, request("increase", target_size=target, size_increment=1), held(10))
    assert summary(result) == expected


@pytest.mark.parametrize(("target", "expected"), around(50), ids=["below", "at", "above"])
def test_position_per_symbol_when_position_value_around_cap(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """5 000 USD per symbol = 50 units, 10 of them held."""
    compiled = policies(limits={"orders": {"max_position_per_symbol_usd": 5000}})
    result = decide(compiled, request("increase", target_size=target, size_increment=1), held(10))
    assert summary(result) == expected


# -- region: margin and shorting ---------------------------------------------------------


@pytest.mark.parametrize(("target", "expected"), around(50), ids=["below", "at", "above"])
def test_margin_when_order_value_around_cash(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """No margin: an order may spend the 5 000 USD of cash, 50 units."""
    compiled = policies(limits={"region": {"margin_allowed": False}})
    result = decide(
        compiled, request("open", target_size=target, size_increment=1), snapshot(cash=5000)
    )
    assert summary(result) == expected


def test_margin_when_allowed_then_order_beyond_cash_approved(policies: PolicyFactory) -> None:
    compiled = policies(limits={"region": {"margin_allowed": True}})
    result = decide(compiled, request("open", target_size=51), snapshot(cash=5000))
    assert summary(result) == approved(51)


def test_margin_when_no_cash_then_denied(policies: PolicyFactory) -> None:
    compiled = policies(limits={"region": {"margin_allowed": False}})
    result = decide(compiled, request("open", target_size=1), snapshot(cash=0))
    assert summary(result) == denied("limit.region.margin")


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [(False, denied("limit.region.shorting")), (True, approved(10))],
    ids=["not-allowed", "allowed"],
)
def test_shorting_when_region_forbids_then_short_open_denied(
    policies: PolicyFactory, allowed: bool, expected: Any
) -> None:
    compiled = policies(limits={"region": {"shorting_allowed": allowed}})
    result = decide(compiled, request("open", target_size=10, side="short"))
    assert summary(result) == expected


def test_shorting_when_forbidden_then_long_open_and_short_close_approved(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"region": {"shorting_allowed": False}})
    short = snapshot(positions=[position(quantity=10, side="short")])
    assert summary(decide(compiled, request("open", target_size=10))) == approved(10)
    assert summary(decide(compiled, request("close", side="short"), short)) == approved(0)


# -- liquidity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("liquidity", "expected"),
    [(99_999, denied("limit.liquidity")), (100_000, approved(10)), (100_001, approved(10))],
    ids=["below", "at", "above"],
)
def test_liquidity_when_around_minimum(
    default_policies: CompiledPolicySet, liquidity: int, expected: Any
) -> None:
    snap = snapshot(markets={SYMBOL: market(liquidity=liquidity)})
    assert summary(decide(default_policies, request("open", target_size=10), snap)) == expected


def test_liquidity_when_too_low_then_close_still_approved(
    default_policies: CompiledPolicySet,
) -> None:
    snap = held(10, markets={SYMBOL: market(liquidity=1)})
    assert summary(decide(default_policies, request("close"), snap)) == approved(0)


# -- open positions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_now", "expected"),
    [
        (2, approved(10)),
        (3, denied("limit.max_open_positions")),
        (4, denied("limit.max_open_positions")),
    ],
    ids=["below", "at", "above"],
)
def test_open_positions_when_count_around_max(
    policies: PolicyFactory, open_now: int, expected: Any
) -> None:
    """max 3: with 2 open the third may open; with 3 open a fourth may not."""
    compiled = policies(limits={"risk": {"max_open_positions": 3}})
    symbols = ["AAA", "BBB", "CCC", "DDD"][:open_now]
    snap = snapshot(
        positions=[position(s, 1) for s in symbols],
        markets={SYMBOL: market(), **{s: market() for s in symbols}},
    )
    assert summary(decide(compiled, request("open", target_size=10), snap)) == expected


def test_open_positions_when_at_max_then_increase_of_a_held_symbol_approved(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"risk": {"max_open_positions": 3}})
    symbols = ["AAA", "BBB", SYMBOL]
    snap = snapshot(
        positions=[position(s, 10) for s in symbols], markets={s: market() for s in symbols}
    )
    assert summary(decide(compiled, request("increase", target_size=20), snap)) == approved(20)


# -- manual positions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include_manual", "expected"),
    [(False, approved(10)), (True, denied("limit.max_open_positions"))],
    ids=["manual-excluded", "manual-included"],
)
def test_manual_positions_when_excluded_then_not_counted_as_open_positions(
    policies: PolicyFactory, include_manual: bool, expected: Any
) -> None:
    compiled = policies(
        limits={"include_manual_positions": include_manual, "risk": {"max_open_positions": 2}}
    )
    snap = snapshot(
        positions=[position("ABC", 1), position("DEF", 1, manual=True)],
        markets={SYMBOL: market(), "ABC": market(), "DEF": market()},
    )
    assert summary(decide(compiled, request("open", target_size=10), snap)) == expected


@pytest.mark.parametrize("manual_first", [True, False], ids=["manual-first", "manual-last"])
def test_manual_positions_when_a_symbol_also_has_a_strategy_position_then_it_counts(
    policies: PolicyFactory, manual_first: bool
) -> None:
    compiled = policies(
        limits={"include_manual_positions": False, "risk": {"max_open_positions": 2}}
    )
    mixed = [position("DEF", 1, manual=True, strategy="hand"), position("DEF", 1, strategy="s1")]
    snap = snapshot(
        positions=[
            position("ABC", 1),
            *(mixed if manual_first else reversed(mixed)),
        ],
        markets={SYMBOL: market(), "ABC": market(), "DEF": market()},
    )
    result = decide(compiled, request("open", target_size=10), snap)
    assert summary(result) == denied("limit.max_open_positions")


@pytest.mark.parametrize(
    "include_manual", [False, True], ids=["manual-excluded", "manual-included"]
)
def test_manual_positions_when_excluded_then_per_asset_cap_still_counts_them(
    policies: PolicyFactory, include_manual: bool
) -> None:
    """5 % = 50 units; 40 held by hand: 10 more whatever include_manual_positions says."""
    compiled = policies(
        limits={"include_manual_positions": include_manual, "risk": {"max_per_asset_pct": 5}}
    )
    snap = snapshot(positions=[position(quantity=40, manual=True)])
    result = decide(compiled, request("increase", target_size=60, size_increment=1), snap)
    assert summary(result) == downsized(50)


@pytest.mark.parametrize(
    ("include_manual", "expected"),
    [(False, approved(100)), (True, downsized(50))],
    ids=["manual-excluded", "manual-included"],
)
def test_manual_positions_when_excluded_then_not_in_strategy_exposure(
    policies: PolicyFactory, include_manual: bool, expected: Any
) -> None:
    """momentum 10 % = 10 000 USD; 5 000 of it held by hand in ABC."""
    compiled = policies(
        limits={
            "include_manual_positions": include_manual,
            "risk": {"max_per_strategy_pct": {"momentum": 10}},
        }
    )
    snap = snapshot(
        positions=[position("ABC", 50, strategy="momentum", manual=True)],
        markets={SYMBOL: market(), "ABC": market()},
    )
    order = request("open", target_size=100, strategy_id="momentum", size_increment=1)
    assert summary(decide(compiled, order, snap)) == expected


# -- downsizing --------------------------------------------------------------------------------


def test_downsize_when_several_size_limits_then_tightest_wins(policies: PolicyFactory) -> None:
    """per asset 5 % (50 units), order notional 3 000 USD (30 units), risk 1 % (250)."""
    compiled = policies(
        limits={
            "risk": {"max_per_asset_pct": 5, "max_risk_per_trade_pct": 1},
            "orders": {"max_notional_per_order_usd": 3000},
        }
    )
    result = decide(compiled, request("open", target_size=100, size_increment=1))
    assert summary(result) == downsized(30)
    assert "max_per_asset" in result.reasons[0]
    assert "max_notional_per_order" in result.reasons[0]


@pytest.mark.parametrize(
    ("increment", "expected"),
    [("1", "33"), ("0.5", "33"), ("0.1", "33.3"), ("0.01", "33.33"), ("5", "30")],
)
def test_downsize_when_room_is_fractional_then_rounded_down_to_increment(
    policies: PolicyFactory, increment: str, expected: str
) -> None:
    """1 000 USD per order at 30 USD: 33.33… units."""
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 1000}})
    snap = snapshot(markets={SYMBOL: market(price=30)})
    result = decide(compiled, request("open", target_size=100, size_increment=increment), snap)
    assert summary(result) == downsized(expected)


def test_downsize_when_increase_then_approved_size_is_current_plus_room(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 1000}})
    snap = held("2.5", markets={SYMBOL: market(price=30)})
    result = decide(compiled, request("increase", target_size=100, size_increment=1), snap)
    assert summary(result) == downsized("35.5")  # 2.5 held + 33 whole units


def test_downsize_when_room_rounds_to_nothing_then_denied(policies: PolicyFactory) -> None:
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 20}})
    snap = snapshot(markets={SYMBOL: market(price=30)})
    result = decide(compiled, request("open", target_size=10, size_increment=1), snap)
    assert summary(result) == denied("limit.max_notional_per_order")


def test_downsize_when_nothing_fits_then_denied_naming_every_violated_limit(
    policies: PolicyFactory,
) -> None:
    """50 held = the 5 % per-asset cap; +300 also breaks the order notional and trade risk."""
    compiled = policies(
        limits={
            "risk": {"max_per_asset_pct": 5, "max_risk_per_trade_pct": 1},
            "orders": {"max_notional_per_order_usd": 5000, "max_position_per_symbol_usd": 100000},
        }
    )
    result = decide(compiled, request("increase", target_size=350), held(50))
    assert summary(result) == denied(
        "limit.max_risk_per_trade", "limit.max_per_asset", "limit.max_notional_per_order"
    )
    assert len(result.reasons) == 3


def test_downsize_when_a_hard_limit_also_blocks_then_denied_naming_both(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    snap = snapshot(markets={SYMBOL: market(liquidity=1)})
    result = decide(compiled, request("open", target_size=300), snap)
    assert summary(result) == denied("limit.liquidity", "limit.max_risk_per_trade")


def test_downsize_when_a_hard_limit_blocks_then_every_size_limit_named_too(
    policies: PolicyFactory,
) -> None:
    compiled = policies(
        limits={
            "risk": {"max_risk_per_trade_pct": 1, "max_per_asset_pct": 5},
            "orders": {"max_notional_per_order_usd": 5000},
        }
    )
    snap = snapshot(markets={SYMBOL: market(liquidity=1)})
    result = decide(compiled, request("open", target_size=300), snap)
    assert summary(result) == denied(
        "limit.liquidity",
        "limit.max_risk_per_trade",
        "limit.max_per_asset",
        "limit.max_notional_per_order",
    )
    assert len(result.reasons) == 4


def test_downsize_when_a_protection_also_blocks_then_denied_naming_both(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    trades = [("open", NOW - timedelta(hours=4)), ("close", NOW - timedelta(hours=3))] * 2
    result = decide(compiled, request("open", target_size=300), snapshot(), state(trades=trades))
    assert summary(result) == denied("whipsaw_protection", "limit.max_risk_per_trade")


# -- submit rate -------------------------------------------------------------------------------

RATE = {"orders": {"submit_rate": "3/1m"}}


def ago(*seconds: int) -> list[Any]:
    return [NOW - timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize(
    ("recent", "expected"),
    [(2, approved(10)), (3, denied("limit.submit_rate")), (4, denied("limit.submit_rate"))],
    ids=["below", "at", "above"],
)
def test_submit_rate_when_approvals_in_window_around_count(
    policies: PolicyFactory, recent: int, expected: Any
) -> None:
    memory = state(submits=ago(*range(recent, 0, -1)))
    result = decide(policies(limits=RATE), request("open", target_size=10), snapshot(), memory)
    assert summary(result) == expected


def test_submit_rate_when_approvals_older_than_window_then_not_counted(
    policies: PolicyFactory,
) -> None:
    memory = state(submits=ago(600, 61, 60, 2, 1))  # 60 s ago is out of a 1-minute window
    result = decide(policies(limits=RATE), request("open", target_size=10), snapshot(), memory)
    assert summary(result) == approved(10)
    assert result.state.authority.submits == {ACCOUNT: (*ago(2, 1), NOW)}


@pytest.mark.parametrize(
    ("action", "target"), [("close", None), ("decrease", 5)], ids=["close", "decrease"]
)
def test_submit_rate_when_reducing_then_also_limited(
    policies: PolicyFactory, action: str, target: int | None
) -> None:
    """Only cancels are exempt: a close past the rate is denied too."""
    compiled = policies(limits=RATE)
    full = decide(
        compiled, request(action, target_size=target), held(), state(submits=ago(3, 2, 1))
    )
    room = decide(compiled, request(action, target_size=target), held(), state(submits=ago(2, 1)))
    assert summary(full) == denied("limit.submit_rate")
    assert summary(room) == approved(target or 0)
    assert room.state.authority.submits == {ACCOUNT: (*ago(2, 1), NOW)}


def test_submit_rate_when_cancel_then_never_limited_nor_counted(policies: PolicyFactory) -> None:
    memory = state(submits=ago(3, 2, 1))
    result = decide(policies(limits=RATE), request("cancel"), held(), memory)
    assert summary(result) == approved(10)
    assert result.state.authority.submits == memory.authority.submits


def test_submit_rate_when_orders_go_through_can_execute_then_approvals_recorded(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits=RATE)
    memory = State()
    for second in range(3):
        result = decide(
            compiled,
            request("open", current_size=0, target_size=1),  # each a new order (none pending)
            snapshot(),
            memory,
            NOW + timedelta(seconds=second),
        )
        assert result.approved
        memory = result.state
    assert memory.authority.submits == {
        ACCOUNT: tuple(NOW + timedelta(seconds=s) for s in range(3))
    }
    fourth = decide(
        compiled,
        request("open", current_size=0, target_size=1),
        snapshot(),
        memory,
        NOW + timedelta(seconds=3),
    )
    assert summary(fourth) == denied("limit.submit_rate")
    assert fourth.state.authority.submits == memory.authority.submits  # a denial is not counted
    # a minute after the first approval it has left the window
    later = decide(
        compiled,
        request("open", current_size=0, target_size=1),
        snapshot(),
        memory,
        NOW + timedelta(seconds=60),
    )
    assert summary(later) == approved(1)
    assert later.state.authority.submits == {
        ACCOUNT: tuple(NOW + timedelta(seconds=s) for s in (1, 2, 60))
    }


# -- trading states ----------------------------------------------------------------------------

ORDERS = {
    "open": (request("open", current_size=0, target_size=5), 5),
    "increase": (request("increase", target_size=15), 15),
    "decrease": (request("decrease", target_size=5), 5),
    "close": (request("close"), 0),
    "cancel": (request("cancel"), 10),
}
ALLOWED = {
    "ACTIVE": {"open", "increase", "decrease", "close", "cancel"},
    "REDUCING": {"decrease", "close", "cancel"},
    "HALTED": {"cancel"},
}


@pytest.mark.parametrize("action", list(ORDERS))
@pytest.mark.parametrize("trading_state", list(ALLOWED))
@pytest.mark.parametrize("where", ["account", "symbol"])
def test_trading_state_when_set_then_only_its_actions_pass(
    default_policies: CompiledPolicySet, action: str, trading_state: str, where: str
) -> None:
    if where == "account":
        memory = State(trading_states={ACCOUNT: trading_state})
    else:
        field = {"HALTED": "halted_symbols", "REDUCING": "reducing_symbols"}.get(trading_state)
        memory = State(**{field: frozenset({SYMBOL})}) if field else State()
    order, size = ORDERS[action]
    result = decide(default_policies, order, held(), memory)
    expected = approved(size) if action in ALLOWED[trading_state] else denied("limit.trading_state")
    assert summary(result) == expected


def test_trading_state_when_another_symbol_halted_then_this_one_trades(
    default_policies: CompiledPolicySet,
) -> None:
    memory = State(halted_symbols=frozenset({"ABC"}), reducing_symbols=frozenset({"DEF"}))
    result = decide(default_policies, request("increase", target_size=15), held(), memory)
    assert summary(result) == approved(15)


def test_trading_state_when_account_reducing_and_symbol_halted_then_strictest_applies(
    default_policies: CompiledPolicySet,
) -> None:
    memory = State(trading_states={ACCOUNT: "REDUCING"}, halted_symbols=frozenset({SYMBOL}))
    assert summary(decide(default_policies, request("close"), held(), memory)) == denied(
        "limit.trading_state"
    )
    assert summary(decide(default_policies, request("cancel"), held(), memory)) == approved(10)


def test_trading_state_when_policy_changes_allowed_actions_then_followed(
    policies: PolicyFactory,
) -> None:
    compiled = policies(limits={"trading_states": {"REDUCING": ["close", "cancel"]}})
    memory = State(trading_states={ACCOUNT: "REDUCING"})
    decrease = decide(compiled, request("decrease", target_size=5), held(), memory)
    assert summary(decrease) == denied("limit.trading_state")
    assert summary(decide(compiled, request("close"), held(), memory)) == approved(0)


# -- the shipped limits, and no LimitPolicy at all ----------------------------------------------


def test_shipped_limits_when_sized_from_volatility_then_per_asset_cap_binds(
    policies: PolicyFactory,
) -> None:
    """policies/limits.yaml: 1 % risk sizes 250 units, 5 % per asset allows 50 of them."""
    compiled = policies(loose=False)
    result = decide(compiled, request("open", size_increment=1))
    assert result.requested_size == D(250)
    assert summary(result) == downsized(50)


@pytest.mark.parametrize(
    ("trading_state", "action", "expected"),
    [
        ("ACTIVE", "increase", approved(15)),
        ("REDUCING", "increase", denied("limit.trading_state")),
        ("REDUCING", "close", approved(0)),
        ("HALTED", "close", denied("limit.trading_state")),
        ("HALTED", "cancel", approved(10)),
    ],
)
def test_no_limit_policy_when_trading_state_set_then_built_in_table_applies(
    policies: PolicyFactory, trading_state: str, action: str, expected: Any
) -> None:
    compiled = policies(limits=False)
    order = request(action, target_size=15 if action == "increase" else None)
    memory = State(trading_states={ACCOUNT: trading_state})
    assert summary(decide(compiled, order, held(), memory)) == expected


def test_no_limit_policy_when_no_target_size_then_denied_for_sizing(
    policies: PolicyFactory,
) -> None:
    assert summary(decide(policies(limits=False), request("open"))) == denied("sizing")
