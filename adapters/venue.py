"""What a venue adapter is: accounts, positions and fills, plus bars and quotes.

Every adapter (alpaca, binance, kraken, sim, replay) implements `VenueAdapter`:
the account side below and the market-data side of `adapters.sources.base`
(`fetch_bars`, `fetch_quote`). The snapshot builder turns what they return into
a validated `Snapshot`. Venue SDKs are imported only inside their own adapter module.

Errors (see adapters.sources.base): `AdapterError` is fatal (bad credentials,
401/403) and names the fix; `TransientAdapterError` is retried with backoff (429
with `retry_after_s`, 5xx, timeouts); `DataError` is a payload that cannot be read,
naming the field — never turned into zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bastion.adapters.sources.base import BarSource, QuoteSource


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
