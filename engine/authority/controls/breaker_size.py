"""Breaker size cut: while a `reduce_size` breaker is tripped, orders that add exposure
in its subject may add only `size_factor` of the units they ask for.

Like the trading state, this control is set by the breakers, not by the LimitPolicy: it
applies to every order that adds exposure, with or without a LimitPolicy, and a
shadow-mode LimitPolicy does not weaken it (only an enforce-mode BreakerPolicy's trip
counts). It is not a rule of the rules engine: what it reads is the state's breaker
statuses (`State.breakers`, keyed "policy:breaker@scope:id", as the evaluation left them:
a tripped breaker, or one cooling down, is in force), looked up once per order that adds
exposure — nothing to do when no breaker is tripped.

Which orders a tripped breaker covers, by its subject:

- portfolio, system: every order;
- account: the orders of that account;
- strategy: the orders that name that strategy (`strategy_id`), in any account;
- symbol: the orders in that symbol, in any account;
- position: the orders in that position's account, symbol and side.

Each covering breaker is a size limit named "breaker.<id>": the order may add at most
factor × the units it adds. Several covering breakers: the strictest factor wins, not the
product. Breakers that trip together usually watch one event from several sides
(volatility, volume and both at once on one symbol); a product would cut an order more for
every overlapping breaker, a size no one set. The strictest factor is what some breaker's
owner chose, and it is how the size limits combine (the largest size all allow). As for
the other size limits, the cut is floored to the size increment, an order with nothing
left is denied, and a LimitPolicy with `on_breach: deny` denies instead of downsizing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bastion.engine.authority.controls.base import Context
from bastion.engine.authority.request import OrderRequest
from bastion.engine.decision import render_value, shown
from bastion.engine.policy.kinds.breakers import Breaker
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import ARMED, BreakerState

if TYPE_CHECKING:  # the compiled set compiles the controls' rules: imported for types only
    from bastion.engine.evaluation.compiled import CompiledPolicySet

ID_PREFIX = "breaker."  # a cut's check and blocking name: "breaker.volatility_spike"
ACTION = "reduce_size"
KIND = "BreakerPolicy"


@dataclass(frozen=True, slots=True)
class SizeCut:
    """A tripped reduce_size breaker that covers the order."""

    breaker: Breaker
    policy: str
    subject: str  # Subject.label(), e.g. "symbol:AAPL"
    tripped_at: datetime | None

    @property
    def factor(self) -> Decimal:
        return self.breaker.effective_size_factor


class BreakerSize:
    """The size cut of the tripped reduce_size breakers (see the module docstring)."""

    id = "breaker.reduce_size"
    label = "breaker size cut"

    def covering(
        self,
        policies: CompiledPolicySet,
        breakers: Mapping[str, BreakerState],
        snapshot: Snapshot,
        request: OrderRequest,
        account_id: str,
    ) -> tuple[SizeCut, ...]:
        """The tripped reduce_size breakers of enforce-mode policies that cover this
        order, in key order; none for an order that adds no exposure."""
        if not breakers or not request.increasing:
            return ()
        cuts = []
        for key, status in breakers.items():
            if status.status == ARMED:  # most entries: breakers that tripped once, re-armed
                continue
            name, _, rest = key.partition(":")
            breaker_id, _, subject = rest.partition("@")
            breaker = _reduce_size_breaker(policies, name, breaker_id)
            if breaker is not None and _covers(subject, snapshot, request, account_id):
                cuts.append((key, SizeCut(breaker, name, subject, status.tripped_at)))
        return tuple(cut for _, cut in sorted(cuts, key=_first))

    def name(self, cut: SizeCut) -> str:
        return ID_PREFIX + cut.breaker.id

    def allows(self, ctx: Context, cut: SizeCut) -> Decimal:
        """Units the order may add: the factor's share of those it asks for."""
        return _exact((ctx.target - ctx.current) * cut.factor)

    def detail(self, ctx: Context, cut: SizeCut) -> str:
        tripped = render_value(cut.tripped_at) if cut.tripped_at else "an unknown time"
        return (
            f"breaker {cut.breaker.id} ({cut.subject}) tripped at {tripped}: "
            f"{ACTION} × {render_value(cut.factor)} allows {shown(self.allows(ctx, cut))} of the "
            f"{shown(ctx.target - ctx.current)} units the order adds"
        )


def _first(pair: tuple[str, SizeCut]) -> str:
    return pair[0]


def _exact(units: Decimal) -> Decimal:
    """Without the trailing zeros a product brings (30 × 0.50 is 15, not 15.000), so that
    an approved size reads as the units a person would write."""
    if units == units.to_integral_value():
        return units.quantize(Decimal(1))
    return units.normalize()


def _reduce_size_breaker(policies: CompiledPolicySet, name: str, breaker_id: str) -> Breaker | None:
    """The breaker, when it is an enabled reduce_size breaker of an enforce-mode policy in
    this set (a state entry of a removed policy or breaker restricts nothing, as the
    evaluation would no longer restrict the account for it)."""
    compiled = policies.policies.get((KIND, name))
    if compiled is None or compiled.policy.mode != "enforce":
        return None
    for breaker in compiled.policy.spec.breakers:
        if breaker.id == breaker_id:
            return breaker if breaker.action == ACTION and breaker.enabled else None
    return None


def _covers(subject: str, snapshot: Snapshot, request: OrderRequest, account_id: str) -> bool:
    scope, _, subject_id = subject.partition(":")
    if scope in ("portfolio", "system"):
        return True
    if scope == "account":
        return subject_id == account_id
    if scope == "strategy":
        return bool(subject_id) and subject_id == (request.strategy_id or "")
    if scope == "symbol":
        return subject_id == request.symbol
    if scope == "position":
        return any(
            position.id == subject_id
            and position.account_id == account_id
            and position.symbol == request.symbol
            and position.side == request.side
            for position in snapshot.positions
        )
    return False


CONTROL: BreakerSize = BreakerSize()
