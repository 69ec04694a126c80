"""Spend a venue's request budget from a :class:`TokenBucket` before every SDK request.

A venue adapter calls :meth:`RequestThrottle.spend` with the request's documented cost
(Binance's *request weight*; 1 elsewhere) at the start of every attempt, inside its retry
loop, so a retried request is paid for like the venue counts it. An empty bucket raises
:class:`RateLimited` (a :class:`TransientAdapterError` naming the wait in ``retry_after_s``)
before anything goes on the network. The retry loop then sleeps that wait (the injected
``sleep``) when it is within the retry policy's ``max_delay_s`` — the bound — and otherwise
hands the error back to the caller at once. Nothing is ever sent over the budget.

When the venue refuses anyway (429 / 418 with ``Retry-After``: another process shares the
key or the IP) and the error leaves the retry loop, :meth:`RequestThrottle.venue_refused`
blocks the bucket for that long, like :class:`RateLimitedBarSource` does for sources.
"""

from __future__ import annotations

from bastion.adapters.sources.ratelimit import RateLimit, TokenBucket
from bastion.engine.errors import TransientAdapterError


class RateLimited(TransientAdapterError):
    """Refused locally: the request was not sent. ``retry_after_s`` is the wait."""


class RequestThrottle:
    """One venue's budget; ``unit`` names what a request costs (request weight, requests)."""

    def __init__(self, bucket: TokenBucket, venue: str, unit: str = "requests") -> None:
        self._bucket = bucket
        self._venue = venue
        self._unit = unit

    @property
    def limit(self) -> RateLimit:
        return self._bucket.limit

    def spend(self, cost: float, where: str) -> None:
        """Take ``cost`` from the bucket, or raise :class:`RateLimited` naming the wait."""
        wait_s = self._bucket.try_acquire(cost)
        if wait_s > 0:
            raise RateLimited(
                f"{where}: not sent, {self._venue}'s local budget is spent ({cost:g} "
                f"{self._unit} needed; budget {self.limit.published or 'local bucket'}); "
                f"retry in {wait_s:.3f} s",
                retry_after_s=wait_s,
            )

    def venue_refused(self, error: TransientAdapterError) -> None:
        """The venue's own ``Retry-After`` (not a local refusal) blocks the bucket."""
        if error.retry_after_s and not isinstance(error, RateLimited):
            self._bucket.block_for(error.retry_after_s)

    def relimit(self, limit: RateLimit) -> None:
        """A new limit (the venue stated its own): never more tokens than the new burst."""
        self._bucket.set_limit(limit)

    def at_most(self, tokens: float) -> None:
        """The venue counts more use than the bucket knows: hold no more than ``tokens``."""
        self._bucket.limit_to(tokens)
