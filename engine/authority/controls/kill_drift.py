"""Kill switch on drift: no new exposure while the account's drift flag is set (the
books disagree); only when `kill_switch.on_drift`."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import ADDS, Context, Fact, Limit, is_
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.kill_switch.drift"


class KillDrift(Limit):
    id = ID
    blocking = True
    fields: ClassVar = {"drift": "the account's drift flag"}
    shown_field = "drift"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        fact["drift"] = ctx.book.account.drift_flag

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        if not spec.kill_switch_on_drift:
            return []
        return [RuleSpec(ID, AllOf(ADDS, is_("drift")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return (
            "kill switch: the account's drift flag is set (books disagree); "
            "only reduce / close pass"
        )


CONTROL: KillDrift = KillDrift()
