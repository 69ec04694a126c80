"""Instrument quantity: an order trades at least the instrument's `min_quantity` and at
most its `max_quantity` units (the snapshot's record, or the LimitPolicy's
`instruments` section: the stricter wins, `authority.instrument_rules`).

Below the minimum blocks outright (an order cannot be made larger); above the maximum
is a size limit: downsized to the maximum (floored to the lot), or denied under
`on_breach: deny`. Checked on the quantity the order trades (opens, increases, partial
decreases); a close and a decrease to 0 sell the whole position and always pass — a
position must always be exitable. An order another limit cut below the minimum is
denied by the walk (`instrument_rules.too_small`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, is_
from bastion.engine.authority.instrument_rules import order_quantity, rules_of
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

MIN_ID = "limit.instrument.min_quantity"
MAX_ID = "limit.instrument.max_quantity"
CHECKED = ("open", "increase", "decrease")


def _quantity(ctx: Context) -> Decimal:
    return order_quantity(ctx.request.action, ctx.current, ctx.target)


class MinQuantity(Limit):
    id = MIN_ID
    blocking = True
    any_action = True
    records_pass = False
    fields: ClassVar = {"below_min_quantity": "the order trades fewer units than min_quantity"}
    shown_field = "below_min_quantity"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        least = rules_of(ctx, spec).min_quantity
        if least is None:  # no minimum: nothing to measure
            fact["below_min_quantity"] = False
            return
        fact["below_min_quantity"] = 0 < _quantity(ctx) < least.value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(MIN_ID, AllOf(action_in(CHECKED), is_("below_min_quantity")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        least = rules_of(ctx, spec).min_quantity
        assert least is not None, "fired only with a minimum"
        return (
            f"order of {render_value(_quantity(ctx))} units < min_quantity "
            f"{render_value(least.value)} ({least}): send at least {render_value(least.value)} "
            "units, or close the whole position"
        )


class MaxQuantity(Limit):
    id = MAX_ID
    any_action = True  # a partial decrease above the maximum is cut too
    records_pass = False
    fields: ClassVar = {"above_max_quantity": "the order trades more units than max_quantity"}
    shown_field = "above_max_quantity"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        most = rules_of(ctx, spec).max_quantity
        fact["above_max_quantity"] = most is not None and _quantity(ctx) > most.value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(MAX_ID, AllOf(action_in(CHECKED), is_("above_max_quantity")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        most = rules_of(ctx, spec).max_quantity
        assert most is not None, "fired only with a maximum"
        return (
            f"order of {render_value(_quantity(ctx))} units > max_quantity "
            f"{render_value(most.value)} ({most})"
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        most = rules_of(ctx, spec).max_quantity
        return most.value if most is not None else _quantity(ctx)


MIN: MinQuantity = MinQuantity()
MAX: MaxQuantity = MaxQuantity()
