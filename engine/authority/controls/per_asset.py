"""Per asset: exposure to the symbol after the order is at most `max_per_asset_pct` of
equity (manual positions always count).

Above 100 % of equity only where the policy allows borrowing (`risk.borrowing`), and
then at most 100 × its `max_leverage`: a policy that says more without it is a lint
error (BST506), and the cap applied is never above that ceiling (fail closed, for a
policy built without the linter)."""

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
    shown_field = "asset_pct"
    relation = "≤"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        m = ctx.measures or measures_of(ctx, spec)
        fact["asset_pct"] = m.pct(m.exposure + m.added_value)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(ADDS, Compare("asset_pct", ">", cap_pct(spec))))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return cap_pct(spec)

    def _budget(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return ctx.book.account.equity_usd * cap_pct(spec) / HUNDRED

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "{} exposure {} USD > max_per_asset {} % ({} USD){}",
            ctx.request.symbol,
            m.exposure + m.delta * m.price,
            cap_pct(spec),
            self._budget(ctx, spec),
            _ceiling_note(spec),
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        m = ctx.measures or measures_of(ctx, spec)
        return units(self._budget(ctx, spec) - m.exposure, m.price)


def cap_pct(spec: LimitSpec) -> Decimal:
    """max_per_asset_pct, never above 100 (× max_leverage where borrowing is allowed)."""
    ceiling = HUNDRED * spec.max_leverage if spec.borrowing_allowed else HUNDRED
    return min(spec.max_per_asset_pct, ceiling)


def _ceiling_note(spec: LimitSpec) -> str:
    if spec.max_per_asset_pct <= cap_pct(spec):
        return ""
    if spec.borrowing_allowed:
        return f" (max_per_asset_pct {spec.max_per_asset_pct} is capped at 100 × max_leverage)"
    return f" (max_per_asset_pct {spec.max_per_asset_pct} is capped at 100: borrowing not allowed)"


CONTROL: PerAsset = PerAsset()
