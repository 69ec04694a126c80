"""Whipsaw protection: no re-entry after `max_round_trips` open→close cycles within
`window_days` (the round trips are counted from the authority's memory)."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Protection
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "whipsaw_protection"


class WhipsawProtection(Protection):
    id = ID
    label = "whipsaw protection"
    fields: ClassVar = {"round_trips": "open→close round trips in the whipsaw window"}

    def fill(self, fact: Fact, ctx: Context, spec: ProtectionSpec) -> None:
        fact["round_trips"] = ctx.round_trips

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        if ID not in spec.enabled:
            return []
        cycling = AllOf(
            Compare("action", "==", "open"),
            Compare("round_trips", ">=", spec.whipsaw_max_round_trips),
        )
        return [RuleSpec(ID, cycling)]

    def detail(self, ctx: Context, spec: ProtectionSpec) -> str:
        action = ctx.request.action
        if action != "open":
            return f"{action} is not a re-entry: whipsaw protection does not apply"
        relation = "≥" if ctx.round_trips >= spec.whipsaw_max_round_trips else "<"
        return (
            f"{ctx.round_trips} round trip(s) in {shown(spec.whipsaw_window_days)} days "
            f"{relation} {spec.whipsaw_max_round_trips} allowed"
        )


CONTROL: WhipsawProtection = WhipsawProtection()
