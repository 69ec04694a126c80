"""Instrument lot size: an order's quantity is a whole multiple of the instrument's
`lot_size` (the snapshot's record, or the LimitPolicy's `instruments` section: the
stricter wins, `authority.instrument_rules`).

Checked on the quantity the order trades, as the venue checks it: an open or increase
of 1050 with lot 100 is downsized to 1000 (rounded DOWN), or denied under
`on_breach: deny`; a partial decrease is cut the same way (it sells less than asked,
never more); a close, and a decrease to 0, sell the whole position and always pass. A
quantity below one lot leaves nothing to send: denied. The walk floors every downsized
order to the lot too (`instrument_rules.order_increment`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Limit, action_in, floor_to, is_
from bastion.engine.authority.instrument_rules import order_quantity, rules_of
from bastion.engine.decision import render_value
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "limit.instrument.lot_size"
CHECKED = ("open", "increase", "decrease")


class InstrumentLot(Limit):
    id = ID
    any_action = True  # a partial decrease must fit the lot too
    records_pass = False  # nothing to say when the quantity fits
    fields: ClassVar = {"off_lot": "the order's quantity is not a multiple of the lot size"}
    shown_field = "off_lot"
    relation = "="

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        lot = rules_of(ctx, spec).lot_size
        if lot is None:  # no lot size: nothing to measure
            fact["off_lot"] = False
            return
        quantity = order_quantity(ctx.request.action, ctx.current, ctx.target)
        fact["off_lot"] = quantity > 0 and quantity % lot.value != 0

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        return [RuleSpec(ID, AllOf(action_in(CHECKED), is_("off_lot")))]

    def limit_value(self, spec: LimitSpec, ctx: Context) -> bool:
        return False

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        lot = rules_of(ctx, spec).lot_size
        assert lot is not None, "fired only with a lot size"
        quantity = order_quantity(ctx.request.action, ctx.current, ctx.target)
        what = "a decrease" if ctx.request.action == "decrease" else "an order"
        # Exact values: 1050.5 must not read as 1050.50 ≈ a multiple.
        return (
            f"lot_size {render_value(lot.value)} ({lot}): {what} of {render_value(quantity)} "
            f"units is not a multiple of it; the nearest below is "
            f"{render_value(floor_to(quantity, lot.value))} units"
            + ("; a close sells the whole position" if what == "a decrease" else "")
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        lot = rules_of(ctx, spec).lot_size
        quantity = order_quantity(ctx.request.action, ctx.current, ctx.target)
        return floor_to(quantity, lot.value) if lot is not None else quantity


CONTROL: InstrumentLot = InstrumentLot()
