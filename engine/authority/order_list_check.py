"""check_list(policies, order_list, snapshot, state, now) -> ListDecision. Pure.

Every leg is checked by `can_execute`, and every leg must pass: when one is denied the
whole list is denied (NautilusTrader denies a SubmitOrderList as a whole), each leg
keeping its own decision and reasons. How the legs see each other:

- `none` and `oto`: in order, each against the state the previous leg left — an approved
  leg counts as pending exposure and as a submit for the legs after it, so two buys that
  fit alone but not together are caught (the list's cumulative notional);
- `bracket`: the entry first; the stop_loss and take_profit are checked against the
  position as it would be after the entry (their current_size is the entry's approved
  target). A child may not trade more units than the entry adds (it would reverse the
  position); when the entry is downsized the children are downsized to match, and say
  so; a stop on the wrong side of the entry price (below it for a short, above it for a
  long), or a take-profit on the wrong side, is denied when the prices are given. The
  children reduce: they add no pending exposure;
- `oco`: alternatives, at most one fills: each leg against the state before the list;
  the state kept is the one of the leg adding the most exposure.

The state returned remembers the list when it is approved, or, with `sent`, whatever the
answer (it was sent); a denied question leaves the state as it was: nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.engine.authority import pending as pending_exposure
from bastion.engine.authority.answer import APPROVED, DENIED, DOWNSIZED, VERB, ExecutionDecision
from bastion.engine.authority.book import ZERO, book_of
from bastion.engine.authority.check import can_execute, resolve_account
from bastion.engine.authority.order_list import OrderLeg, OrderList
from bastion.engine.authority.request import resized
from bastion.engine.authority.slotted import constructor
from bastion.engine.decision import Check, Decision, Subject, render_value, shown
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

SIZE = "bracket.size"  # a child trading more than the entry adds
STOP_SIDE = "bracket.stop_loss_side"
PROFIT_SIDE = "bracket.take_profit_side"
# Protections that judge when a sale is asked: a bracket's exits are placed with the
# entry and fill later, protecting it; they are not held back (the leg says so).
EXIT_TIMING = frozenset({"holding_period", "grace_period"})


@dataclass(frozen=True, slots=True)
class LegDecision:
    """One leg's answer: its own check, plus what the list rules say about it."""

    index: int
    role: str
    result: ExecutionDecision
    refused: tuple[tuple[str, str], ...] = ()  # (list rule, why): the leg is denied by it
    notes: tuple[str, ...] = ()  # what the list did to the leg (downsized with the entry)
    waived: tuple[str, ...] = ()  # exit-timing blocks a bracket's exit is not held to

    @property
    def outcome(self) -> str:
        if self.refused:
            return DENIED
        outcome = APPROVED if self.waived else self.result.outcome
        return DOWNSIZED if self.notes and outcome == APPROVED else outcome

    @property
    def approved(self) -> bool:
        return self.outcome != DENIED

    @property
    def approved_size(self) -> Decimal | None:
        if not self.approved:
            return None
        if self.waived:
            return self.result.request.target_size or ZERO
        return self.result.approved_size

    @property
    def blocking(self) -> tuple[str, ...]:
        kept = tuple(name for name in self.result.blocking if name not in self.waived)
        return (*kept, *(name for name, _ in self.refused))

    @property
    def reasons(self) -> tuple[str, ...]:
        waived: tuple[str, ...] = ()
        if self.waived:
            waived = (
                f"{' and '.join(self.waived)} not applied: a bracket's {self.role} is placed "
                "with the entry and fills later (it protects the position it closes)",
            )
        return (*(why for _, why in self.refused), *self.notes, *waived, *self.result.reasons)

    def to_dict(self) -> dict[str, Any]:
        answer = self.result.to_dict()
        answer.update(
            index=self.index,
            role=self.role,
            approved=self.approved,
            outcome=self.outcome,
            approved_size=None if self.approved_size is None else render_value(self.approved_size),
            blocking=list(self.blocking),
            reasons=list(self.reasons),
        )
        return {"index": self.index, "role": self.role, **answer}


