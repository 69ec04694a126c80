"""can_execute(policies, request, snapshot, state, now) -> ExecutionDecision. Pure.

One decision authority for every order:

1. Protections, in the ProtectionPolicy's `hierarchy`. A core-asset-immunity block is
   final. A block by grace period, holding period or whipsaw protection is bypassed
   when a regime override is available (regime severity ≥ min_severity, the
   protection in may_bypass, the cooldown since the last override on this
   account/symbol passed) — and the override is recorded with its reason.
2. Limits, from the LimitPolicy: the trading state (HALTED: cancels only; REDUCING:
   nothing that adds exposure), the kill switch (daily drawdown, drift), region
   (shorting, margin), liquidity, open positions and the submit rate block outright;
   risk per trade, portfolio risk, per-asset, per-strategy, per-sector, per-asset-class,
   order notional, position-per-symbol, cash and size-increment limits shrink the order
   to the largest size that meets them all (or deny it, under `on_breach: deny`), or
   block it naming every one it breaks when nothing is left.

Each protection and limit is one module under `controls/` (its fact fields, its rules,
what it allows, its wording); the rules engine decides every comparison (`rules`).
This module builds the request's context and fact and asks the rules engine; `walk`
walks the controls in order, does the sizing arithmetic and words the answer
(`answer.ExecutionDecision`); `memory` reads and updates what the authority remembers.

Nothing here raises: any exception yields a denial with blocking system "error".
Time comes in as `now`; timings are measured only with an injected `clock_ns`, so by
default the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.engine.authority import controls, instrument_rules
from bastion.engine.authority import memory as memory_of
from bastion.engine.authority import modify as modify_of
from bastion.engine.authority import pending as pending_exposure
from bastion.engine.authority.answer import APPROVED, DENIED, DOWNSIZED, ExecutionDecision, Fixed
from bastion.engine.authority.book import HUNDRED, ZERO, AccountBook, book_of
from bastion.engine.authority.controls.base import NEVER_S, Context, floor_to, measures_of, seconds
from bastion.engine.authority.request import INCREASING, REDUCING, OrderRequest
from bastion.engine.authority.walk import Clock, Walk
from bastion.engine.decision import Check, Decision, Subject
from bastion.engine.evaluation.compiled import AuthorityRules, CompiledPolicySet
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

__all__ = [
    "APPROVED",
    "DENIED",
    "DOWNSIZED",
    "NEVER_S",
    "ExecutionDecision",
    "can_execute",
    "resolve_account",
]


_NO_CLOCK = Clock(None)  # stateless without a clock: shared
_NO_SUBMIT = frozenset({"cancel", "modify"})  # not counted by the submit rate


def can_execute(
    policies: CompiledPolicySet,
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    *,
    clock_ns: Callable[[], int] | None = None,
    sent: bool = False,
    explain: bool = False,
) -> ExecutionDecision:
    """May this order be sent? Approve, downsize or deny, with every reason. Never raises.

    The state returned remembers the order (its submit, open / close, override) when it
    is approved — a caller that sends what is approved — or, with `sent`, whatever the
    answer: the order was sent (reported after the fact), so it counts. `explain`: the
    caller will read the decision's record (the service answers and audits it), so the
    trace is recorded as the checks run rather than replayed when first read."""
    clock = Clock(clock_ns) if clock_ns is not None else _NO_CLOCK
    started = clock.last
    try:
        result = _decide(policies, request, snapshot, state, now, clock, sent, explain)
    except Exception as error:  # fail safe: an error is a denial, never an approval
        result = _error(policies, request, state, now, error)
    if clock_ns is not None:
        result = replace(result, latency_us=(clock_ns() - started) // 1000)
    return result


def _decide(
    policies: CompiledPolicySet,
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    clock: Clock,
    sent: bool = False,
    explain: bool = False,
) -> ExecutionDecision:
    books = book_of(snapshot).accounts
    named = request.account_id
    book = books.get(named) if named is not None else None
    account_id = named if book is not None and named is not None else ""
    if book is None:  # no account named, or an unknown one: the rule and its errors
        account_id = resolve_account(snapshot, named)
        book = books[account_id]
    governing = policies.governing_order_rules(
        book.account.type, request.symbol, request.strategy_id
    )
    protection = governing.protection.spec if governing.protection else None
    limits = governing.limits.spec if governing.limits else None
    # Orders approved since the snapshot count as held (authority/pending.py).
    book = pending_exposure.applied(book, state.authority.pending, snapshot, now, limits)
    if request.action == "modify":  # adds units or not: measured against the book read
        request = modify_of.with_current(request, book)
    ctx = _context(request, snapshot, state, now, account_id, book, governing)
    fact = _fact(ctx, governing, protection, limits)
    # Without a clock nothing is timed, so the trace is not recorded now: the audit
    # record replays the same walk (same inputs, same result) when it is first read —
    # unless the caller will read it anyway (`explain`): then the one walk records.
    record = explain or clock.clock is not None
    facts_lap = clock.lap() if record else None
    fired = governing.rules.match_one(fact)
    # The tripped reduce_size breakers covering the order (controls/breaker_size.py).
    cuts = controls.BREAKER_SIZE.covering(policies, state.breakers, snapshot, request, account_id)
    walk = Walk(ctx, fired, governing, snapshot, clock, fact, record, state.locks, cuts)
    if record:
        walk.start(facts_lap, clock.lap())
    walk.run(protection, limits)
    result = walk.finish(policies, state, now, limits, protection, sent=sent)
    return pending_exposure.recorded(result, state, book, snapshot, now, limits, sent=sent)


def resolve_account(snapshot: Snapshot, account_id: str | None) -> str:
    """The account an order or plan is for: the one named, or the snapshot's only one."""
    known = [account.id for account in snapshot.accounts]
    if account_id is None:
        if len(known) != 1:
            raise LookupError(
                f"account_id: required when the snapshot has {len(known)} accounts "
                f"({', '.join(known) or 'none'})"
            )
        return known[0]
    if account_id not in known:
        raise LookupError(
            f"account_id: {account_id!r} is not in the snapshot (accounts: {', '.join(known)})"
        )
    return account_id


