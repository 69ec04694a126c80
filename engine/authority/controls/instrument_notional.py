"""Instrument notional: an order's value (quantity × price) is at least the instrument's
`min_notional` and at most its `max_notional` USD (the snapshot's record, or the
LimitPolicy's `instruments` section as `min_notional_usd` / `max_notional_usd`: the
stricter wins, `authority.instrument_rules`).

The price is the order's own (its limit price, else its trigger), else the snapshot's
market price. Below the minimum blocks outright; above the maximum is a size limit:
downsized to what the maximum buys (floored to the lot), or denied under
`on_breach: deny`. Checked on opens, increases and partial decreases (a close always
passes); a decrease with no price to value it at is not checked. An order another
limit cut below the minimum is denied by the walk (`instrument_rules.too_small`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, is_, units
from bastion.engine.authority.instrument_rules import order_price, order_quantity, rules_of
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

MIN_ID = "limit.instrument.min_notional"
MAX_ID = "limit.instrument.max_notional"
CHECKED = ("open", "increase", "decrease")


def _price(ctx: Context) -> Decimal | None:
    request = ctx.request
    return order_price(request.price, request.trigger_price, ctx.price)


def notional(ctx: Context) -> Decimal | None:
    """The order's value in USD; None without a price, at a price of 0 (the price check
    says what is wrong then), or when nothing is traded."""
    price = _price(ctx)
    quantity = order_quantity(ctx.request.action, ctx.current, ctx.target)
    if price is None or price == 0 or quantity <= 0:
        return None
    return abs(quantity * price)


class MinNotional(Limit):
    id = MIN_ID
    blocking = True
    any_action = True
    records_pass = False
    fields: ClassVar = {"below_min_notional": "the order's value is below min_notional"}
    shown_field = "below_min_notional"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        least = rules_of(ctx, spec).min_notional
        if least is None:
            fact["below_min_notional"] = False
            return
        value = notional(ctx)
        fact["below_min_notional"] = value is not None and value < least.value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(MIN_ID, AllOf(action_in(CHECKED), is_("below_min_notional")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        least = rules_of(ctx, spec).min_notional
        assert least is not None, "fired only with a minimum"
        price = _price(ctx) or Decimal(1)  # not 0 here: a zero price values nothing
        return (
            f"order value {shown(notional(ctx) or Decimal(0))} USD < min_notional "
            f"{shown(least.value)} USD ({least}): at {shown(abs(price))} USD a unit, send at "
            f"least {shown(least.value / abs(price))} units"
        )


class MaxNotional(Limit):
    id = MAX_ID
    any_action = True
    records_pass = False
    fields: ClassVar = {"above_max_notional": "the order's value is above max_notional"}
    shown_field = "above_max_notional"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        most = rules_of(ctx, spec).max_notional
        if most is None:
            fact["above_max_notional"] = False
            return
        value = notional(ctx)
        fact["above_max_notional"] = value is not None and value > most.value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(MAX_ID, AllOf(action_in(CHECKED), is_("above_max_notional")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        most = rules_of(ctx, spec).max_notional
        assert most is not None, "fired only with a maximum"
        return (
            f"order value {shown(notional(ctx) or Decimal(0))} USD > max_notional "
            f"{shown(most.value)} USD ({most})"
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        most = rules_of(ctx, spec).max_notional
        price = _price(ctx)
        if most is None or price is None:
            return order_quantity(ctx.request.action, ctx.current, ctx.target)
        return units(most.value, abs(price))


MIN: MinNotional = MinNotional()
MAX: MaxNotional = MaxNotional()
