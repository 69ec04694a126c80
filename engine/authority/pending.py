"""Pending exposure: orders approved since the snapshot, counted until a snapshot shows them.

A snapshot says what the venue held at its `as_of`. An order approved after that is not
in it, so without this module two back-to-back opens would each see only the snapshot's
exposure. `can_execute` remembers every approved order that adds exposure (open,
increase), and every one reported sent (`sent=True`, POST /api/v1/orders) whatever the
answer, as a `PendingOrder` in `AuthorityState.pending`. Every later check reads the
account's book through `applied`: the snapshot's `AccountBook`, or a view of it with
the pending orders added —

- the symbol's units (long or short), exposure and ATR risk; the strategy's exposure
  (with and without manual positions: a pending order is never manual); the account's
  exposure and risk; a symbol held only through pending orders is an open position;
- cash less the pending orders' value (the margin check sees what they will spend).

An order counts until a snapshot shows it, or until it expires:

- shown: the snapshot's `as_of` is at least SETTLE_S after the approval. A caller sends
  what is approved at once; a market order fills (or is rejected) within a second, and
  the allowance also covers a venue clock a little ahead of ours. Until then the order
  may be counted twice (in the snapshot and here): the safe side.
- expired: `orders.pending_ttl_s` of the LimitPolicy that governs the check (default
  300 s; 0 turns pending exposure off) after the approval, for a feed that stops.

What is not known, and why the rule is safe enough: the snapshot has no open orders, so
an order resting on the book (a limit order not yet filled) is assumed filled once a
snapshot is SETTLE_S newer; when it fills later, the next snapshot shows it. Reductions
(close, decrease) and cancels release nothing: an addition that may still fill keeps
counting until a snapshot says what happened.

The orders and their totals are the state (`pending_orders`); this module reads them into
a check and adds an approved order to them.

Cost: running aggregates per account (per symbol: units, value, risk; per strategy and
strategy/symbol: value; totals), so a check adds a few dictionary reads. The orders are
kept in approval order, so those a check no longer counts are a prefix (found by
bisection); the view without them is built once and kept for the next checks
(`_views`), and the prefix is dropped from the state at the next approval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, overload

from bastion.engine.authority.book import ZERO, AccountBook, SymbolBook
from bastion.engine.authority.pending_orders import (
    NO_PENDING,
    SETTLE,
    SETTLE_S,
    AccountPending,
    Pending,
    PendingOrder,
    SymbolPending,
    single,
)
from bastion.engine.authority.slotted import constructor, copier
from bastion.engine.decision import Check, Decision, shown, values_of
from bastion.engine.snapshot import Account, Snapshot
from bastion.engine.snapshot.messages import format_time
from bastion.engine.state import AuthorityState, State

__all__ = [  # the state's types, for one import
    "NO_PENDING",
    "SETTLE_S",
    "Pending",
    "PendingOrder",
    "applied",
    "cutoff",
    "recorded",
]

if TYPE_CHECKING:
    from bastion.engine.authority.check import ExecutionDecision
    from bastion.engine.policy.kinds.limits import LimitSpec

# State.with_authority and AuthorityState(...), built for less (authority/slotted.py).
_with_authority = copier(State, "authority")
_authority_state = constructor(AuthorityState)
# PendingOrder(...) and Account(...) likewise: an order adding exposure, its account's view.
_pending_order = constructor(PendingOrder)
_account = constructor(Account)
# A view of a book and of its pending symbols, per check after an approval.
_account_book = constructor(AccountBook)
_symbol_book = constructor(SymbolBook)

DEFAULT_TTL_S = 300  # when no LimitPolicy governs the check
_VIEWS_KEPT = 64  # books × accounts

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


# -- the view a check reads ----------------------------------------------------------------


def cutoff(as_of: datetime, now: datetime, limits: LimitSpec | None) -> datetime:
    """Orders approved at or before this no longer count: a snapshot shows them, or
    they expired."""
    ttl = limits.pending_ttl_s if limits is not None else DEFAULT_TTL_S
    span = _ttl_spans.get(ttl)
    if span is None:
        span = _ttl_spans[ttl] = timedelta(seconds=float(ttl))
    shown_at = as_of - SETTLE
    expired_at = now - span
    return shown_at if shown_at > expired_at else expired_at


_ttl_spans: dict[Decimal | int, timedelta] = {}  # a few policies' TTLs


def applied(
    book: AccountBook,
    pending: Pending,
    snapshot: Snapshot,
    now: datetime,
    limits: LimitSpec | None,
) -> AccountBook:
    """The book a check reads: `book` itself when nothing is pending for its account,
    else a view with the pending orders the snapshot does not show yet added."""
    account = pending.accounts.get(book.account.id) if pending.accounts else None
    if account is None:
        return book
    counted, dropped = account.counted(cutoff(snapshot.as_of, now, limits))
    if counted is None:
        return book
    key = (id(book), book.account.id)
    kept = _views.get(key)
    # Identity, all three: an id can be reused once its object is gone.
    if kept is not None and kept[0] is book and kept[1] is account and kept[2] == dropped:
        return kept[3]
    view = _view(book, counted)
    with _views_lock:
        if key not in _views and len(_views) >= _VIEWS_KEPT:
            _views.clear()
        _views[key] = (book, account, dropped, view)
    return view


# The last view built per book and account: the checks that change nothing (questions,
# denials, reductions) read the view the check before them built. The objects the
# identities refer to are kept alive here.
_views_lock = threading.Lock()
_views: dict[tuple[int, str], tuple[AccountBook, AccountPending, int, AccountBook]] = {}


def _view(book: AccountBook, pending: AccountPending) -> AccountBook:
    held = book.symbols
    # Counted over the few pending symbols (a set difference would walk the whole book).
    strategy_held = book.strategy_held
    new_symbols = new_strategy_symbols = 0
    for symbol in pending.symbols:
        if symbol not in held:
            new_symbols += 1
        if symbol not in strategy_held:
            new_strategy_symbols += 1
    account = book.account
    strategies = pending.strategies
    return _account_book(  # every field, positionally (authority/slotted.py)
        _account(
            account.id,
            account.type,
            account.equity_usd,
            account.cash_usd - pending.value_usd,
            account.day_start_equity_usd,
            account.peak_equity_usd,
            account.realized_pnl_usd,
            account.unrealized_pnl_usd,
            account.drift_flag,
        ),
        book.drawdown_pct,
        _Overlay(held, pending.symbols, _symbol_with),
        _Overlay(book.strategy_exposure_usd, strategies, _from_zero),
        _Overlay(book.strategy_exposure_with_manual_usd, strategies, _from_zero),
        _Overlay(book.strategy_symbol_exposure_usd, pending.strategy_symbols, _sum),
        book.exposure_usd + pending.value_usd,
        book.risk_atr_usd + pending.risk_atr_usd,
        book.risk_fixed_usd,
        book.open_with_manual + new_symbols,
        book.open_without_manual + new_strategy_symbols,
        book.strategy_held,  # the snapshot's: a view is never viewed again
        pending,
    )


def _symbol_with(held: SymbolBook | None, pending: SymbolPending) -> SymbolBook:
    if held is None:
        return _symbol_book(  # every field, positionally (authority/slotted.py)
            pending.long_units,
            pending.short_units,
            pending.value_usd,
            pending.risk_atr_usd,
            ZERO,
            False,
            pending.first_at,
        )
    first = held.first_entry_at
    return _symbol_book(
        held.long_units + pending.long_units,
        held.short_units + pending.short_units,
        held.exposure_usd + pending.value_usd,
        held.risk_atr_usd + pending.risk_atr_usd,
        held.risk_fixed_usd,
        False,  # a pending order is a strategy's, never manual
        pending.first_at if first is None else min(first, pending.first_at),
    )


def _sum(held: Decimal | None, pending: Decimal) -> Decimal:
    return pending if held is None else held + pending


def _from_zero(held: Decimal | None, pending: Decimal) -> Decimal:
    """A strategy's exposure with its pending orders', summed from ZERO when it held
    nothing (the exponent a sum from ZERO gives, as the strategies' tables always had)."""
    return (ZERO if held is None else held) + pending


class _Overlay(Mapping[K, V]):
    """`base` with the keys of `added` combined into it, computed when first read: a
    book holds hundreds of symbols, a check reads one or two."""

    __slots__ = ("_added", "_base", "_combine", "_memo")

    def __init__(
        self,
        base: Mapping[K, V],
        added: Mapping[K, T],
        combine: Callable[[V | None, T], V],
    ) -> None:
        self._base = base
        self._added: Mapping[K, Any] = added
        self._combine: Callable[[V | None, Any], V] = combine
        self._memo: dict[K, V] = {}

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | T, /) -> V | T: ...
    def get(self, key: K, default: Any = None) -> Any:
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        added = self._added.get(key)
        if added is None:
            return self._base.get(key, default)
        value: V = self._combine(self._base.get(key), added)
        self._memo[key] = value
        return value

    def __getitem__(self, key: K) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._added or key in self._base

    def __iter__(self) -> Iterator[K]:
        yield from self._base
        for key in self._added:
            if key not in self._base:
                yield key

    def __len__(self) -> int:
        return len(self._base) + len(self._added.keys() - self._base.keys())


