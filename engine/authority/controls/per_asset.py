"""Per asset: exposure to the symbol after the order is at most `max_per_asset_pct` of
equity (manual positions always count)."""

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

ID = "limit.max_per_asset"


class PerAsset(Limit):
    id = ID
    fields: ClassVar = {"asset_pct": "exposure to the symbol after the order"}
    shown_field, relation = "asset_pct", "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["asset_pct"] = m.pct(m.exposure + m.added_value)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(ADDS, Compare("asset_pct", ">", spec.max_per_asset_pct)))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return spec.max_per_asset_pct

    def _budget(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return ctx.book.account.equity_usd * spec.max_per_asset_pct / HUNDRED

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "{} exposure {} USD > max_per_asset {} % ({} USD)",
            ctx.request.symbol,
            m.exposure + m.delta * m.price,
            spec.max_per_asset_pct,
            self._budget(ctx, spec),
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units(self._budget(ctx, spec) - m.exposure, m.price)


CONTROL = PerAsset()
