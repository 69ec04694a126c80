"""Kill switch on drawdown: no new exposure once the account's daily drawdown reaches
`max_daily_drawdown_pct` (trips *at* the value); reducing and closing still pass."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import ADDS, Context, Fact, Limit
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.kill_switch.drawdown"


class KillDrawdown(Limit):
    id = ID
    blocking = True
    fields: ClassVar = {"drawdown_pct": "daily drawdown of the account"}
    shown_field = "drawdown_pct"
    relation = "<"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        fact["drawdown_pct"] = ctx.book.drawdown_pct

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        tripped = Compare("drawdown_pct", ">=", spec.max_daily_drawdown_pct)
        return [RuleSpec(ID, AllOf(ADDS, tripped))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return spec.max_daily_drawdown_pct

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return (
            f"kill switch: daily drawdown {shown(ctx.book.drawdown_pct)} % ≥ "
            f"{shown(spec.max_daily_drawdown_pct)} %; only reduce / close pass"
        )


CONTROL: KillDrawdown = KillDrawdown()
