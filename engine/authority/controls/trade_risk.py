"""Risk per trade: the risk an order adds (units × ATR × atr_multiple) is at most
`max_risk_per_trade_pct` of equity."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import HUNDRED
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

ID = "limit.max_risk_per_trade"


class TradeRisk(Limit):
    id = ID
    fields: ClassVar = {"trade_risk_pct": "risk the order adds, in per cent of equity"}
    shown_field = "trade_risk_pct"
    relation = "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["trade_risk_pct"] = m.pct(m.added_risk)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        over = Compare("trade_risk_pct", ">", spec.max_risk_per_trade_pct)
        return [RuleSpec(ID, AllOf(ADDS, over))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return spec.max_risk_per_trade_pct

    def _budget(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return ctx.book.account.equity_usd * spec.max_risk_per_trade_pct / HUNDRED

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "order risk {} USD > max_risk_per_trade {} % of equity ({} USD)",
            m.delta * m.unit_risk,
            spec.max_risk_per_trade_pct,
            self._budget(ctx, spec),
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units(self._budget(ctx, spec), m.unit_risk)


CONTROL: TradeRisk = TradeRisk()
