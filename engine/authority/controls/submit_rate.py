"""Submit rate: at most COUNT orders per rolling window per account; every order but a
cancel or a modify (`modify_rate`) counts, and the one that would go past the count is
denied."""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "limit.submit_rate"


class SubmitRate(Limit):
    id = ID
    blocking = True
    any_action = True
    fields: ClassVar = {"submits": "orders approved in the submit-rate window"}
    shown_field = "submits"
    relation = "<"

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        fact["submits"] = ctx.submits

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        excess = AllOf(
            Compare("action", "!=", "cancel"),
            Compare("action", "!=", "modify"),  # counted by its own rate (modify_rate)
            Compare("submits", ">=", spec.submit_rate.count),
        )
        return [RuleSpec(ID, excess)]

    def configured_for(self, rule_ids: Collection[str], ctx: Context) -> bool:
        return ctx.request.action != "modify" and self.id in rule_ids

    def limit_value(self, spec: LimitSpec, ctx: Context) -> int:
        return spec.submit_rate.count

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return (
            f"{ctx.submits} orders in the last {shown(spec.submit_rate.window_s)} s ≥ "
            f"submit rate {spec.submit_rate.count}: this order is the excess"
        )


CONTROL: SubmitRate = SubmitRate()
