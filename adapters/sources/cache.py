"""A TTL cache in front of a source: repeated polls within ``ttl_s`` cost no request.

Only successes are cached. Keep ``ttl_s`` below the bar interval (or the quote's allowed
age), or the cache itself will serve stale data.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from bastion.adapters.sources.base import BarRequest, BarSource, Quote, QuoteSource
from bastion.adapters.sources.clock import Clock
from bastion.engine.indicators.quality import Bar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries expire ``ttl_s`` after they were stored; least recently used goes first."""

    def __init__(self, ttl_s: float, clock: Clock, max_entries: int = 1024) -> None:
        if ttl_s <= 0 or max_entries < 1:
            raise ValueError("need ttl_s > 0 and max_entries ≥ 1")
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_s, value = entry
        if self._clock.monotonic() >= expires_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class CachedBarSource:
    def __init__(self, source: BarSource, ttl_s: float, clock: Clock) -> None:
        self._source = source
        self._cache: TtlCache[BarRequest, tuple[Bar, ...]] = TtlCache(ttl_s, clock)

    @property
    def name(self) -> str:
        return self._source.name

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        cached = self._cache.get(request)
        if cached is not None:
            return cached
        bars = tuple(self._source.fetch_bars(request))
        self._cache.put(request, bars)
        return bars


class CachedQuoteSource:
    def __init__(self, source: QuoteSource, ttl_s: float, clock: Clock) -> None:
        self._source = source
        self._cache: TtlCache[str, Quote] = TtlCache(ttl_s, clock)

    @property
    def name(self) -> str:
        return self._source.name

    def fetch_quote(self, symbol: str) -> Quote:
        cached = self._cache.get(symbol)
        if cached is not None:
            return cached
        quote = self._source.fetch_quote(symbol)
        self._cache.put(symbol, quote)
        return quote
