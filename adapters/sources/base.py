"""What a market-data source is: the protocols every venue adapter implements.

Sources raise :class:`~bastion.engine.errors.TransientAdapterError` for failures worth
retrying elsewhere or later (timeouts, 429, 5xx — with ``retry_after_s`` when the venue
says), :class:`~bastion.engine.errors.AdapterError` for fatal ones (bad credentials) and
:class:`~bastion.engine.errors.DataError` for a payload that cannot be read. Anything
else is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bastion.engine.indicators.quality import Bar


@dataclass(frozen=True, slots=True)
class BarRequest:
    """Which bars: the latest ``limit`` when ``end`` is None (live), else a history slice."""

    symbol: str
    interval_s: int
    limit: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {self.interval_s}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be > 0, got {self.limit}")

    @property
    def live(self) -> bool:
        return self.end is None


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
    timestamp: datetime
    last: Decimal | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class BarSource(Protocol):
    @property
    def name(self) -> str: ...

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        """Bars oldest first. Raises the errors listed in the module docstring."""
        ...


class QuoteSource(Protocol):
    @property
    def name(self) -> str: ...

    def fetch_quote(self, symbol: str) -> Quote: ...


def quote_problem(quote: Quote, now: datetime, max_age_s: float) -> str | None:
    """Why a quote should not be trusted, or None when it is fine."""
    if quote.bid <= 0 or quote.ask <= 0:
        return f"non-positive price (bid {quote.bid}, ask {quote.ask})"
    if quote.bid > quote.ask:
        return f"crossed market: bid {quote.bid} > ask {quote.ask}"
    age_s = (now - quote.timestamp).total_seconds()
    if age_s > max_age_s:
        return f"stale: quote is {age_s:.1f} s old, limit {max_age_s:g} s"
    if age_s < -max_age_s:
        return f"quote time {quote.timestamp.isoformat()} is ahead of now: clock skew"
    return None
