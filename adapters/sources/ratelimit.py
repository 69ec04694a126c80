"""Per-source token buckets that keep Bastion under each venue's published limits.

A bucket holds at most ``burst`` tokens and refills at ``rate_per_s``; a request spends
``cost`` tokens (Binance charges *request weight*, so a klines call may cost more than 1).
In any window of W seconds a bucket admits at most ``burst + rate_per_s × W`` — so a venue
limit of L per minute is honoured only when ``burst + 60 × rate_per_s ≤ L``. The presets
below satisfy that with a margin, rather than setting ``burst = L`` (which admits 2L).

When a venue answers 429 anyway (another process shares the key or the IP), the wrapper
blocks its bucket for the ``Retry-After`` the venue sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bastion.adapters.sources.base import BarRequest, BarSource, Quote, QuoteSource
from bastion.adapters.sources.clock import Clock
from bastion.engine.errors import TransientAdapterError
from bastion.engine.indicators.quality import Bar


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate_per_s: float
    burst: float
    published: str = ""  # the venue's own statement of the limit

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst ≥ 1, got {self}")

    def max_admitted(self, window_s: float) -> float:
        """The most a bucket admits in any window of ``window_s`` seconds."""
        return self.burst + self.rate_per_s * window_s


# Alpaca: 200 requests per minute per account (trading and market-data REST).
ALPACA = RateLimit(rate_per_s=180 / 60, burst=20, published="200 requests/min per account")
# Binance spot: 6,000 request weight per minute per IP (binance-spot-api-docs enums.md, raised
# from 1,200 on 2023-08-25), 90 % of it as the budget. The venue states its own limits in
# exchangeInfo.rateLimits: BinanceAdapter.request_weight_limit() reads them at start.
BINANCE = RateLimit(
    rate_per_s=5400 / 60,
    burst=600,
    published="6000 request weight/min per IP (published 2023-08-25)",
)
# Kraken public REST: about one request per second per IP.
KRAKEN_PUBLIC = RateLimit(rate_per_s=1.0, burst=1, published="about 1 request/s per IP")

VENUE_RATE_LIMITS: dict[str, RateLimit] = {
    "alpaca": ALPACA,
    "binance": BINANCE,
    "kraken": KRAKEN_PUBLIC,
}


_TOKEN_TOLERANCE = 1e-9  # float refills land a hair short of whole tokens


class TokenBucket:
    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = limit.burst
        self._updated_s = clock.monotonic()
        self._blocked_until_s = float("-inf")

    def try_acquire(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens: 0.0 if granted, else the seconds to wait before retrying."""
        if cost > self.limit.burst:
            raise ValueError(f"cost {cost} exceeds the bucket's burst {self.limit.burst}")
        now_s = self._clock.monotonic()
        if now_s < self._blocked_until_s:
            return self._blocked_until_s - now_s
        elapsed_s = max(0.0, now_s - self._updated_s)
        self._tokens = min(self.limit.burst, self._tokens + elapsed_s * self.limit.rate_per_s)
        self._updated_s = now_s
        if self._tokens >= cost - _TOKEN_TOLERANCE:
            self._tokens = max(0.0, self._tokens - cost)
            return 0.0
        return (cost - self._tokens) / self.limit.rate_per_s

    def block_for(self, seconds: float) -> None:
        """Refuse everything for ``seconds`` (the venue said Retry-After); the bucket then
        refills from empty, so the restart is gentle rather than a full burst."""
        now_s = self._clock.monotonic()
        self._blocked_until_s = max(self._blocked_until_s, now_s + seconds)
        self._tokens = 0.0
        self._updated_s = self._blocked_until_s

    def _refill(self) -> None:
        now_s = self._clock.monotonic()
        if now_s > self._updated_s:  # never while blocked (updated_s is then in the future)
            elapsed_s = now_s - self._updated_s
            self._tokens = min(self.limit.burst, self._tokens + elapsed_s * self.limit.rate_per_s)
            self._updated_s = now_s

    def set_limit(self, limit: RateLimit) -> None:
        """Refill at the old rate up to now, then switch, keeping what was spent and not yet
        refilled as spent: a lowered limit takes effect at once (tokens may go below zero,
        a debt that refills first), a raised one refills at its own pace."""
        self._refill()
        spent = self.limit.burst - self._tokens
        self.limit = limit
        self._tokens = min(self._tokens, limit.burst - spent)

    def limit_to(self, tokens: float) -> None:
        """Hold at most ``tokens`` (the venue counted more use than this bucket knows of);
        never adds any. Below zero is a debt, refilled before anything is admitted."""
        self._refill()
        self._tokens = min(self._tokens, tokens)


def _spend(bucket: TokenBucket, cost: float, name: str) -> None:
    wait_s = bucket.try_acquire(cost)
    if wait_s > 0:
        raise TransientAdapterError(
            f"{name}: rate limit ({bucket.limit.published or 'local bucket'}); "
            f"retry in {wait_s:.3f} s",
            retry_after_s=wait_s,
        )


class RateLimitedBarSource:
    """A bar source behind a token bucket; refusals are TransientAdapterErrors."""

    def __init__(
        self,
        source: BarSource,
        bucket: TokenBucket,
        cost: float | Callable[[BarRequest], float] = 1.0,
    ) -> None:
        self._source = source
        self._bucket = bucket
        self._cost = cost

    @property
    def name(self) -> str:
        return self._source.name

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        cost = self._cost(request) if callable(self._cost) else self._cost
        _spend(self._bucket, cost, self.name)
        try:
            return self._source.fetch_bars(request)
        except TransientAdapterError as error:
            if error.retry_after_s:
                self._bucket.block_for(error.retry_after_s)
            raise


class RateLimitedQuoteSource:
    def __init__(self, source: QuoteSource, bucket: TokenBucket, cost: float = 1.0) -> None:
        self._source = source
        self._bucket = bucket
        self._cost = cost

    @property
    def name(self) -> str:
        return self._source.name

    def fetch_quote(self, symbol: str) -> Quote:
        _spend(self._bucket, self._cost, self.name)
        try:
            return self._source.fetch_quote(symbol)
        except TransientAdapterError as error:
            if error.retry_after_s:
                self._bucket.block_for(error.retry_after_s)
            raise
