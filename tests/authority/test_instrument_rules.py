"""Instrument rules: lot size, min / max quantity, min / max notional, price on tick and
above 0 — from the snapshot's instrument record, the LimitPolicy's `instruments`
section, or both (the stricter wins).

Equity 100 000 USD, XYZ at 100 USD; the limits start from LOOSE_LIMITS (conftest), so
only the instrument rule under test binds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.authority import rules as r
from bastion.engine.authority.instrument_rules import common_multiple, rules_for
from bastion.engine.snapshot import Snapshot, validate_snapshot
from tests.authority.builders import (
    SYMBOL,
    D,
    decide,
    market,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import PolicyFactory


def approved(size: Any) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("approved", True, D(size), ())


def downsized(size: Any) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("downsized", True, D(size), ())


def denied(*blocking: str) -> tuple[str, bool, Any, tuple[str, ...]]:
    return ("denied", False, None, blocking)


def with_instrument(
    asset_class: str = "equity", held: Any = 0, price: Any = 100, **rules: Any
) -> Snapshot:
    """The default snapshot with an instrument record for XYZ carrying `rules`."""
    positions = [position(SYMBOL, held, price=price)] if held else []
    document = snapshot(positions=positions, markets={SYMBOL: market(price=price)}).to_dict()
    document["instruments"] = {
        SYMBOL: {"asset_class": asset_class, **{k: str(v) for k, v in rules.items()}}
    }
    return validate_snapshot(document)


# -- lot size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [(100, approved(100)), (105, downsized(100)), (99, downsized(90)), (9, None)],
    ids=["on-lot", "above-rounded-down", "rounded-down", "below-one-lot"],
)
def test_lot_size_when_quantity_off_lot_then_rounded_down(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """With lot 10 an order is rounded DOWN to the lot; below one lot nothing is left."""
    compiled = policies()
    result = decide(compiled, request("open", target_size=target), with_instrument(lot_size=10))
    if expected is None:
        assert summary(result) == denied(r.LOT_SIZE)
        assert "lot_size 10 (snapshot instruments.XYZ)" in result.reasons[0]
    else:
        assert summary(result) == expected


def test_lot_size_when_on_breach_deny_then_denied_naming_the_lot(policies: PolicyFactory) -> None:
    """on_breach: deny refuses the off-lot order and says what the cut would have been."""
    compiled = policies(limits={"on_breach": "deny"})
    result = decide(compiled, request("open", target_size=105), with_instrument(lot_size=10))
    assert summary(result) == denied(r.LOT_SIZE)
    assert "an order of 105 units is not a multiple of it" in result.reasons[0]
    assert "nearest below is 100 units" in result.reasons[0]
    assert "denied rather than downsized to 100" in result.reasons[-1]


def test_lot_size_when_close_of_off_lot_position_then_approved(policies: PolicyFactory) -> None:
    """A close sells the whole position, on the lot or not."""
    compiled = policies(limits={"on_breach": "deny"})
    snap = with_instrument(lot_size=100, held=150)
    assert summary(decide(compiled, request("close"), snap)) == approved(0)


def test_lot_size_when_partial_decrease_off_lot_then_cut_to_lot(policies: PolicyFactory) -> None:
    """Selling 130 of 300 with lot 100 sells 100: 200 stay held."""
    compiled = policies()
    snap = with_instrument(lot_size=100, held=300, price=1)
    result = decide(compiled, request("decrease", target_size=170), snap)
    assert summary(result) == downsized(200)


def test_lot_size_when_another_limit_cuts_then_floored_to_the_lot(
    policies: PolicyFactory,
) -> None:
    """A notional cap of 5 500 USD allows 55 units; the lot of 10 leaves 50."""
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 5_500}})
    result = decide(compiled, request("open", target_size=100), with_instrument(lot_size=10))
    assert summary(result) == downsized(50)


# -- min / max quantity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [(9, denied(r.MIN_QUANTITY)), (10, approved(10)), (11, approved(11))],
    ids=["below", "at", "above"],
)
def test_min_quantity_when_around_the_minimum(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """min_quantity 10: 9 is denied (an order cannot be made larger), 10 passes."""
    compiled = policies()
    result = decide(compiled, request("open", target_size=target), with_instrument(min_quantity=10))
    assert summary(result) == expected
    if not result.approved:
        assert "send at least 10 units" in result.reasons[0]


@pytest.mark.parametrize(
    ("target", "expected"),
    [(499, approved(499)), (500, approved(500)), (501, downsized(500))],
    ids=["below", "at", "above"],
)
def test_max_quantity_when_around_the_maximum(
    policies: PolicyFactory, target: int, expected: Any
) -> None:
    """max_quantity 500: reached but not exceeded; above it downsized to 500."""
    compiled = policies()
    snap = with_instrument(max_quantity=500)
    assert summary(decide(compiled, request("open", target_size=target), snap)) == expected


def test_max_quantity_when_on_breach_deny_then_denied(policies: PolicyFactory) -> None:
    """Nautilus denies a quantity above the instrument's maximum; so does on_breach deny."""
    compiled = policies(limits={"on_breach": "deny"})
    result = decide(compiled, request("open", target_size=501), with_instrument(max_quantity=500))
    assert summary(result) == denied(r.MAX_QUANTITY)
    assert "order of 501 units > max_quantity 500" in result.reasons[0]


