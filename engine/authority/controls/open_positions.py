"""Open positions: an open that would go past `max_open_positions` is denied."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.max_open_positions"


class OpenPositions(Limit):
    id = ID
    blocking = True
    fields: ClassVar = {"open_positions": "symbols with a position now"}
    shown_field = "open_positions"
    relation = "<"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        include_manual = spec.include_manual_positions if spec else True
        fact["open_positions"] = ctx.book.open_positions(include_manual=include_manual)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        full = AllOf(
            Compare("action", "==", "open"),
            Compare("open_positions", ">=", spec.max_open_positions),
        )
        return [RuleSpec(ID, full)]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> int:
        return spec.max_open_positions

    def passed(self, ctx: Context, spec: LimitSpec, fact: Fact) -> str:
        if ctx.request.action != "open":
            value = fact["open_positions"] if "open_positions" in fact else self._value(ctx, spec)
            return f"{value} open positions; only an open adds one"
        return super().passed(ctx, spec, fact)

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        count = ctx.book.open_positions(include_manual=spec.include_manual_positions)
        return f"{count} open positions ≥ max_open_positions {spec.max_open_positions}"


CONTROL: OpenPositions = OpenPositions()
