"""Portfolio risk: the risk of every position after the order is at most
`max_portfolio_risk_pct` of equity."""

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

ID = "limit.max_portfolio_risk"


class PortfolioRisk(Limit):
    id = ID
    fields: ClassVar = {"portfolio_risk_pct": "risk of every position after the order"}
    shown_field = "portfolio_risk_pct"
    relation = "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["portfolio_risk_pct"] = m.pct(ctx.book.risk_usd(spec.atr_multiple) + m.added_risk)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        over = Compare("portfolio_risk_pct", ">", spec.max_portfolio_risk_pct)
        return [RuleSpec(ID, AllOf(ADDS, over))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return spec.max_portfolio_risk_pct

    def _budget(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return ctx.book.account.equity_usd * spec.max_portfolio_risk_pct / HUNDRED

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "portfolio risk {} USD > max_portfolio_risk {} % ({} USD)",
            ctx.book.risk_usd(spec.atr_multiple) + m.delta * m.unit_risk,
            spec.max_portfolio_risk_pct,
            self._budget(ctx, spec),
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        now_risk = ctx.book.risk_usd(spec.atr_multiple)
        return units(self._budget(ctx, spec) - now_risk, m.unit_risk)


CONTROL: PortfolioRisk = PortfolioRisk()
