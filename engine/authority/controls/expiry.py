"""GTD expiry: a good-till-date order whose `expire_at` is not after now has expired
before it was sent; it blocks outright (every action but a cancel). Time is the `now`
`can_execute` is given, never the wall clock.
"""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, is_
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.expiry"
CHECKED = tuple(action for action in ORDER_ACTIONS if action != "cancel")


class Expiry(Limit):
    id = ID
    blocking = True
    any_action = True
    records_pass = False
    fields: ClassVar = {"expired": "a gtd order whose expire_at is not after now"}
    shown_field = "expired"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        expire_at = ctx.request.expire_at
        fact["expired"] = (
            ctx.request.time_in_force == "gtd" and expire_at is not None and expire_at <= ctx.now
        )

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(action_in(CHECKED), is_("expired")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return (
            f"expired: time_in_force gtd with expire_at {render_value(ctx.request.expire_at)} "
            f"is not after now ({render_value(ctx.now)}); send it with a later expire_at, or "
            "as gtc / day"
        )


CONTROL: Expiry = Expiry()
