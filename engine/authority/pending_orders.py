"""The pending orders of the order authority and their running totals: the state part of
pending exposure (`AuthorityState.pending`; authority/pending.py reads it into a check).

Per account, the orders approved (or reported sent) since the snapshot, oldest first, and
what they add — per symbol (long and short units, value, ATR risk, the oldest approval),
per strategy and strategy/symbol (value), in total (value, ATR risk, how many reported
sent) — kept up to date as orders are added, so a check reads totals, never the orders.
Saved as a list of orders (`to_list`); the totals are rebuilt on load (`from_list`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bastion.engine.authority.slotted import constructor
from bastion.engine.decision import render_value

ZERO = Decimal(0)
SETTLE_S = 5  # a snapshot this much newer than an approval shows the order's fill
SETTLE = timedelta(seconds=SETTLE_S)


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """One order approved (or reported sent) and not yet in a snapshot: what it adds."""

    account_id: str
    symbol: str
    side: str  # long | short
    strategy_id: str  # "" when the request named none
    units: Decimal  # units added (> 0)
    price_usd: Decimal  # at the approval (the snapshot's price)
    atr_usd: Decimal  # at the approval; risk is units × ATR × the policy's atr_multiple
    approved_at: datetime
    sent: bool = False  # reported sent (POST /api/v1/orders), not only approved
    order_id: str = ""  # the request's id, when it gave one

    @property
    def value_usd(self) -> Decimal:
        return self.units * self.price_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "symbol": self.symbol,
            "side": self.side,
            "strategy_id": self.strategy_id,
            "units": render_value(self.units),
            "price_usd": render_value(self.price_usd),
            "atr_usd": render_value(self.atr_usd),
            "approved_at": self.approved_at.isoformat(),
            "sent": self.sent,
            "order_id": self.order_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingOrder:
        """Read back; raises KeyError, TypeError or ValueError naming the problem."""
        side = data["side"]
        if side not in ("long", "short"):
            raise ValueError(f"pending order side {side!r} is not long or short")
        approved_at = datetime.fromisoformat(str(data["approved_at"]))
        if approved_at.tzinfo is None:
            raise ValueError(f"pending order approved_at {data['approved_at']!r} has no timezone")
        units = _number(data["units"], "units", positive=True)
        return cls(
            account_id=str(data["account_id"]),
            symbol=str(data["symbol"]),
            side=str(side),
            strategy_id=str(data.get("strategy_id", "")),
            units=units,
            price_usd=_number(data["price_usd"], "price_usd"),
            atr_usd=_number(data.get("atr_usd", "0"), "atr_usd"),
            approved_at=approved_at,
            sent=bool(data.get("sent", False)),
            order_id=str(data.get("order_id", "")),
        )


def _number(value: Any, name: str, *, positive: bool = False) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite() or number < 0 or (positive and number == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"pending order {name} {value!r} is not a {kind} number")
    return number


def _approved_at(order: PendingOrder) -> datetime:
    return order.approved_at


@dataclass(frozen=True, slots=True)
class SymbolPending:
    long_units: Decimal
    short_units: Decimal
    value_usd: Decimal
    risk_atr_usd: Decimal
    first_at: datetime  # the oldest pending approval in the symbol


@dataclass(frozen=True, slots=True)
class AccountPending:
    """One account's pending orders (oldest first) and their running aggregates."""

    orders: tuple[PendingOrder, ...]
    symbols: Mapping[str, SymbolPending]
    strategies: Mapping[str, Decimal]
    strategy_symbols: Mapping[tuple[str, str], Decimal]
    value_usd: Decimal
    risk_atr_usd: Decimal
    sent: int  # how many were reported sent

    def added(self, order: PendingOrder) -> AccountPending:
        """With one more order: the aggregates updated, not recomputed."""
        if self.orders and order.approved_at < self.orders[-1].approved_at:
            return aggregated(sorted((*self.orders, order), key=_approved_at))  # clock went back
        symbols = dict(self.symbols)
        symbols[order.symbol] = _symbol_plus(symbols.get(order.symbol), order)
        strategies = dict(self.strategies)
        strategies[order.strategy_id] = strategies.get(order.strategy_id, ZERO) + order.value_usd
        pairs = dict(self.strategy_symbols)
        pair = (order.strategy_id, order.symbol)
        pairs[pair] = pairs.get(pair, ZERO) + order.value_usd
        return AccountPending(
            (*self.orders, order),
            symbols,
            strategies,
            pairs,
            self.value_usd + order.value_usd,
            self.risk_atr_usd + order.units * order.atr_usd,
            self.sent + order.sent,
        )

    def counted(self, cutoff: datetime) -> tuple[AccountPending | None, int]:
        """The orders approved after `cutoff` (None: none), and how many were dropped."""
        orders = self.orders
        if orders[0].approved_at > cutoff:
            return self, 0
        dropped = bisect_right(orders, cutoff, key=_approved_at)
        if dropped == len(orders):
            return None, dropped
        return aggregated(orders[dropped:]), dropped


def _symbol_plus(held: SymbolPending | None, order: PendingOrder) -> SymbolPending:
    long_units = order.units if order.side == "long" else ZERO
    short_units = order.units if order.side == "short" else ZERO
    risk = order.units * order.atr_usd
    if held is None:
        return SymbolPending(long_units, short_units, order.value_usd, risk, order.approved_at)
    return SymbolPending(
        held.long_units + long_units,
        held.short_units + short_units,
        held.value_usd + order.value_usd,
        held.risk_atr_usd + risk,
        min(held.first_at, order.approved_at),
    )