# -- remembering an order ------------------------------------------------------------------


def recorded(
    result: ExecutionDecision,
    state: State,
    book: AccountBook,
    snapshot: Snapshot,
    now: datetime,
    limits: LimitSpec | None,
    *,
    sent: bool = False,
) -> ExecutionDecision:
    """`result` with the pending orders in its state: this order added when it counts
    (approved, or reported sent) and adds exposure, the orders no longer counted
    dropped then; and with its reasons and trace saying what pending orders the check
    counted. `book` is the one the check read (`applied`)."""
    before = state.authority.pending
    request = result.request
    increasing = request.increasing
    counts = (result.approved or sent) and increasing
    if counts and not before.accounts and now <= cutoff(snapshot.as_of, now, limits):
        counts = False  # nothing pending, and an order approved now would not count (TTL 0)
    order = _order(result, book, snapshot, now, sent) if counts else None
    pending = before
    if order is not None:
        counts_after = cutoff(snapshot.as_of, now, limits)
        if not before.accounts:  # nothing pending before: the common case, built directly
            if order.approved_at > counts_after:
                pending = Pending({order.account_id: single(order)})
        else:
            # Other accounts: dropped what the snapshot shows (their TTLs may differ).
            pending = before.shown_by(snapshot.as_of, keep=order.account_id)
            account = pending.accounts.get(order.account_id)
            if account is not None:
                account, _ = account.counted(counts_after)
            if order.approved_at > counts_after:
                account = account.added(order) if account is not None else single(order)
            pending = pending.with_account(order.account_id, account)
    memory = result.state.authority
    # Added or dropped here, or left out by code that rebuilt the AuthorityState.
    changed = memory.pending is not pending and bool(memory.pending or pending)
    noted = book.pending is not None and (
        increasing or (request.action != "cancel" and request.symbol in book.pending.symbols)
    )
    if not changed and not noted:
        return result
    # `result` is fresh from `finish` and not yet seen by anyone: it is completed in
    # place (a copy of the frozen record costs more than the rest of this module's work
    # on the order hot path), as Decision caches its id.
    if changed:
        new_memory = _authority_state(  # positional, in field order: the order hot path
            memory.submits, memory.trades, memory.overrides, memory.grace, pending
        )
        object.__setattr__(result, "state", _with_authority(result.state, new_memory))
    if noted and book.pending is not None:
        noted_explanation = _Noted(result.explanation, book.pending, request.symbol, snapshot.as_of)
        object.__setattr__(result, "explanation", noted_explanation)
    return result


