"""Reduce-only: an order flagged `reduce_only` may only make the position smaller.

Denied (blocks outright) when it would add exposure (an open or increase), or when it
trades more units than are held on its side — the request's `current_size` says more
than the snapshot (and the orders approved since it) hold, so the venue would flip or
open the position. The reason says how large it may be. Not downsized: a reduce-only
order that overshoots is a strategy's wrong belief about its position, and resizing it
silently would hide that (NautilusTrader denies it too).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, is_
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.reduce_only"
CHECKED = ("open", "increase", "decrease", "close")


def held(ctx: Context) -> Decimal:
    """Units held on the order's side (the snapshot plus the orders approved since)."""
    symbol = ctx.book.symbols.get(ctx.request.symbol)
    if symbol is None:
        return ZERO
    return symbol.short_units if ctx.request.side == "short" else symbol.long_units


def _quantity(ctx: Context) -> Decimal:
    return ctx.current - ctx.target  # a close: everything the request says is held


class ReduceOnly(Limit):
    id = ID
    blocking = True
    any_action = True
    records_pass = False
    fields: ClassVar = {"reduce_only_breached": "a reduce-only order adds or overshoots"}
    shown_field = "reduce_only_breached"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        request = ctx.request
        if not request.reduce_only:
            fact["reduce_only_breached"] = False
        elif request.increasing:
            fact["reduce_only_breached"] = True
        else:
            fact["reduce_only_breached"] = _quantity(ctx) > held(ctx)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(action_in(CHECKED), is_("reduce_only_breached")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        request = ctx.request
        if request.increasing:
            return (
                f"reduce_only: {request.action} adds exposure; a reduce-only order may only "
                "close or decrease (drop reduce_only, or send a close / decrease)"
            )
        most = held(ctx)
        if most <= 0:
            return (
                f"reduce_only: {request.action} of {render_value(_quantity(ctx))} units, but no "
                f"{request.side} units of {request.symbol} are held: nothing to reduce"
            )
        return (
            f"reduce_only: {request.action} of {render_value(_quantity(ctx))} units is larger "
            f"than the {render_value(most)} {request.side} units held; it may be at most "
            f"{render_value(most)} units (a close, or current_size {render_value(most)})"
        )


CONTROL: ReduceOnly = ReduceOnly()
