"""The order rules one instrument's orders must meet: the snapshot's Instrument record
(the venue's rules) merged with the LimitPolicy's `instruments` section.

In the policy, each rule comes from the most specific entry that sets it: the symbol's,
then its asset class's (from the snapshot's record), then "*". Against the venue's, the
stricter wins: the larger minimum, the smaller maximum, and for tick and lot sizes
their least common multiple (a quantity on it is on both). Each rule keeps the names of
its sources, so that a reason says which rule an order broke.

`order_quantity`, `order_price` and `order_increment` are the quantities the instrument
controls (controls/instrument_*.py, reduce_only.py) and the walk's sizing share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from bastion.engine.authority.book import ZERO
from bastion.engine.decision import render_value, shown
from bastion.engine.policy.kinds.limits import InstrumentRules, LimitSpec
from bastion.engine.snapshot import Instrument, Snapshot

if TYPE_CHECKING:  # controls import this module: the type only
    from bastion.engine.authority.controls.base import Context

# Asset classes whose prices may be zero or negative (spreads, calendar rolls, and
# commodities that trade as futures); every other order price must be above 0.
SIGNED_PRICE_CLASSES = frozenset({"future", "option"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One effective rule: its value and where it comes from (for reasons)."""

    value: Decimal
    source: str  # "snapshot instruments.BTCUSD", "policy instruments.crypto", or both

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules an order for one symbol meets; None: no rule."""

    symbol: str
    asset_class: str | None = None
    tick_size: Rule | None = None
    lot_size: Rule | None = None
    min_quantity: Rule | None = None
    max_quantity: Rule | None = None
    min_notional: Rule | None = None  # USD
    max_notional: Rule | None = None  # USD


_STRICTER = {
    "tick_size": "multiple",
    "lot_size": "multiple",
    "min_quantity": "max",
    "max_quantity": "min",
    "min_notional": "max",
    "max_notional": "min",
}
_POLICY_NAME = {name: name for name in _STRICTER} | {
    "min_notional": "min_notional_usd",
    "max_notional": "max_notional_usd",
}


def rules_for(symbol: str, snapshot: Snapshot, limits: LimitSpec | None) -> Rules:
    """The effective rules for orders in `symbol`."""
    record = snapshot.instruments.get(symbol)
    entries = limits.instruments if limits is not None else ()
    if record is None and not entries:
        return _no_rules(symbol)
    return _merged(symbol, record, entries)


def rules_of(ctx: Context, limits: LimitSpec | None) -> Rules:
    """`rules_for` the request's symbol, looked up once per request: the instrument
    controls and the walk's sizing all ask (kept on the context, for these limits)."""
    kept = ctx.instrument
    if kept is not None and kept[0] is limits:
        return kept[1]
    rules = rules_for(ctx.request.symbol, ctx.snapshot, limits)
    ctx.instrument = (limits, rules)
    return rules


@lru_cache(maxsize=1024)
def _no_rules(symbol: str) -> Rules:
    return Rules(symbol)


@lru_cache(maxsize=4096)
def _merged(
    symbol: str,
    record: Instrument | None,
    entries: tuple[tuple[str, InstrumentRules], ...],
) -> Rules:
    """Frozen inputs, so the merge is computed once per (record, policy section)."""
    asset_class = record.asset_class if record is not None else None
    by_key: Mapping[str, InstrumentRules] = dict(entries)
    keys = [key for key in (symbol, asset_class, "*") if key is not None and key in by_key]
    values: dict[str, Rule | None] = {}
    for name, how in _STRICTER.items():
        found: list[Rule] = []
        if record is not None and getattr(record, name) is not None:
            found.append(Rule(getattr(record, name), f"snapshot instruments.{symbol}"))
        for key in keys:  # the most specific policy entry that sets it
            value = getattr(by_key[key], _POLICY_NAME[name])
            if value is not None:
                found.append(Rule(value, f"policy instruments.{key}"))
                break
        values[name] = _stricter(found, how)
    return Rules(symbol, asset_class, **values)


def _stricter(found: list[Rule], how: str) -> Rule | None:
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    venue, policy = found
    if how == "max":
        value = max(venue.value, policy.value)
    elif how == "min":
        value = min(venue.value, policy.value)
    else:
        value = common_multiple(venue.value, policy.value)
    sources = [rule.source for rule in found if rule.value == value]
    return Rule(value, " and ".join(sources) if sources else " and ".join(r.source for r in found))


def common_multiple(first: Decimal, second: Decimal) -> Decimal:
    """The least common multiple of two positive decimals (0.25 and 0.1: 0.5)."""
    if first % second == 0:
        return first
    if second % first == 0:
        return second
    exponent = min(first.as_tuple().exponent, second.as_tuple().exponent)
    assert isinstance(exponent, int), "finite values only"
    whole = math.lcm(int(first.scaleb(-exponent)), int(second.scaleb(-exponent)))
    return Decimal(whole).scaleb(exponent)


# -- the order, as the instrument rules measure it ------------------------------------


def order_quantity(action: str, current: Decimal, target: Decimal) -> Decimal:
    """Units the order trades; 0 for a close or a decrease to nothing (they sell the
    whole position, which the quantity rules always let through) and for a cancel."""
    if action in ("open", "increase"):
        return max(ZERO, target - current)
    if action == "decrease" and target > 0:
        return max(ZERO, current - target)
    return ZERO


def order_price(
    request_price: Decimal | None, trigger: Decimal | None, market: Decimal | None
) -> Decimal | None:
    """The price the order is valued at: its limit price, else its trigger, else the
    market's (the price the snapshot gives)."""
    if request_price is not None:
        return request_price
    if trigger is not None:
        return trigger
    return market


def order_increment(size_increment: Decimal, rules: Rules) -> Decimal:
    """The step an approved size is floored to: the request's size increment and the
    instrument's lot size together."""
    if rules.lot_size is None:
        return size_increment
    return common_multiple(size_increment, rules.lot_size.value)


def too_small(rules: Rules, quantity: Decimal, price: Decimal | None) -> tuple[str, str] | None:
    """(rule id, words) when an order cut to `quantity` units falls below the
    instrument's minimum quantity or value; None when it does not."""
    least = rules.min_quantity
    if least is not None and quantity < least.value:
        return (
            "limit.instrument.min_quantity",
            f"an order of {render_value(quantity)} units, below min_quantity "
            f"{render_value(least.value)} ({least})",
        )
    smallest = rules.min_notional
    if smallest is not None and price is not None and abs(quantity * price) < smallest.value:
        return (
            "limit.instrument.min_notional",
            f"an order worth {shown(abs(quantity * price))} USD, below min_notional "
            f"{shown(smallest.value)} USD ({smallest})",
        )
    return None