def test_min_quantity_when_close_below_minimum_then_approved(policies: PolicyFactory) -> None:
    """A position smaller than the minimum can still be closed."""
    compiled = policies()
    snap = with_instrument(min_quantity=10, held=3)
    assert summary(decide(compiled, request("close"), snap)) == approved(0)


def test_min_quantity_when_downsized_below_it_then_denied(policies: PolicyFactory) -> None:
    """A notional cap of 500 USD cuts to 5 units, below min_quantity 10: denied, not sent."""
    compiled = policies(limits={"orders": {"max_notional_per_order_usd": 500}})
    result = decide(compiled, request("open", target_size=100), with_instrument(min_quantity=10))
    assert summary(result) == denied(r.ORDER_NOTIONAL, r.MIN_QUANTITY)
    assert "below min_quantity 10" in result.reasons[-1]


# -- min / max notional -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [("0.99", denied(r.MIN_NOTIONAL)), (1, approved(1)), (2, approved(2))],
    ids=["below", "at", "above"],
)
def test_min_notional_when_around_the_minimum(
    policies: PolicyFactory, target: str, expected: Any
) -> None:
    """min_notional 100 USD at 100 USD a unit: 0.99 units are worth 99 USD."""
    compiled = policies()
    snap = with_instrument(min_notional=100)
    result = decide(compiled, request("open", target_size=target), snap)
    assert summary(result) == expected
    if not result.approved:
        assert "order value 99 USD < min_notional 100 USD" in result.reasons[0]


def test_max_notional_when_above_then_downsized_to_what_it_buys(policies: PolicyFactory) -> None:
    """max_notional 10 000 USD at 100 USD: 100 units."""
    compiled = policies()
    snap = with_instrument(max_notional=10_000)
    result = decide(compiled, request("open", target_size=150), snap)
    assert summary(result) == downsized(100)
    assert "max_notional 10000 USD" in result.reasons[0]


def test_max_notional_when_limit_price_given_then_valued_at_it(policies: PolicyFactory) -> None:
    """A limit order is valued at its own price: 150 units at 50 USD are 7 500 USD."""
    compiled = policies()
    snap = with_instrument(max_notional=10_000)
    order = request("open", target_size=150, order_type="limit", price=D(50))
    assert summary(decide(compiled, order, snap)) == approved(150)


# -- price ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "passes"),
    [("99.95", True), ("99.97", False), ("100", True)],
    ids=["on-tick", "off-tick", "whole"],
)
def test_price_when_on_or_off_tick(policies: PolicyFactory, price: str, passes: bool) -> None:
    """tick_size 0.05: 99.97 is off it and denied, naming the ticks either side."""
    compiled = policies()
    order = request("open", target_size=10, order_type="limit", price=D(price))
    result = decide(compiled, order, with_instrument(tick_size="0.05"))
    assert result.approved is passes
    if not passes:
        assert result.blocking == (r.INSTRUMENT_PRICE,)
        assert "use 99.95 or 100" in result.reasons[0]


def test_trigger_price_when_off_tick_then_denied(policies: PolicyFactory) -> None:
    """A stop's trigger must be on the tick too."""
    compiled = policies()
    order = request("open", target_size=10, order_type="stop", trigger_price=D("100.001"))
    result = decide(compiled, order, with_instrument(tick_size="0.01"))
    assert summary(result) == denied(r.INSTRUMENT_PRICE)
    assert "trigger_price 100.001" in result.reasons[0]


