"""Position per symbol: the symbol's position after the order is worth at most
`max_position_per_symbol_usd`."""

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

ID = "limit.max_position_per_symbol"


class SymbolPosition(Limit):
    id = ID
    fields: ClassVar = {"position_usd": "value of the symbol's position after the order"}
    shown_field = "position_usd"
    relation = "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["position_usd"] = m.exposure + m.added_value

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        if spec.max_position_per_symbol_usd is None:
            return []
        over = Compare("position_usd", ">", spec.max_position_per_symbol_usd)
        return [RuleSpec(ID, AllOf(ADDS, over))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal | None:
        return spec.max_position_per_symbol_usd

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "{} position {} USD > max_position_per_symbol {} USD",
            ctx.request.symbol,
            m.exposure + m.delta * m.price,
            spec.max_position_per_symbol_usd or ZERO,
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units((spec.max_position_per_symbol_usd or ZERO) - m.exposure, m.price)


CONTROL: SymbolPosition = SymbolPosition()
