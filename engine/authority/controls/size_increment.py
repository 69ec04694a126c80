"""Size increment: a venue accepts only order quantities that are whole multiples of
the request's `size_increment` (its lot / step size).

Like a venue, the check is on the order's quantity (target − current), not on the
position: an open or increase of 1.111111111 with increment 1 becomes an order for 1
(downsized, or denied under `on_breach: deny`); a decrease is cut the same way (it sells
less than asked, never more); a close, and a decrease to 0, sell the whole position and
are always valid. A quantity below one increment leaves nothing to send: denied.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, floor_to, is_
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.size_increment"
_CHECKED = ("open", "increase", "decrease")


class SizeIncrement(Limit):
    id = ID
    any_action = True  # a decrease must fit the increment too
    records_pass = False  # nothing to say when the quantity fits
    fields: ClassVar = {
        "off_increment": "the order's quantity is not a multiple of its size_increment"
    }
    shown_field = "off_increment"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        # `_quantity`, inline: every open, increase and decrease passes here.
        action = ctx.request.action
        if action in ("open", "increase"):
            quantity = ctx.target - ctx.current
        elif action == "decrease" and ctx.target > 0:
            quantity = ctx.current - ctx.target
        else:
            fact["off_increment"] = False
            return
        fact["off_increment"] = quantity > 0 and quantity % ctx.request.size_increment != 0

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(action_in(_CHECKED), is_("off_increment")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        increment = ctx.request.size_increment
        what = "a decrease" if ctx.request.action == "decrease" else "an order"
        # Exact values: rounded for display, 1.111111111 would read as a multiple of 0.01.
        text = (
            f"size_increment {render_value(increment)} ({what} of "
            f"{render_value(_quantity(ctx))} units is not a multiple of it"
        )
        if ctx.request.action == "decrease":
            text += "; a close sells the whole position"
        return text + ")"

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        return floor_to(_quantity(ctx), ctx.request.size_increment)


def _quantity(ctx: Context) -> Decimal:
    """Units the order trades (0 for a close or a decrease to nothing: always valid)."""
    action = ctx.request.action
    if action == "decrease":
        return ctx.current - ctx.target if ctx.target > 0 else ZERO
    if action in ("open", "increase"):
        return ctx.target - ctx.current
    return ZERO


CONTROL: SizeIncrement = SizeIncrement()
