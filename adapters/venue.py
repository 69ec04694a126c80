"""What a venue adapter is: accounts, positions and fills, plus bars and quotes.

Every adapter (alpaca, binance, kraken, sim, replay) implements `VenueAdapter`:
the account side below and the market-data side of `adapters.sources.base`
(`fetch_bars`, `fetch_quote`). The snapshot builder turns what they return into
a validated `Snapshot`. Venue SDKs are imported only inside their own adapter module.

Errors (see adapters.sources.base): `AdapterError` is fatal (bad credentials,
401/403) and names the fix; `TransientAdapterError` is retried with backoff (429
with `retry_after_s`, 5xx, timeouts); `DataError` is a payload that cannot be read,
naming the field — never turned into zeros. :class:`UnknownSymbolError` is the fatal
error for a symbol or pair the venue does not list; it names the request, the symbol and
the venue, so the builder can set that one symbol aside and a startup check can refuse
a benchmark the venue does not have.

One bad record is one bad record: a position row the adapter cannot read comes back as a
:class:`VenuePosition` with ``problem`` set (the DataError's words) instead of failing
the whole fetch; the builder leaves it out of the snapshot and lists it as unevaluable.
A position whose value the venue reports as 0 (dust) comes back with ``price_usd`` 0:
the builder prices it from the venue's quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bastion.adapters.sources.base import BarSource, QuoteSource
from bastion.engine.errors import AdapterError
from bastion.engine.snapshot.model import ClosedTrade, Instrument


class UnknownSymbolError(AdapterError):
    """The venue does not list ``symbol``: fatal for that symbol, not for the venue."""

    def __init__(self, message: str, *, venue: str, symbol: str) -> None:
        super().__init__(message)
        self.venue = venue
        self.symbol = symbol


@dataclass(frozen=True, slots=True)
class VenueAccount:
    id: str
    type: str  # gen | rev | com: configured per adapter, venues do not know it
    equity_usd: Decimal
    cash_usd: Decimal
    realized_pnl_usd: Decimal = Decimal(0)
    unrealized_pnl_usd: Decimal = Decimal(0)
    # When the venue reports them (Alpaca's last_equity); else the builder tracks them.
    day_start_equity_usd: Decimal | None = None
    peak_equity_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OptionContract:
    option_type: str  # call | put
    strike_usd: Decimal
    expires_at: datetime
    underlying_symbol: str
    multiplier: Decimal = Decimal(100)
    delta: Decimal | None = None
    implied_volatility: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenuePosition:
    id: str
    account_id: str
    symbol: str
    asset_class: str  # equity | crypto | option
    quantity: Decimal  # always positive; `side` says long or short
    side: str
    entry_price_usd: Decimal
    price_usd: Decimal
    entered_at: datetime | None = None
    strategy_id: str = "unassigned"
    manual: bool = False
    option: OptionContract | None = None
    # Set when the venue's row could not be read: what is wrong with it (names the field).
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    id: str
    account_id: str
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    price_usd: Decimal
    filled_at: datetime
    fee_usd: Decimal = Decimal(0)
    expected_price_usd: Decimal | None = None  # for slippage, when the venue knows it
    strategy_id: str = "unassigned"
    realized_pnl_usd: Decimal | None = None  # for consecutive-loss counting, when known
    # For closed trades (adapters.trade_pairing): the venue's order id (partial fills of one
    # order make one trade), why a closing fill closed (trade_pairing.exit_reason), and
    # whether the venue says the fill opens or closes a position ("" when it does not say).
    order_id: str = ""
    exit_reason: str = "signal"
    position_effect: str = ""  # open | close | ""


class AccountSource(Protocol):
    @property
    def name(self) -> str: ...

    def fetch_accounts(self) -> Sequence[VenueAccount]: ...

    def fetch_positions(self) -> Sequence[VenuePosition]: ...

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        """Fills at or after `since`, oldest first."""
        ...


class VenueAdapter(AccountSource, BarSource, QuoteSource, Protocol):
    """One venue: accounts, positions, fills, bars and quotes."""


@runtime_checkable
class TradeSource(Protocol):
    """An adapter that reports closed trades (every venue adapter, sim and replay)."""

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """Closed trades with a close at or after `since`, oldest close first; fetched
        incrementally (only the fills since the previous call go over the network)."""
        ...


@runtime_checkable
class HistorySource(Protocol):
    """An adapter that fetches fills and closed trades in one go (the venue adapters)."""

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        """(fills at or after `fills_since`, oldest first; closed trades with a close at
        or after `trades_since`, oldest close first), from one fill-history fetch."""
        ...


@runtime_checkable
class InstrumentSource(Protocol):
    """An adapter that knows what its symbols are, from what it has already fetched."""

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """Asset class (and sector where known) per symbol; makes no request."""
        ...


def unreadable_position(
    *, id: str, account_id: str, symbol: str, asset_class: str, problem: str
) -> VenuePosition:
    """A position row that could not be read: kept only to be listed as unevaluable."""
    return VenuePosition(
        id=id,
        account_id=account_id,
        symbol=symbol,
        asset_class=asset_class,
        quantity=Decimal(0),
        side="long",
        entry_price_usd=Decimal(0),
        price_usd=Decimal(0),
        problem=problem,
    )
