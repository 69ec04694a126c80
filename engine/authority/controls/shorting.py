"""Region: no opening or increasing a short where the region does not allow it."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import ADDS, Context, Fact, Limit, is_
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.region.shorting"


class Shorting(Limit):
    id = ID
    blocking = True
    fields: ClassVar = {"opens_short": "the order opens or increases a short"}
    shown_field = "opens_short"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        request = ctx.request
        fact["opens_short"] = request.side == "short" and request.increasing

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        if spec.shorting_allowed:
            return []
        return [RuleSpec(ID, AllOf(ADDS, is_("opens_short")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return f"region {spec.region_code or '(unnamed)'} does not allow short selling"


CONTROL: Shorting = Shorting()
