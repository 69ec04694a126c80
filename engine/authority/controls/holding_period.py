"""Holding period: a position is not sold before `min_holding_days`."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import Context, Fact, Protection, days, is_
from bastion.engine.authority.request import REDUCING
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "holding_period"


class HoldingPeriod(Protection):
    id = ID
    label = "holding period"
    fields: ClassVar = {
        "has_entry": "the position's entry time is known",
        "held_days": "days since the position was entered",
    }

    def fill(self, fact: Fact, ctx: Context, spec: ProtectionSpec) -> None:
        fact["has_entry"] = ctx.entry_at is not None
        # Read only for a reduction.
        reducing = ctx.request.action in REDUCING
        fact["held_days"] = days(ctx.entry_at, ctx.now) if reducing else ZERO

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        if ID not in spec.enabled:
            return []
        too_young = AllOf(
            is_("reducing"), is_("has_entry"), Compare("held_days", "<", spec.min_holding_days)
        )
        return [RuleSpec(ID, too_young)]

    def detail(self, ctx: Context, spec: ProtectionSpec) -> str:
        action = ctx.request.action
        if action not in REDUCING:
            return f"{action} does not sell: holding period does not apply"
        if ctx.entry_at is None:
            return "entry time unknown: holding period does not apply"
        held = days(ctx.entry_at, ctx.now)
        relation = "<" if held < spec.min_holding_days else "≥"
        return (
            f"held {shown(held)} days {relation} the {shown(spec.min_holding_days)}-day "
            "minimum holding period"
        )


CONTROL: HoldingPeriod = HoldingPeriod()
