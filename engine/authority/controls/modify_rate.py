"""Modify rate: at most COUNT modifications (action modify) per rolling window per
account, counted apart from the submit rate (Nautilus: max_order_modify_rate, 100/1s by
default); the modify that would go past the count is denied."""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.modify_rate"


class ModifyRate(Limit):
    id = ID
    blocking = True
    any_action = True
    fields: ClassVar = {"modifies": "modifications approved in the modify-rate window"}
    shown_field = "modifies"
    relation = "<"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        fact["modifies"] = ctx.modifies

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        excess = AllOf(
            Compare("action", "==", "modify"), Compare("modifies", ">=", spec.modify_rate.count)
        )
        return [RuleSpec(ID, excess)]

    def configured_for(self, rule_ids: Collection[str], ctx: Context) -> bool:
        return ctx.request.action == "modify" and self.id in rule_ids

    def limit_value(self, spec: LimitSpec, ctx: Context) -> int:
        return spec.modify_rate.count

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return (
            f"{ctx.modifies} modifications in the last {shown(spec.modify_rate.window_s)} s ≥ "
            f"modify rate {spec.modify_rate.count}: this modify is the excess"
        )


CONTROL: ModifyRate = ModifyRate()
