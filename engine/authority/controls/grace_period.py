"""Grace period: a position whose score fell below the floor is not sold for
`duration_days` (the score may recover)."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import Context, Fact, Protection, days, is_
from bastion.engine.authority.request import REDUCING
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "grace_period"


class GracePeriod(Protection):
    id = ID
    label = "grace period"
    fields: ClassVar = {
        "has_score": "the request gives current_score",
        "score": "current_score (0 when not given)",
        "grace_days": "days the score has been below the grace floor",
    }

    def fill(self, fact: Fact, ctx: Context, spec: ProtectionSpec) -> None:
        score = ctx.request.current_score
        fact["has_score"] = score is not None
        fact["score"] = score if score is not None else ZERO
        # Read only for a reduction.
        reducing = ctx.request.action in REDUCING
        fact["grace_days"] = days(ctx.grace_since, ctx.now) if reducing else ZERO

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        if ID not in spec.enabled:
            return []
        in_grace = AllOf(
            is_("reducing"),
            is_("has_score"),
            Compare("score", "<", spec.grace_min_score),
            Compare("grace_days", "<", spec.grace_duration_days),
        )
        return [RuleSpec(ID, in_grace)]

    def detail(self, ctx: Context, spec: ProtectionSpec) -> str:
        request = ctx.request
        action = request.action
        if action not in REDUCING:
            return f"{action} does not sell: grace period does not apply"
        score = request.current_score
        if score is None:
            return "no current_score given: grace period does not apply"
        if score >= spec.grace_min_score:
            return f"score {shown(score)} ≥ floor {shown(spec.grace_min_score)}"
        held = days(ctx.grace_since, ctx.now)
        if held >= spec.grace_duration_days:
            return (
                f"score {shown(score)} < floor {shown(spec.grace_min_score)} for "
                f"{shown(held)} days: the {shown(spec.grace_duration_days)}-day grace is over"
            )
        return (
            f"score {shown(score)} < floor {shown(spec.grace_min_score)} for only "
            f"{shown(held)} of {shown(spec.grace_duration_days)} grace days: {action} is held"
        )


CONTROL: GracePeriod = GracePeriod()
