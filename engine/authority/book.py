"""Per-account aggregates of one snapshot: exposures, open positions, risk, drawdown.

`can_execute` answers many requests against one snapshot; summing 1,000 positions for
each would cost more than the whole decision. A `Book` is built once per snapshot
(`book_of` keeps the last few, keyed by identity: a Snapshot is frozen) and read by
every request. Exposure is |quantity| × price (× the contract multiplier for options);
risk is |quantity| × ATR per position (the caller multiplies by the policy's
atr_multiple); an option position counts its premium value as its risk.

A check reads the book through `pending.applied`, which returns this book as is, or —
when orders were approved since the snapshot — a view of it with those orders added
(`pending` then says what they were). The mappings are read-only for that reason:
the view overlays them instead of copying every symbol.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bastion.engine.snapshot import Account, Position, Snapshot

if TYPE_CHECKING:
    from bastion.engine.authority.pending_orders import AccountPending

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_CACHE_SIZE = 8


@dataclass(slots=True)
class SymbolBook:
    long_units: Decimal = ZERO
    short_units: Decimal = ZERO
    exposure_usd: Decimal = ZERO  # all positions, manual included
    risk_atr_usd: Decimal = ZERO  # Σ |qty| × ATR (per 1 ATR of adverse move)
    risk_fixed_usd: Decimal = ZERO  # options: premium value
    manual_only: bool = True
    first_entry_at: datetime | None = None


@dataclass(slots=True)
class AccountBook:
    account: Account
    drawdown_pct: Decimal
    symbols: Mapping[str, SymbolBook] = field(default_factory=dict)
    strategy_exposure_usd: Mapping[str, Decimal] = field(default_factory=dict)  # manual excluded
    strategy_exposure_with_manual_usd: Mapping[str, Decimal] = field(default_factory=dict)
    strategy_symbol_exposure_usd: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    exposure_usd: Decimal = ZERO
    risk_atr_usd: Decimal = ZERO
    risk_fixed_usd: Decimal = ZERO

    open_with_manual: int = 0
    open_without_manual: int = 0
    # Symbols held by a strategy (not manual only): a pending order in any other symbol
    # adds an open position to `open_without_manual`.
    strategy_held: frozenset[str] = frozenset()
    pending: AccountPending | None = None  # what a view added (pending.applied); None: the snapshot

    def open_positions(self, *, include_manual: bool) -> int:
        """Symbols with a position (a manual-only symbol counts when `include_manual`)."""
        return self.open_with_manual if include_manual else self.open_without_manual

    def strategy_exposure(self, strategy: str, *, include_manual: bool) -> Decimal:
        table = (
            self.strategy_exposure_with_manual_usd if include_manual else self.strategy_exposure_usd
        )
        return table.get(strategy, ZERO)

    def risk_usd(self, atr_multiple: Decimal) -> Decimal:
        return self.risk_atr_usd * atr_multiple + self.risk_fixed_usd


@dataclass(frozen=True, slots=True)
class Book:
    accounts: Mapping[str, AccountBook]


def daily_drawdown_pct(account: Account) -> Decimal:
    """Loss since the start of the day, in per cent of day-start equity (never negative)."""
    start = account.day_start_equity_usd
    if start <= 0:
        return ZERO
    return max(ZERO, (start - account.equity_usd) / start * HUNDRED)


class _Tables:
    """The mutable tables of one account's book while it is built."""

    __slots__ = ("strategy", "strategy_symbol", "strategy_with_manual", "symbols")

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolBook] = {}
        self.strategy: dict[str, Decimal] = {}
        self.strategy_with_manual: dict[str, Decimal] = {}
        self.strategy_symbol: dict[tuple[str, str], Decimal] = {}


def build_book(snapshot: Snapshot) -> Book:
    accounts = {
        account.id: AccountBook(account, daily_drawdown_pct(account))
        for account in snapshot.accounts
    }
    tables = {account_id: _Tables() for account_id in accounts}
    for position in snapshot.positions:
        book = accounts.get(position.account_id)
        if book is not None:
            _add(book, tables[position.account_id], position, snapshot)
    for account_id, book in accounts.items():
        built = tables[account_id]
        book.symbols = built.symbols
        book.strategy_exposure_usd = built.strategy
        book.strategy_exposure_with_manual_usd = built.strategy_with_manual
        book.strategy_symbol_exposure_usd = built.strategy_symbol
        book.strategy_held = frozenset(
            s for s, held in built.symbols.items() if not held.manual_only
        )
        book.open_with_manual = len(built.symbols)
        book.open_without_manual = len(book.strategy_held)
    return Book(accounts)


def _add(book: AccountBook, tables: _Tables, position: Position, snapshot: Snapshot) -> None:
    units = abs(position.quantity)
    if units == 0:
        return
    symbol = tables.symbols.setdefault(position.symbol, SymbolBook())
    if position.side == "short":
        symbol.short_units += units
    else:
        symbol.long_units += units
    if position.option is not None:
        exposure = units * position.price_usd * position.option.multiplier
        symbol.risk_fixed_usd += exposure
        book.risk_fixed_usd += exposure
    else:
        exposure = units * position.price_usd
        market = snapshot.market.get(position.symbol)
        risk = units * market.atr_usd if market is not None else ZERO
        symbol.risk_atr_usd += risk
        book.risk_atr_usd += risk
    symbol.exposure_usd += exposure
    book.exposure_usd += exposure
    symbol.manual_only = symbol.manual_only and position.manual
    if symbol.first_entry_at is None or position.entered_at < symbol.first_entry_at:
        symbol.first_entry_at = position.entered_at
    strategy = position.strategy_id
    pair = (strategy, position.symbol)
    tables.strategy_symbol[pair] = tables.strategy_symbol.get(pair, ZERO) + exposure
    tables.strategy_with_manual[strategy] = (
        tables.strategy_with_manual.get(strategy, ZERO) + exposure
    )
    if not position.manual:
        tables.strategy[strategy] = tables.strategy.get(strategy, ZERO) + exposure


_lock = threading.Lock()
_cache: list[tuple[Snapshot, Book]] = []


def book_of(snapshot: Snapshot) -> Book:
    """The Book of `snapshot`, built on first use and kept for the next few snapshots."""
    try:  # the usual case, read without the lock: the list only ever holds whole pairs
        newest = _cache[0]
    except IndexError:
        pass
    else:
        if newest[0] is snapshot:
            return newest[1]
    with _lock:
        for cached, book in _cache:
            if cached is snapshot:
                return book
    book = build_book(snapshot)
    with _lock:
        _cache.insert(0, (snapshot, book))
        del _cache[_CACHE_SIZE:]
    return book
