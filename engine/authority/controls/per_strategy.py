"""Per strategy: exposure of the order's strategy after the order is at most its cap in
`max_per_strategy_pct` (one rule per capped strategy, `limit.max_per_strategy.<id>`)."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import HUNDRED, ZERO
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

ID = "limit.max_per_strategy"


class PerStrategy(Limit):
    id = ID
    fields: ClassVar = {"strategy_pct": "exposure of the strategy after the order"}
    shown_field = "strategy_pct"
    relation = "≤"

    def owns(self, rule_id: str) -> bool:
        return rule_id.startswith(f"{ID}.")

    def _rule(self, ctx: Context) -> str:
        return f"{ID}.{ctx.request.strategy_id}"

    def fired(self, fired: Collection[str], ctx: Context) -> str | None:
        rule = self._rule(ctx)
        return rule if rule in fired else None

    def configured_for(self, rule_ids: Collection[str], ctx: Context) -> bool:
        return self._rule(ctx) in rule_ids

    def _used(self, ctx: Context, spec: LimitSpec) -> Decimal:
        strategy = ctx.request.strategy_id or ""
        return ctx.book.strategy_exposure(strategy, include_manual=spec.include_manual_positions)

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["strategy_pct"] = m.pct(self._used(ctx, spec) + m.added_value)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [
            RuleSpec(
                f"{ID}.{strategy}",
                AllOf(ADDS, Compare("strategy", "==", strategy), Compare("strategy_pct", ">", cap)),
            )
            for strategy, cap in spec.max_per_strategy_pct
        ]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return dict(spec.max_per_strategy_pct).get(ctx.request.strategy_id or "", ZERO)

    def _cap(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return dict(spec.max_per_strategy_pct)[ctx.request.strategy_id or ""]

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        cap = self._cap(ctx, spec)
        return worded(
            "strategy {} exposure {} USD > max_per_strategy {} % ({} USD)",
            ctx.request.strategy_id or "",
            self._used(ctx, spec) + m.delta * m.price,
            cap,
            ctx.book.account.equity_usd * cap / HUNDRED,
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        budget = ctx.book.account.equity_usd * self._cap(ctx, spec) / HUNDRED
        return units(budget - self._used(ctx, spec), m.price)


CONTROL: PerStrategy = PerStrategy()
