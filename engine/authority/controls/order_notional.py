"""Order notional: the order's value is at most `max_notional_per_order_usd`."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import (
    ADDS,
    Context,
    Fact,
    Limit,
    measures_of,
    units,
    worded,
)
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.max_notional_per_order"


class OrderNotional(Limit):
    id = ID
    fields: ClassVar = {"order_notional_usd": "value of the order"}
    shown_field = "order_notional_usd"
    relation = "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["order_notional_usd"] = m.added_value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        if spec.max_notional_per_order_usd is None:
            return []
        over = Compare("order_notional_usd", ">", spec.max_notional_per_order_usd)
        return [RuleSpec(ID, AllOf(ADDS, over))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal | None:
        return spec.max_notional_per_order_usd

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "order value {} USD > max_notional_per_order {} USD",
            m.delta * m.price,
            spec.max_notional_per_order_usd or ZERO,
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units(spec.max_notional_per_order_usd or ZERO, m.price)


CONTROL: OrderNotional = OrderNotional()