def aggregated(orders: tuple[PendingOrder, ...] | list[PendingOrder]) -> AccountPending:
    """The orders (oldest first) with their totals computed from scratch: a load, a drop."""
    symbols: dict[str, SymbolPending] = {}
    strategies: dict[str, Decimal] = {}
    pairs: dict[tuple[str, str], Decimal] = {}
    value = risk = ZERO
    for order in orders:
        symbols[order.symbol] = _symbol_plus(symbols.get(order.symbol), order)
        strategies[order.strategy_id] = strategies.get(order.strategy_id, ZERO) + order.value_usd
        pair = (order.strategy_id, order.symbol)
        pairs[pair] = pairs.get(pair, ZERO) + order.value_usd
        value += order.value_usd
        risk += order.units * order.atr_usd
    sent = sum(1 for order in orders if order.sent)
    return AccountPending(tuple(orders), symbols, strategies, pairs, value, risk, sent)


# AccountPending(...) and SymbolPending(...) built for less (authority/slotted.py): the
# first pending order of an account is made on the order hot path (a bracket's entry).
_account_pending = constructor(AccountPending)
_symbol_pending = constructor(SymbolPending)


def single(order: PendingOrder) -> AccountPending:
    """`aggregated((order,))`, built directly: the first pending order of an account is
    the common case on the order hot path. The same values, computed the same way (the
    sums start from ZERO, as there, so each total keeps the same exponent)."""
    value = order.value_usd
    risk = order.units * order.atr_usd
    long_units = order.units if order.side == "long" else ZERO
    short_units = order.units if order.side == "short" else ZERO
    return _account_pending(  # positional, in field order (authority/slotted.py)
        (order,),
        {order.symbol: _symbol_pending(long_units, short_units, value, risk, order.approved_at)},
        {order.strategy_id: ZERO + value},
        {(order.strategy_id, order.symbol): ZERO + value},
        ZERO + value,
        ZERO + risk,
        1 if order.sent else 0,
    )


@dataclass(frozen=True, slots=True)
class Pending:
    """Every account's pending orders: `AuthorityState.pending`. Saved as a list of
    orders; the aggregates are rebuilt on load."""

    accounts: Mapping[str, AccountPending] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.accounts)

    def __len__(self) -> int:
        return sum(len(account.orders) for account in self.accounts.values())

    def orders(self) -> Iterator[PendingOrder]:
        """Every pending order, by account id, then oldest first."""
        for account_id in sorted(self.accounts):
            yield from self.accounts[account_id].orders

    def with_account(self, account_id: str, account: AccountPending | None) -> Pending:
        accounts = dict(self.accounts)
        if account is None:
            accounts.pop(account_id, None)
        else:
            accounts[account_id] = account
        return Pending(accounts)

    def to_list(self) -> list[dict[str, Any]]:
        return [order.to_dict() for order in self.orders()]

    @classmethod
    def from_list(cls, data: Any) -> Pending:
        """Read back a saved list; raises KeyError, TypeError or ValueError."""
        if not isinstance(data, list):
            raise TypeError(f"pending must be a list of orders, not {type(data).__name__}")
        by_account: dict[str, list[PendingOrder]] = {}
        for item in data:
            order = PendingOrder.from_dict(item)
            by_account.setdefault(order.account_id, []).append(order)
        return cls(
            {
                account_id: aggregated(sorted(orders, key=_approved_at))
                for account_id, orders in by_account.items()
            }
        )

    def shown_by(self, as_of: datetime, *, keep: str = "") -> Pending:
        """Without the orders a snapshot of `as_of` shows (SETTLE_S after them), except
        in account `keep`; this same object when there are none."""
        shown_at = as_of - SETTLE
        accounts: dict[str, AccountPending] | None = None  # copied at the first change
        for account_id, account in self.accounts.items():
            if account_id == keep or account.orders[0].approved_at > shown_at:
                continue
            if accounts is None:
                accounts = dict(self.accounts)
            counted, _ = account.counted(shown_at)
            if counted is None:
                del accounts[account_id]
            else:
                accounts[account_id] = counted
        return self if accounts is None else Pending(accounts)

    def summary(self, now: datetime | None = None, as_of: datetime | None = None) -> dict[str, Any]:
        """What status shows: per account, the orders still counted (those the snapshot
        of `as_of` does not show), their value and the oldest."""
        counted = self if as_of is None else self.shown_by(as_of)
        shown_accounts: dict[str, Any] = {}
        for account_id in sorted(counted.accounts):
            account = counted.accounts[account_id]
            oldest = account.orders[0].approved_at
            entry: dict[str, Any] = {
                "orders": len(account.orders),
                "reported_sent": account.sent,
                "value_usd": render_value(account.value_usd),
                "symbols": {
                    symbol: render_value(held.value_usd)
                    for symbol, held in sorted(account.symbols.items())
                },
                "oldest_approved_at": oldest.isoformat(),
            }
            if now is not None:
                entry["oldest_age_s"] = render_value(
                    Decimal((now - oldest) // timedelta(milliseconds=1)).scaleb(-3)
                )
            shown_accounts[account_id] = entry
        return shown_accounts


NO_PENDING = Pending()
