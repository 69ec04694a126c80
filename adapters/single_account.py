"""`restricted_to(owns)` for the venues whose credentials are one account (Alpaca,
Binance, Kraken): what `bastion serve --ray` asks a partition's adapter for.

A partition that does not own the key's account asks the venue nothing about it — no
account, position, fill or trade request — and polls market data (bars, quotes, order
rules, option chains) as before. The owner polls as a single service does. Which account
the key is: the adapter's configured `account_id`, else the venue's own id (Alpaca's
account id, Binance's uid), asked once (`identify`, one request) at the first account
call; a partition that does not own it asks nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.snapshot import ClosedTrade


class SingleAccountScope:
    """`adapter` as one partition sees it; `account_id()` is the key's account, None
    while the venue has not said it yet; `identify()` asks the venue (one request)."""

    def __init__(
        self,
        adapter: Any,
        owns: Callable[[str], bool],
        account_id: Callable[[], str | None],
        identify: Callable[[], str],
    ) -> None:
        self._adapter = adapter
        self._owns = owns
        self._account_id = account_id
        self._identify = identify

    def __getattr__(self, name: str) -> Any:  # market data and the rest: the adapter's
        return getattr(self._adapter, name)

    @property
    def name(self) -> str:
        return str(self._adapter.name)

    def owned(self) -> bool | None:
        """Does this partition own the key's account (None: not known yet)?"""
        account = self._account_id()
        return None if account is None else self._owns(account)

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        if not self._asks():
            return ()
        return tuple(a for a in self._adapter.fetch_accounts() if self._owns(a.id))

    def fetch_positions(self) -> Sequence[VenuePosition]:
        return self._adapter.fetch_positions() if self._asks() else ()

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        return self._adapter.fetch_fills(since) if self._asks() else ()

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        return self._adapter.fetch_trades(since) if self._asks() else ()

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        if not self._asks():
            return (), ()
        fills, trades = self._adapter.fetch_history(fills_since, trades_since)
        return fills, trades

    def _asks(self) -> bool:
        """Ask the venue about the account: only when this partition owns it."""
        owned = self.owned()
        return self._owns(self._identify()) if owned is None else owned
