"""Region margin: where the region allows no margin, an order is worth at most the
account's cash."""

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

ID = "limit.region.margin"


class Margin(Limit):
    id = ID
    fields: ClassVar = {"cash_shortfall_usd": "order value beyond the account's cash"}
    shown_field = "cash_shortfall_usd"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["cash_shortfall_usd"] = max(ZERO, m.added_value - ctx.book.account.cash_usd)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        if spec.margin_allowed:
            return []
        return [RuleSpec(ID, AllOf(ADDS, Compare("cash_shortfall_usd", ">", 0)))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return ZERO

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "order value {} USD > cash {} USD and region {} allows no margin",
            m.delta * m.price,
            ctx.book.account.cash_usd,
            spec.region_code or "(unnamed)",
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units(ctx.book.account.cash_usd, m.price)


CONTROL: Margin = Margin()
