"""Market-data sources: protocols, failover, TTL cache and per-venue rate limits.

Compose them from the inside out, e.g. for bars::

    clock = SystemClock()
    alpaca = RateLimitedBarSource(alpaca_bars, TokenBucket(ALPACA, clock))
    binance = RateLimitedBarSource(binance_bars, TokenBucket(BINANCE, clock), cost=2)
    source = CachedBarSource(FailoverBarSource([alpaca, binance], clock=clock), 20, clock)
"""

from __future__ import annotations

from bastion.adapters.sources.base import BarRequest, BarSource, Quote, QuoteSource, quote_problem
from bastion.adapters.sources.cache import CachedBarSource, CachedQuoteSource, TtlCache
from bastion.adapters.sources.clock import Clock, ManualClock, ScaledClock, SystemClock
from bastion.adapters.sources.failover import (
    FailoverBarSource,
    FailoverQuoteSource,
    SourceAttempted,
    SourcedBars,
    SourcedQuote,
)
from bastion.adapters.sources.ratelimit import (
    ALPACA,
    BINANCE,
    KRAKEN_PUBLIC,
    VENUE_RATE_LIMITS,
    RateLimit,
    RateLimitedBarSource,
    RateLimitedQuoteSource,
    TokenBucket,
)

__all__ = [
    "ALPACA",
    "BINANCE",
    "KRAKEN_PUBLIC",
    "VENUE_RATE_LIMITS",
    "BarRequest",
    "BarSource",
    "CachedBarSource",
    "CachedQuoteSource",
    "Clock",
    "FailoverBarSource",
    "FailoverQuoteSource",
    "ManualClock",
    "Quote",
    "QuoteSource",
    "RateLimit",
    "RateLimitedBarSource",
    "RateLimitedQuoteSource",
    "ScaledClock",
    "SourceAttempted",
    "SourcedBars",
    "SourcedQuote",
    "SystemClock",
    "TokenBucket",
    "TtlCache",
    "quote_problem",
]
