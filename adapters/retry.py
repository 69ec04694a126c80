"""Retry a venue call on :class:`TransientAdapterError` with exponential backoff and jitter.

The wait before attempt ``n + 1`` is ``cap × (1/2 + random/2)`` with
``cap = min(max_delay_s, base_delay_s × 2^(n-1))`` ("equal jitter": never less than half
the cap, so a burst of clients spreads out without any of them retrying at once).
When the venue said ``Retry-After``, the wait is at least that long. A ``Retry-After``
longer than ``max_delay_s`` is not slept through here: the error goes back to the caller
at once (the scheduler's poll job, whose data then ages towards stale) rather than
blocking a poll for minutes.

``sleep`` and ``random`` are injected: tests pass a list's ``append`` and a seeded
``random.Random(...).random``, so nothing sleeps and every wait is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from bastion.engine.errors import TransientAdapterError

T = TypeVar("T")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be ≥ 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(
                f"need 0 ≤ base_delay_s ≤ max_delay_s, got {self.base_delay_s} and "
                f"{self.max_delay_s}"
            )

    def backoff_s(self, failed_attempts: int, random_ratio: float) -> float:
        """The jittered wait after ``failed_attempts`` failures (1, 2, ...)."""
        cap_s = min(self.max_delay_s, self.base_delay_s * 2.0 ** (failed_attempts - 1))
        return cap_s * (0.5 + 0.5 * random_ratio)


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], object],
    random: Callable[[], float],
    venue: str,
) -> T:
    """``call()``, retried on transient failures; other errors propagate at once."""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return call()
        except TransientAdapterError as error:
            if attempt == policy.max_attempts:
                raise
            wait_s = policy.backoff_s(attempt, random())
            if error.retry_after_s is not None:
                if error.retry_after_s > policy.max_delay_s:
                    raise
                wait_s = max(wait_s, error.retry_after_s)
            log.warning(
                "venue_request_retried",
                venue=venue,
                attempt=attempt,
                wait_s=round(wait_s, 3),
                reason=str(error),
            )
            sleep(wait_s)
    raise AssertionError("unreachable: the last attempt returns or raises")
