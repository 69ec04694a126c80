"""Instrument price: an order's limit price and trigger price are on the instrument's
`tick_size` (the snapshot's record, or the LimitPolicy's `instruments` section: the
stricter wins) and above 0 — except for futures and options, whose spreads and rolls
may trade at or below 0 (NautilusTrader allows them for spreads and commodities).

Blocks outright (a price cannot be made valid by a smaller order): every action but a
cancel, a modify's new price included. An order without a price (market) passes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, is_
from bastion.engine.authority.instrument_rules import SIGNED_PRICE_CLASSES, Rules, rules_of
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.instrument.price"
CHECKED = tuple(action for action in ORDER_ACTIONS if action != "cancel")


def _prices(ctx: Context) -> tuple[tuple[str, Decimal], ...]:
    request = ctx.request
    return tuple(
        (name, value)
        for name, value in (("price", request.price), ("trigger_price", request.trigger_price))
        if value is not None
    )


def problems(ctx: Context, rules: Rules) -> list[str]:
    """What is wrong with the order's prices, in words (empty: nothing)."""
    found: list[str] = []
    for name, value in _prices(ctx):
        if value <= 0 and rules.asset_class not in SIGNED_PRICE_CLASSES:
            kind = rules.asset_class or "an instrument with no record in the snapshot"
            found.append(
                f"{name} {render_value(value)} is not above 0 ({kind}: only futures and "
                "options may be priced at or below 0)"
            )
        tick = rules.tick_size
        if tick is not None and value % tick.value != 0:
            below = (value / tick.value).to_integral_value(rounding="ROUND_FLOOR") * tick.value
            found.append(
                f"{name} {render_value(value)} is not on tick_size {render_value(tick.value)} "
                f"({tick}): use {render_value(below)} or {render_value(below + tick.value)}"
            )
    return found


class InstrumentPrice(Limit):
    id = ID
    blocking = True
    any_action = True
    records_pass = False
    fields: ClassVar = {"bad_price": "the order's price or trigger is off tick or not above 0"}
    shown_field = "bad_price"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        request = ctx.request
        price, trigger = request.price, request.trigger_price
        if price is None and trigger is None:
            fact["bad_price"] = False
            return
        rules = rules_of(ctx, spec)
        if (
            rules.tick_size is None
            and (price is None or price > 0)
            and (trigger is None or trigger > 0)
        ):  # `problems` would find nothing: no tick to be off, nothing at or below 0
            fact["bad_price"] = False
            return
        fact["bad_price"] = bool(problems(ctx, rules))

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(action_in(CHECKED), is_("bad_price")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        return "; ".join(problems(ctx, rules_of(ctx, spec)))


CONTROL: InstrumentPrice = InstrumentPrice()