def _context(
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    account_id: str,
    book: AccountBook,
    governing: AuthorityRules,
) -> Context:
    protection = governing.protection.spec if governing.protection else None
    limits = governing.limits.spec if governing.limits else None
    symbol = request.symbol
    key = f"{account_id}/{symbol}"
    market = snapshot.market.get(symbol)
    held = book.symbols.get(symbol)
    if request.current_size is not None:
        current = request.current_size
    elif held is None:
        current = ZERO
    else:
        current = held.short_units if request.side == "short" else held.long_units
    requested = request.target_size
    sized = False
    action = request.action
    if action == "close":
        requested = ZERO
    elif action == "cancel":
        requested = current
    elif requested is None and request.increasing and limits is not None:
        # Sized in whole lots of the instrument too (authority/instrument_rules.py).
        lot = instrument_rules.rules_for(symbol, snapshot, limits)
        increment = instrument_rules.order_increment(request.size_increment, lot)
        requested = _volatility_size(
            book, market.atr_usd if market else None, limits, current, increment
        )
        sized = requested is not None
    target = requested if requested is not None else current
    memory = state.authority
    grace_since = request.position.score_below_since or memory.grace.get(key)
    if grace_since is None and protection is not None and _below_floor(request, protection):
        grace_since = now
    last_override = memory.overrides.get(key)
    ctx = Context(  # positional, in field order: the order hot path
        request,
        account_id,
        book,
        market.price_usd if market else None,
        market.atr_usd if market else None,
        current,
        target,
        requested,
        sized,
        memory_of.trading_state(state, account_id, symbol),
        grace_since,
        request.position.entry_at or (held.first_entry_at if held else None),
        # Only whipsaw protection reads round trips, and only for an open.
        memory_of.round_trips(memory, key, now, governing.whipsaw_window)
        if action == "open"
        else 0,
        NEVER_S if last_override is None else seconds(last_override, now),
        # The submit rate applies to every order but a cancel and a modify.
        memory_of.submits(memory, account_id, now, governing.submit_window)
        if action not in _NO_SUBMIT
        else 0,
        key,
        now,
        snapshot,
    )
    if action == "modify":
        ctx.modifies = modify_of.modifies(memory, account_id, now, governing.modify_window)
    return ctx


def _below_floor(request: OrderRequest, protection: ProtectionSpec) -> bool:
    score = request.current_score
    return score is not None and score < protection.grace_min_score


