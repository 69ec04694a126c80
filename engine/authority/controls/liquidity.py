"""Liquidity: no new exposure in a symbol that trades less than `min_liquidity_24h_usd`."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import ADDS, Context, Fact, Limit
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.liquidity"


class Liquidity(Limit):
    id = ID
    blocking = True
    fields: ClassVar = {"liquidity_usd": "the symbol's 24 h traded volume in USD"}
    shown_field = "liquidity_usd"
    relation = "≥"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        market = ctx.snapshot.market.get(ctx.request.symbol)
        fact["liquidity_usd"] = market.liquidity_usd if market else ZERO

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [
            RuleSpec(ID, AllOf(ADDS, Compare("liquidity_usd", "<", spec.min_liquidity_24h_usd)))
        ]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return spec.min_liquidity_24h_usd

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        symbol = ctx.request.symbol
        market = ctx.snapshot.market[symbol]
        return (
            f"{symbol} liquidity {shown(market.liquidity_usd)} USD < minimum "
            f"{shown(spec.min_liquidity_24h_usd)} USD"
        )


CONTROL: Liquidity = Liquidity()