@pytest.mark.parametrize(
    ("asset_class", "price", "passes"),
    [
        ("equity", "-1", False),
        ("equity", "0", False),
        ("crypto", "-1", False),
        ("future", "-17", True),
        ("option", "-2.5", True),
        ("future", "0", True),
    ],
)
def test_price_when_not_above_zero_then_denied_unless_future_or_option(
    policies: PolicyFactory, asset_class: str, price: str, passes: bool
) -> None:
    """Spreads and rolls (futures, options) may price at or below 0; nothing else may."""
    compiled = policies()
    order = request("open", target_size=1, order_type="limit", price=D(price))
    result = decide(compiled, order, with_instrument(asset_class))
    assert result.approved is passes
    if not passes:
        assert "is not above 0" in result.reasons[0]


def test_price_when_symbol_has_no_instrument_record_then_negative_denied(
    policies: PolicyFactory,
) -> None:
    """No record: the asset class is unknown, so a price ≤ 0 is denied (fail closed)."""
    compiled = policies()
    order = request("open", target_size=1, order_type="limit", price=D(-1))
    result = decide(compiled, order)
    assert summary(result) == denied(r.INSTRUMENT_PRICE)


# -- the policy's `instruments` section, merged with the snapshot ------------------------


def test_policy_instruments_when_no_snapshot_record_then_symbol_rule_applies(
    policies: PolicyFactory,
) -> None:
    """A policy lot for the symbol applies without any snapshot record."""
    compiled = policies(limits={"instruments": {SYMBOL: {"lot_size": 10}}})
    result = decide(compiled, request("open", target_size=25))
    assert summary(result) == downsized(20)
    assert "lot_size 10 (policy instruments.XYZ)" in result.reasons[0]


def test_policy_instruments_when_stricter_than_snapshot_then_policy_wins(
    policies: PolicyFactory,
) -> None:
    """Snapshot min_notional 10, policy "*" 1 000: the stricter (1 000) applies."""
    compiled = policies(limits={"instruments": {"*": {"min_notional_usd": 1000}}})
    result = decide(compiled, request("open", target_size=5), with_instrument(min_notional=10))
    assert summary(result) == denied(r.MIN_NOTIONAL)
    assert "(policy instruments.*)" in result.reasons[0]


def test_policy_instruments_when_looser_than_snapshot_then_snapshot_wins(
    policies: PolicyFactory,
) -> None:
    """Policy max_quantity 1 000 does not loosen the venue's 100."""
    compiled = policies(limits={"instruments": {"equity": {"max_quantity": 1000}}})
    result = decide(compiled, request("open", target_size=500), with_instrument(max_quantity=100))
    assert summary(result) == downsized(100)
    assert "(snapshot instruments.XYZ)" in result.reasons[0]


def test_rules_for_when_keys_overlap_then_most_specific_policy_entry_wins(
    policies: PolicyFactory,
) -> None:
    """Symbol over asset class over "*", rule by rule; the lot is the common multiple."""
    compiled = policies(
        limits={
            "instruments": {
                "*": {"min_notional_usd": 5, "lot_size": 0.25},
                "equity": {"min_notional_usd": 50},
                SYMBOL: {"max_quantity": 7},
            }
        }
    )
    pair = compiled.governing_order_rules("gen", SYMBOL, None)
    assert pair.limits is not None
    merged = rules_for(SYMBOL, with_instrument(lot_size="0.1"), pair.limits.spec)
    assert merged.min_notional is not None and merged.min_notional.value == 50
    assert merged.max_quantity is not None and merged.max_quantity.value == 7
    assert merged.lot_size is not None and merged.lot_size.value == Decimal("0.5")
    assert "snapshot instruments.XYZ" in merged.lot_size.source


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [("0.25", "0.1", "0.5"), ("1", "0.01", "1"), ("0.3", "0.2", "0.6"), ("100", "1000", "1000")],
)
def test_common_multiple_when_two_increments_then_least_common_multiple(
    first: str, second: str, expected: str
) -> None:
    """A quantity on the common multiple is on both increments."""
    assert common_multiple(D(first), D(second)) == D(expected)


def test_volatility_sizing_when_instrument_has_a_lot_then_sized_in_whole_lots(
    policies: PolicyFactory,
) -> None:
    """1 % of 100 000 USD at 4 USD a unit is 250 units; in lots of 100, 200 — approved as
    sized, not downsized by the lot."""
    compiled = policies(limits={"risk": {"max_risk_per_trade_pct": 1}})
    result = decide(compiled, request("open"), with_instrument(lot_size=100))
    assert summary(result) == approved(200)
