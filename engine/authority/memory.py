"""What the authority remembers between requests (`State.authority`): reading it for one
request (trading state, round trips, submits in the window) and the state after it."""

from __future__ import annotations

from bisect import bisect_right, insort
from datetime import datetime, timedelta

from bastion.engine.authority.controls.base import Context
from bastion.engine.authority.layered import with_item
from bastion.engine.authority.modify import modify_key
from bastion.engine.authority.slotted import constructor, copier
from bastion.engine.evaluation.compiled import AuthorityRules
from bastion.engine.state import AuthorityState, State

# State.with_authority and AuthorityState(...), built for less (authority/slotted.py).
with_authority = copier(State, "authority")
authority_state = constructor(AuthorityState)


def trading_state(state: State, account_id: str, symbol: str) -> str:
    """The strictest of the account's and the symbol's trading state."""
    account = state.trading_state(account_id)
    if account == "HALTED" or symbol in state.halted_symbols:
        return "HALTED"
    if symbol in state.reducing_symbols:
        return "REDUCING"
    return account


def round_trips(memory: AuthorityState, key: str, now: datetime, window: timedelta | None) -> int:
    if window is None:  # no ProtectionPolicy
        return 0
    since = now - window
    trips, opened = 0, False
    for what, at in memory.trades.get(key, ()):
        if at <= since:  # a rolling window (now - window, now], like the submit rate
            continue
        if what == "open":
            opened = True
        elif opened:
            trips, opened = trips + 1, False
    return trips


def submits(
    memory: AuthorityState, account_id: str, now: datetime, window: timedelta | None
) -> int:
    if window is None:  # no LimitPolicy
        return 0
    times = memory.submits.get(account_id, ())  # kept sorted by _remember
    if not times:
        return 0
    return len(times) - bisect_right(times, now - window)


def remember(
    state: State,
    ctx: Context,
    now: datetime,
    counts: bool,
    override: bool,
    governing: AuthorityRules,
) -> State:
    """The state after this request: grace clocks always; submits, trades and the
    override cooldown only for an order that counts (approved, or reported sent)."""
    protection = governing.protection.spec if governing.protection else None
    memory = state.authority
    request, key = ctx.request, ctx.key
    grace = memory.grace
    if protection is not None and request.current_score is not None:
        below = request.current_score < protection.grace_min_score
        if below and grace.get(key) != ctx.grace_since and ctx.grace_since is not None:
            grace = with_item(grace, key, ctx.grace_since)
        elif not below and key in grace:
            grace = dict(grace)
            del grace[key]
    submits, trades, overrides = memory.submits, memory.trades, memory.overrides
    if counts and request.action != "cancel":
        # A modify counts against the modify rate, kept apart (authority/modify.py).
        modify = request.action == "modify"
        window = governing.modify_window if modify else governing.submit_window
        if window is not None:
            counted = modify_key(ctx.account_id) if modify else ctx.account_id
            times = submits.get(counted, ())
            # The submits in the window were counted for the context (`submits`, same
            # times, window and now): those before them are the ones to drop.
            start = len(times) - ctx.submits if not modify else bisect_right(times, now - window)
            kept = times[start:] if start else times
            if kept and now < kept[-1]:  # out of time order (a caller's clock): sorted in
                ordered = list(kept)
                insort(ordered, now)
                kept = tuple(ordered)
            else:  # the usual case: time moves forward
                kept = (*kept, now)
            submits = with_item(submits, counted, kept)
        if request.action in ("open", "close") and governing.whipsaw_window is not None:
            horizon = now - governing.whipsaw_window
            recent = tuple(t for t in trades.get(key, ()) if t[1] > horizon)
            trades = with_item(trades, key, (*recent, (request.action, now)))
        if override:
            overrides = with_item(overrides, key, now)
    if (
        grace is memory.grace
        and submits is memory.submits
        and trades is memory.trades
        and overrides is memory.overrides
    ):
        return state
    return with_authority(
        state,
        authority_state(submits, trades, overrides, grace, memory.pending),  # pending.recorded adds
    )