def _order(
    result: ExecutionDecision,
    book: AccountBook,
    snapshot: Snapshot,
    now: datetime,
    sent: bool,
) -> PendingOrder | None:
    """What the order adds, or None: it adds nothing, or cannot be valued (no market
    data, no size: such an order is denied)."""
    request = result.request
    if not request.increasing:
        return None
    # Sent: the order went out at the size asked; approved: at the size approved.
    target = result.requested_size if sent else result.approved_size
    market = snapshot.market.get(request.symbol)
    if target is None or market is None:
        return None
    held = book.symbols.get(request.symbol)
    if request.current_size is not None:  # as the check counts it (check._context)
        current = request.current_size
    elif held is None:
        current = ZERO
    else:
        current = held.short_units if request.side == "short" else held.long_units
    units = target - current
    if units <= 0:
        return None
    return _pending_order(  # every field, positionally (authority/slotted.py)
        book.account.id,
        request.symbol,
        request.side,
        request.strategy_id or "",
        units,
        market.price_usd,
        market.atr_usd,
        now,
        sent,
        request.modified_order_id or request.id,  # a modify adds to the order it changes
    )


def described(pending: AccountPending, symbol: str, as_of: datetime) -> str:
    """The wording: `includes 2 pending orders, 12000 USD (1 in XYZ, 5000 USD), approved
    since the snapshot of 2026-11-20T15:30:00Z` (numbers as the limits' reasons show them)."""
    count = len(pending.orders)
    text = f"includes {count} pending order{'s' if count != 1 else ''}, "
    text += f"{shown(pending.value_usd)} USD"
    held = pending.symbols.get(symbol)
    if held is not None:
        in_symbol = sum(1 for order in pending.orders if order.symbol == symbol)
        text += f" ({in_symbol} in {symbol}, {shown(held.value_usd)} USD)"
    if pending.sent:
        text += f", {pending.sent} reported sent"
    return text + f", approved since the snapshot of {format_time(as_of)}"


class _Noted:
    """An explanation with the pending orders the check counted: one more reason and
    one more check in the trace (after the facts), worded when first read."""

    __slots__ = ("_as_of", "_audit", "_inner", "_pending", "_symbol")

    def __init__(self, inner: Any, pending: AccountPending, symbol: str, as_of: datetime) -> None:
        self._inner = inner
        self._pending = pending
        self._symbol = symbol
        self._as_of = as_of
        self._audit: tuple[tuple[Check, ...], Decision] | None = None

    def _note(self) -> str:
        return described(self._pending, self._symbol, self._as_of)

    def reasons(self) -> tuple[str, ...]:
        return (*self._inner.reasons(), self._note())

    def audit(self) -> tuple[tuple[Check, ...], Decision]:
        if self._audit is None:
            checks, decision = self._inner.audit()
            pending = self._pending
            check = Check(
                "pending",
                True,
                self._note(),
                values_of(
                    {
                        "pending_orders": len(pending.orders),
                        "pending_value_usd": pending.value_usd,
                        "pending_risk_atr_usd": pending.risk_atr_usd,
                    }
                ),
            )
            at = 1 if checks and checks[0].name == "facts" else 0
            trace = (*checks[:at], check, *checks[at:])
            self._audit = trace, replace(decision, reasons=self.reasons(), trace=trace)
        return self._audit