def _volatility_size(
    book: AccountBook, atr: Decimal | None, limits: LimitSpec, current: Decimal, increment: Decimal
) -> Decimal | None:
    """Units to add so that ATR × atr_multiple of adverse move loses at most
    max_risk_per_trade_pct of equity; None when there is no ATR to size from."""
    if atr is None or atr <= 0:
        return None
    budget = book.account.equity_usd * limits.max_risk_per_trade_pct / HUNDRED
    return current + floor_to(budget / (atr * limits.atr_multiple), increment)


def _fact(
    ctx: Context,
    governing: AuthorityRules,
    protection: ProtectionSpec | None,
    limits: LimitSpec | None,
) -> dict[str, Any]:
    """Every value the rules compare, exact (Decimal; the fact encoder sends the nearest
    float, and thresholds go through the same conversion, so equal values stay equal).
    Only the controls whose rules can hold for this action fill in their fields."""
    request = ctx.request
    action = request.action
    # request.increasing, read once (a modify adds units or not: the property says)
    increasing = action in INCREASING or (action == "modify" and request.increasing)
    fact: dict[str, Any] = {
        "action": action,
        "increasing": increasing,
        "reducing": action in REDUCING,
        "strategy": request.strategy_id or "",
    }
    if increasing and limits is not None:
        ctx.measures = measures_of(ctx, limits)
    # Read as Any: compiled (engine/authority/native.py), a value typed as a tuple of two
    # is unboxed and boxed again as a new tuple, and `_filler` keys on the pair's identity.
    fills: Any = governing.rules.fills
    _filler(fills[action])(fact, ctx, protection, limits)
    return fact


_Filler = Callable[[dict[str, Any], Context, Any, Any], None]
_Pair = Any  # (protections, limits): Any, not a tuple type, for its identity (see `_fact`)
_FILLERS: dict[int, tuple[_Pair, _Filler]] = {}  # id(pair) -> (pair, its filler)
_MAX_FILLERS = 4096  # (protections, limits) pairs × actions; cleared when full


def _filler(pair: _Pair) -> _Filler:
    """One function calling the pair's controls' `fill` in order (protections with the
    ProtectionSpec, then limits with the LimitSpec): the loop and the method look-ups
    done once per (pair, action) rather than per order."""
    kept = _FILLERS.get(id(pair))
    if kept is not None and kept[0] is pair:
        return kept[1]
    protections, limits = pair
    namespace: dict[str, Any] = {}
    lines = ["def fill(fact, ctx, protection, limits):"]
    for n, control in enumerate(protections):
        namespace[f"p{n}"] = control.fill
        lines.append(f"    p{n}(fact, ctx, protection)")
    for n, control in enumerate(limits):
        namespace[f"l{n}"] = control.fill
        lines.append(f"    l{n}(fact, ctx, limits)")
    lines.append("    return None")
    exec("\n".join(lines), namespace)
    filler: _Filler = namespace["fill"]
    if len(_FILLERS) >= _MAX_FILLERS:
        _FILLERS.clear()
    _FILLERS[id(pair)] = (pair, filler)
    return filler


def _error(
    policies: CompiledPolicySet,
    request: OrderRequest,
    state: State,
    now: datetime,
    error: BaseException,
) -> ExecutionDecision:
    reason = (
        f"error: the check failed ({type(error).__name__}: {error}); denied (Bastion fails safe)"
    )
    symbol = str(getattr(request, "symbol", "?"))
    action = str(getattr(request, "action", "?"))
    described = (
        request.to_dict()
        if isinstance(request, OrderRequest)
        else {"unreadable": repr(request)[:200]}
    )
    check = Check("check completed", False, type(error).__name__)
    decision = Decision(
        time=now,
        kind="check",
        policy="bastion",
        policy_version=policies.version,
        rule="error",
        subject=Subject(
            "order",
            str(getattr(request, "id", "") or f"{action}:{symbol}"),
            account_id=getattr(request, "account_id", None),
            symbol=symbol,
            strategy_id=getattr(request, "strategy_id", None),
        ),
        outcome=DENIED,
        actions=("deny",),
        reasons=(reason,),
        trace=(check,),
        details=(("request", described), ("blocking", ["error"])),
    )
    return ExecutionDecision(
        request=request,
        approved=False,
        outcome=DENIED,
        requested_size=getattr(request, "target_size", None),
        approved_size=None,
        blocking=("error",),
        override_applied=False,
        override_reason=None,
        state=state,
        explanation=Fixed((reason,), ((check,), decision)),
    )