@dataclass(frozen=True, slots=True)
class ListDecision:
    """The answer to an order list: one outcome for the list, one decision per leg."""

    order_list: OrderList
    outcome: str  # approved | downsized | denied (the list as a whole)
    legs: tuple[LegDecision, ...]
    state: State
    now: datetime
    policy_version: str
    latency_us: int = 0

    @property
    def approved(self) -> bool:
        return self.outcome != DENIED

    @property
    def denied_legs(self) -> tuple[LegDecision, ...]:
        return tuple(leg for leg in self.legs if not leg.approved)

    @property
    def blocking(self) -> tuple[str, ...]:
        """Each denied leg's blocks, as `orders[i]:name`."""
        return tuple(
            f"orders[{leg.index}]:{name}" for leg in self.denied_legs for name in leg.blocking
        )

    @property
    def reasons(self) -> tuple[str, ...]:
        listed = self.order_list
        what = f"{listed.contingency} {listed.id}"
        if not self.approved:
            return tuple(
                f"{what} denied as a whole: orders[{leg.index}] {leg.role} is denied "
                f"({'; '.join(leg.reasons[:2])}); send none of its orders"
                for leg in self.denied_legs
            )
        count = len(self.legs)
        if self.outcome == DOWNSIZED:
            cut = sum(1 for leg in self.legs if leg.outcome == DOWNSIZED)
            return (
                f"{what}: all {count} orders pass, {cut} downsized: "
                "send them at the approved sizes",
            )
        return (f"{what}: all {count} orders pass",)

    @property
    def decision(self) -> Decision:
        """The list's audit record: one check per leg, naming its decision."""
        listed, first = self.order_list, self.legs[0]
        symbols = {leg.result.request.symbol for leg in self.legs}
        trace = tuple(
            Check(
                f"orders[{leg.index}] {leg.role}",
                leg.approved,
                f"{leg.outcome}: {leg.result.request.action} {leg.result.request.symbol} "
                f"(decision {leg.result.decision.id})",
            )
            for leg in self.legs
        )
        legs = [
            {
                "index": leg.index,
                "role": leg.role,
                "outcome": leg.outcome,
                "decision_id": leg.result.decision.id,
            }
            for leg in self.legs
        ]
        decision = first.result.decision
        return Decision(
            time=self.now,
            kind="check",
            policy=decision.policy,
            policy_version=self.policy_version,
            rule=self.blocking[0] if self.blocking else self.outcome,
            subject=Subject(
                "order_list",
                listed.id,
                account_id=decision.subject.account_id,
                symbol=first.result.request.symbol if len(symbols) == 1 else None,
                strategy_id=first.result.request.strategy_id,
            ),
            outcome=self.outcome,
            actions=(VERB[self.outcome],),
            reasons=self.reasons,
            trace=trace,
            latency_us=self.latency_us,
            details=(
                ("order_list", listed.to_dict()),
                ("contingency", listed.contingency),
                ("legs", legs),
                ("blocking", list(self.blocking)),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_list": self.order_list.id,
            "contingency": self.order_list.contingency,
            "approved": self.approved,
            "outcome": self.outcome,
            "blocking": list(self.blocking),
            "reasons": list(self.reasons),
            "legs": [leg.to_dict() for leg in self.legs],
            "decision": self.decision.to_dict(),
        }


LegCheck = Callable[[Any, State], ExecutionDecision]


# LegDecision(...) and ListDecision(...) with every field, built for less
# (authority/slotted.py): a bracket makes four per check.
_leg_decision = constructor(LegDecision)
_list_decision = constructor(ListDecision)


def check_list(
    policies: CompiledPolicySet,
    order_list: OrderList,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    *,
    clock_ns: Callable[[], int] | None = None,
    sent: bool = False,
) -> ListDecision:
    """May this list be sent? One decision per leg, one for the list. Never raises (a
    leg whose check fails is denied by `can_execute`, and the list with it)."""
    started = clock_ns() if clock_ns is not None else 0

    def asked(request: Any, before: State) -> ExecutionDecision:  # the usual question
        return can_execute(policies, request, snapshot, before, now)

    def timed(request: Any, before: State) -> ExecutionDecision:
        return can_execute(policies, request, snapshot, before, now, clock_ns=clock_ns, sent=sent)

    check = asked if clock_ns is None and not sent else timed

    if order_list.contingency == "bracket":
        legs, after = _bracket(order_list, check, snapshot, state, now, policies)
    elif order_list.contingency == "oco":
        legs, after = _alternatives(order_list, check, state)
    else:
        legs, after = _chained(order_list, check, state)
    outcome = APPROVED
    for leg in legs:
        said = leg.outcome
        if said == DENIED:
            outcome = DENIED
            break
        if said == DOWNSIZED:
            outcome = DOWNSIZED
    denied = outcome == DENIED
    kept = after if (sent or not denied) else state
    latency = (clock_ns() - started) // 1000 if clock_ns is not None else 0
    return _list_decision(order_list, outcome, tuple(legs), kept, now, policies.version, latency)


def _chained(
    order_list: OrderList, check: LegCheck, state: State
) -> tuple[list[LegDecision], State]:
    legs, current = [], state
    for index, leg in enumerate(order_list.legs):
        result = check(leg.request, current)
        legs.append(LegDecision(index, leg.role, result))
        current = result.state
    return legs, current


def _alternatives(
    order_list: OrderList, check: LegCheck, state: State
) -> tuple[list[LegDecision], State]:
    """OCO: each leg from the same state; the one adding the most exposure is kept."""
    legs = [
        LegDecision(index, leg.role, check(leg.request, state))
        for index, leg in enumerate(order_list.legs)
    ]
    kept = max((leg.result.state for leg in legs), key=_pending_value)
    return legs, kept


def _pending_value(state: State) -> Decimal:
    pending = state.authority.pending
    return sum((account.value_usd for account in pending.accounts.values()), ZERO)


def _bracket(
    order_list: OrderList,
    check: LegCheck,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    policies: CompiledPolicySet,
) -> tuple[list[LegDecision], State]:
    entry_leg = order_list.legs[0]
    entry = entry_leg.request
    first = check(entry, state)
    held = first.held_size  # as the entry's check counted it
    if held is None:  # the entry's check failed: count it again (it is denied for it)
        try:
            held = _held(entry, snapshot, state, now, policies)
        except Exception:  # the entry's own check names the problem
            held = ZERO
    legs = [_leg_decision(0, entry_leg.role, first, (), (), ())]
    asked = first.requested_size
    after = first.approved_size if first.approved_size is not None else asked
    current = first.state
    if asked is None or after is None:  # the entry has no size (denied): children as written
        for index, leg in enumerate(order_list.legs[1:], start=1):
            legs.append(LegDecision(index, leg.role, check(leg.request, current)))
        return legs, current
    entry_price = _entry_price(entry, snapshot)
    # The same for every child: what the entry adds as asked, and as approved.
    entry_units, room = asked - held, after - held
    for index, leg in enumerate(order_list.legs[1:], start=1):
        decision = _child(
            index, leg, entry.side, asked, after, entry_units, room, entry_price, check, current
        )
        legs.append(decision)
        current = decision.result.state
    return legs, current


def _child(
    index: int,
    leg: OrderLeg,
    side: str,
    asked: Decimal,
    after: Decimal,
    entry_units: Decimal,
    room: Decimal,
    entry_price: Decimal | None,
    check: LegCheck,
    before: State,
) -> LegDecision:
    """One child, as a close or decrease of the position after the entry: `entry_units`
    = asked - held (what the entry adds as asked), `room` = after - held (as approved)."""
    request = leg.request
    written = request.target_size if request.action == "decrease" else None
    units_asked = asked - written if written is not None else asked - ZERO
    refused: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    units = units_asked
    if units_asked > entry_units:
        trade = "sells" if side == "long" else "buys back"
        refused = (
            (
                SIZE,
                f"{leg.role} {trade} {shown(units_asked)} units, more than the "
                f"{shown(entry_units)} the entry adds: it would reverse the position",
            ),
        )
    elif units_asked > room:
        trade = "sells" if side == "long" else "buys back"
        units = room
        notes = (
            f"downsized with the entry: {leg.role} {trade} {shown(units)} units, "
            f"not {shown(units_asked)}",
        )
    target = after - units
    closes = target == 0
    child = resized(
        request,
        action="close" if closes else "decrease",
        current_size=after,
        target_size=None if closes else target,
    )
    if request.trigger_price is not None or request.price is not None:
        refused += _side_problems(leg.role, request, side, entry_price)
    result = check(child, before)
    blocks = result.blocking
    waived = tuple(sorted(set(blocks))) if blocks and EXIT_TIMING.issuperset(blocks) else ()
    return _leg_decision(index, leg.role, result, refused, notes, waived)


def _side_problems(
    role: str, request: Any, side: str, entry_price: Decimal | None
) -> tuple[tuple[str, str], ...]:
    """A stop below (long) / above (short) the entry, a take-profit the other way."""
    price = request.trigger_price if request.trigger_price is not None else request.price
    if price is None or entry_price is None:
        return ()
    below = price < entry_price
    above = price > entry_price
    if role == "stop_loss" and (above if side == "long" else below):
        where = "above" if side == "long" else "below"
        return (
            (
                STOP_SIDE,
                f"stop_loss at {render_value(price)} is {where} the entry price "
                f"{render_value(entry_price)} of a {side} bracket: it would fill at once",
            ),
        )
    if role == "take_profit" and (below if side == "long" else above):
        where = "below" if side == "long" else "above"
        return (
            (
                PROFIT_SIDE,
                f"take_profit at {render_value(price)} is {where} the entry price "
                f"{render_value(entry_price)} of a {side} bracket: it would take a loss",
            ),
        )
    return ()


def _entry_price(entry: Any, snapshot: Snapshot) -> Decimal | None:
    """The entry's limit price, its stop trigger, or (a market entry) the snapshot's."""
    for price in (entry.price, entry.trigger_price):
        if price is not None:
            return Decimal(price)
    market = snapshot.market.get(entry.symbol)
    return market.price_usd if market is not None else None


def _held(
    request: Any, snapshot: Snapshot, state: State, now: datetime, policies: CompiledPolicySet
) -> Decimal:
    """The units the entry starts from, as its check counts them (check._context)."""
    if request.current_size is not None:
        return Decimal(request.current_size)
    try:
        account_id = resolve_account(snapshot, request.account_id)
    except LookupError:
        return ZERO  # the entry is denied for it; the children are checked as written
    book = book_of(snapshot).accounts[account_id]
    governing = policies.governing_order_rules(
        book.account.type, request.symbol, request.strategy_id
    )
    limits = governing.limits.spec if governing.limits else None
    book = pending_exposure.applied(book, state.authority.pending, snapshot, now, limits)
    symbol = book.symbols.get(request.symbol)
    if symbol is None:
        return ZERO
    return Decimal(symbol.short_units if request.side == "short" else symbol.long_units)
