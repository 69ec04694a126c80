"""Sources: failover on errors and on bad data, TTL cache, token buckets — all on a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.sources import (
    ALPACA,
    BINANCE,
    KRAKEN_PUBLIC,
    VENUE_RATE_LIMITS,
    BarRequest,
    CachedBarSource,
    CachedQuoteSource,
    FailoverBarSource,
    FailoverQuoteSource,
    ManualClock,
    Quote,
    RateLimit,
    RateLimitedBarSource,
    TokenBucket,
    TtlCache,
)
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from bastion.engine.indicators.quality import Bar

NOW = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
HOURLY = BarRequest("BTC-USD", 3600, limit=24)


def hourly_bars(last_open: datetime, count: int = 24) -> tuple[Bar, ...]:
    """Valid hourly bars whose last one opened at ``last_open``."""
    bars = []
    for i in range(count):
        stamp = last_open - timedelta(hours=count - 1 - i)
        close = Decimal(100) + Decimal(i % 3) / 10
        bars.append(Bar(stamp, close, close + 1, close - 1, close, Decimal(5)))
    return tuple(bars)


FRESH = hourly_bars(NOW - timedelta(hours=1))  # the bar that closed at NOW


class FakeBarSource:
    """Answers from a script: each item is bars to return or an exception to raise."""

    def __init__(self, name: str, *script: Sequence[Bar] | Exception) -> None:
        self.name = name
        self.script = list(script)
        self.calls = 0

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        self.calls += 1
        item = self.script[min(self.calls, len(self.script)) - 1]
        if isinstance(item, Exception):
            raise item
        return item


class FakeQuoteSource:
    def __init__(self, name: str, quote: Quote | Exception) -> None:
        self.name = name
        self.quote = quote

    def fetch_quote(self, symbol: str) -> Quote:
        if isinstance(self.quote, Exception):
            raise self.quote
        return self.quote


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


# -- failover ------------------------------------------------------------------------------


def test_failover_when_primary_healthy_then_secondary_never_called(clock: ManualClock) -> None:
    """Priority order: the first good answer wins."""
    primary, secondary = FakeBarSource("alpaca", FRESH), FakeBarSource("binance", FRESH)
    result = FailoverBarSource([primary, secondary], clock=clock).fetch(HOURLY)
    assert result.source == "alpaca" and not result.degraded and secondary.calls == 0
    assert [a.outcome for a in result.attempts] == ["ok"]


def test_failover_when_primary_raises_then_secondary_answers_and_attempt_recorded(
    clock: ManualClock,
) -> None:
    """A transient error moves on to the next source and says why."""
    primary = FakeBarSource("alpaca", TransientAdapterError("HTTP 503"))
    result = FailoverBarSource([primary, FakeBarSource("binance", FRESH)], clock=clock).fetch(
        HOURLY
    )
    assert result.source == "binance"
    assert [(a.source, a.outcome, a.detail) for a in result.attempts] == [
        ("alpaca", "failed", "HTTP 503"),
        ("binance", "ok", ""),
    ]


def test_failover_when_primary_failed_then_cools_down_and_fails_back_after(
    clock: ManualClock,
) -> None:
    """A failed source sits out cooldown_s, then is tried first again."""
    primary = FakeBarSource("alpaca", AdapterError("401"), FRESH)
    failover = FailoverBarSource(
        [primary, FakeBarSource("binance", FRESH)], clock=clock, cooldown_s=30
    )
    failover.fetch(HOURLY)
    clock.advance(29.9)
    second = failover.fetch(HOURLY)
    assert second.attempts[0].outcome == "cooling_down" and primary.calls == 1
    clock.advance(0.1)
    third = failover.fetch(HOURLY)
    assert third.source == "alpaca" and primary.calls == 2


def test_failover_when_venue_sends_retry_after_longer_than_cooldown_then_honoured(
    clock: ManualClock,
) -> None:
    """Retry-After beats the default cooldown."""
    primary = FakeBarSource("alpaca", TransientAdapterError("429", retry_after_s=120), FRESH)
    failover = FailoverBarSource([primary, FakeBarSource("binance", FRESH)], clock=clock)
    failover.fetch(HOURLY)
    clock.advance(60)
    assert failover.fetch(HOURLY).source == "binance" and primary.calls == 1


def test_failover_when_primary_data_is_bad_then_next_source_used(clock: ManualClock) -> None:
    """An answer with a corrupt bar is rejected on quality, not trusted."""
    corrupt = list(FRESH)
    corrupt[5] = replace(corrupt[5], high=corrupt[5].low - 1)
    primary = FakeBarSource("alpaca", corrupt)
    result = FailoverBarSource([primary, FakeBarSource("kraken", FRESH)], clock=clock).fetch(HOURLY)
    assert result.source == "kraken" and not result.degraded
    assert result.attempts[0].outcome == "rejected"
    assert "high_inconsistent" in result.attempts[0].detail


def test_failover_when_primary_feed_stalled_then_fresh_secondary_wins(clock: ManualClock) -> None:
    """For a live request, stale bars fail the check: the feed that kept up wins."""
    stalled = hourly_bars(NOW - timedelta(hours=4))
    result = FailoverBarSource(
        [FakeBarSource("alpaca", stalled), FakeBarSource("binance", FRESH)], clock=clock
    ).fetch(HOURLY)
    assert result.source == "binance" and "stale" in result.attempts[0].detail


def test_failover_when_history_requested_then_old_bars_are_not_stale(clock: ManualClock) -> None:
    """A request with an end time is history: staleness does not apply."""
    old = hourly_bars(NOW - timedelta(days=30))
    request = replace(HOURLY, end=NOW - timedelta(days=30))
    result = FailoverBarSource([FakeBarSource("alpaca", old)], clock=clock).fetch(request)
    assert result.source == "alpaca" and not result.degraded and result.report.stale is None


def test_failover_when_every_answer_is_poor_then_best_returned_degraded(clock: ManualClock) -> None:
    """No good source: the highest score is returned, flagged, for the policy to judge."""
    one_bad, three_bad = list(FRESH), list(FRESH)
    for rows, bars in ((1, one_bad), (3, three_bad)):
        for i in range(rows):
            bars[i] = replace(bars[i], volume=Decimal(-1))
    result = FailoverBarSource(
        [FakeBarSource("alpaca", three_bad), FakeBarSource("binance", one_bad)], clock=clock
    ).fetch(HOURLY)
    assert result.degraded and result.source == "binance" and not result.report.usable
    assert result.bars == tuple(one_bad)


def test_failover_when_every_source_raises_then_transient_error_lists_them(
    clock: ManualClock,
) -> None:
    """Total failure is one TransientAdapterError naming each source and a retry time."""
    failover = FailoverBarSource(
        [
            FakeBarSource("alpaca", TransientAdapterError("timeout")),
            FakeBarSource("binance", DataError("klines payload is not JSON")),
        ],
        clock=clock,
        cooldown_s=15,
    )
    with pytest.raises(TransientAdapterError) as caught:
        failover.fetch(HOURLY)
    assert "alpaca: failed timeout" in str(caught.value)
    assert "binance: failed klines payload is not JSON" in str(caught.value)
    assert caught.value.retry_after_s == 15


def test_failover_when_all_sources_cooling_down_then_tries_them_anyway(clock: ManualClock) -> None:
    """Better a retry than nothing when every source is in the penalty box."""
    primary = FakeBarSource("alpaca", TransientAdapterError("503"), FRESH)
    failover = FailoverBarSource([primary], clock=clock)
    with pytest.raises(TransientAdapterError):
        failover.fetch(HOURLY)
    assert failover.fetch(HOURLY).source == "alpaca" and primary.calls == 2


def test_failover_when_source_has_a_bug_then_exception_propagates(clock: ManualClock) -> None:
    """Only adapter and data errors fail over; a KeyError is a bug to see."""
    failover = FailoverBarSource(
        [FakeBarSource("alpaca", KeyError("close")), FakeBarSource("binance", FRESH)], clock=clock
    )
    with pytest.raises(KeyError):
        failover.fetch(HOURLY)


def test_failover_when_names_repeat_or_list_empty_then_value_error(clock: ManualClock) -> None:
    """Attempts are reported by name, so names must be unique."""
    with pytest.raises(ValueError, match="unique"):
        FailoverBarSource([FakeBarSource("a", FRESH), FakeBarSource("a", FRESH)], clock=clock)
    with pytest.raises(ValueError, match="at least one"):
        FailoverBarSource([], clock=clock)


def test_failover_when_used_as_a_plain_bar_source_then_returns_bars(clock: ManualClock) -> None:
    """FailoverBarSource is itself a BarSource (so it can be cached or nested)."""
    failover = FailoverBarSource([FakeBarSource("alpaca", FRESH)], clock=clock)
    assert tuple(failover.fetch_bars(HOURLY)) == FRESH and failover.name == "failover(alpaca)"


def quote(bid: str, ask: str, age_s: float = 0.0) -> Quote:
    return Quote("AAPL", Decimal(bid), Decimal(ask), NOW - timedelta(seconds=age_s))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (quote("101", "100"), "crossed"),
        (quote("100", "100.1", age_s=6), "stale"),
        (quote("0", "100.1"), "non-positive"),
    ],
)
def test_quote_failover_when_primary_quote_untrustworthy_then_next_source(
    clock: ManualClock, bad: Quote, reason: str
) -> None:
    """Crossed, stale or non-positive quotes fail over like errors do."""
    good = quote("100", "100.1", age_s=1)
    result = FailoverQuoteSource(
        [FakeQuoteSource("alpaca", bad), FakeQuoteSource("kraken", good)], clock=clock, max_age_s=5
    ).fetch("AAPL")
    assert result.source == "kraken" and result.quote == good and not result.degraded
    assert reason in result.attempts[0].detail


def test_quote_failover_when_only_stale_quotes_then_degraded_with_problem(
    clock: ManualClock,
) -> None:
    """The last quote seen is returned, flagged with why it is not trusted."""
    result = FailoverQuoteSource(
        [FakeQuoteSource("alpaca", quote("100", "100.1", age_s=60))], clock=clock
    ).fetch("AAPL")
    assert result.degraded and result.problem is not None and "stale" in result.problem


# -- TTL cache -------------------------------------------------------------------------------


@pytest.mark.parametrize(("elapsed_s", "hit"), [(9.999, True), (10.0, False)])
def test_cache_when_entry_age_around_ttl_then_expires_exactly_at_ttl(
    clock: ManualClock, elapsed_s: float, hit: bool
) -> None:
    """Entries live strictly less than ttl_s."""
    source = FakeBarSource("alpaca", FRESH)
    cached = CachedBarSource(source, ttl_s=10, clock=clock)
    cached.fetch_bars(HOURLY)
    clock.advance(elapsed_s)
    cached.fetch_bars(HOURLY)
    assert source.calls == (1 if hit else 2)


def test_cache_when_request_differs_then_separate_entries(clock: ManualClock) -> None:
    """The request is the key: another symbol is another fetch."""
    source = FakeBarSource("alpaca", FRESH)
    cached = CachedBarSource(source, ttl_s=10, clock=clock)
    cached.fetch_bars(HOURLY)
    cached.fetch_bars(replace(HOURLY, symbol="ETH-USD"))
    assert source.calls == 2


def test_cache_when_source_fails_then_error_not_cached(clock: ManualClock) -> None:
    """Failures pass through and the next call asks again."""
    source = FakeBarSource("alpaca", TransientAdapterError("503"), FRESH)
    cached = CachedBarSource(source, ttl_s=10, clock=clock)
    with pytest.raises(TransientAdapterError):
        cached.fetch_bars(HOURLY)
    assert tuple(cached.fetch_bars(HOURLY)) == FRESH and source.calls == 2


def test_ttl_cache_when_full_then_least_recently_used_evicted(clock: ManualClock) -> None:
    """max_entries bounds memory; a read refreshes recency."""
    cache: TtlCache[str, int] = TtlCache(ttl_s=60, clock=clock, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_cached_quote_source_when_polled_twice_then_one_request(clock: ManualClock) -> None:
    """Quotes cache per symbol."""
    calls = []

    class Counting(FakeQuoteSource):
        def fetch_quote(self, symbol: str) -> Quote:
            calls.append(symbol)
            return super().fetch_quote(symbol)

    cached = CachedQuoteSource(Counting("alpaca", quote("1", "2")), ttl_s=1, clock=clock)
    cached.fetch_quote("AAPL")
    cached.fetch_quote("AAPL")
    assert calls == ["AAPL"]


# -- rate limits -----------------------------------------------------------------------------


def test_token_bucket_when_burst_spent_then_wait_is_exact_and_refill_admits(
    clock: ManualClock,
) -> None:
    """burst requests pass at once; the next waits 1/rate seconds."""
    bucket = TokenBucket(RateLimit(rate_per_s=2.0, burst=3), clock)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_acquire() == 0.0


def test_token_bucket_when_weighted_request_then_cost_spent(clock: ManualClock) -> None:
    """Binance-style weights: one weight-2 call spends two tokens."""
    bucket = TokenBucket(RateLimit(rate_per_s=1.0, burst=4), clock)
    assert bucket.try_acquire(2) == 0.0 and bucket.try_acquire(2) == 0.0
    assert bucket.try_acquire(2) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="exceeds"):
        bucket.try_acquire(5)


@pytest.mark.parametrize(
    ("name", "per_minute"), [("alpaca", 200), ("binance", 6000), ("kraken", 61)]
)
def test_venue_presets_when_worst_minute_then_within_published_limit(
    name: str, per_minute: float
) -> None:
    """burst + 60·rate never exceeds what the venue publishes per minute."""
    limit = VENUE_RATE_LIMITS[name]
    assert limit.max_admitted(60) <= per_minute
    assert limit in (ALPACA, BINANCE, KRAKEN_PUBLIC) and limit.published


def test_token_bucket_when_hammered_for_a_minute_then_admits_no_more_than_preset(
    clock: ManualClock,
) -> None:
    """Simulated: try every 10 ms for 60 s against Alpaca's preset; ≤ 200 pass."""
    bucket = TokenBucket(ALPACA, clock)
    admitted = 0
    for _ in range(6000):
        admitted += bucket.try_acquire() == 0.0
        clock.advance(0.01)
    assert 190 <= admitted <= 200


def test_rate_limited_source_when_bucket_empty_then_transient_error_and_failover(
    clock: ManualClock,
) -> None:
    """A local refusal is a TransientAdapterError, so failover moves on."""
    limited = RateLimitedBarSource(
        FakeBarSource("kraken", FRESH), TokenBucket(KRAKEN_PUBLIC, clock)
    )
    limited.fetch_bars(HOURLY)
    with pytest.raises(TransientAdapterError) as caught:
        limited.fetch_bars(HOURLY)
    assert caught.value.retry_after_s == pytest.approx(1.0)
    result = FailoverBarSource([limited, FakeBarSource("alpaca", FRESH)], clock=clock).fetch(HOURLY)
    assert result.source == "alpaca"


def test_rate_limited_source_when_venue_answers_429_then_bucket_blocked_for_retry_after(
    clock: ManualClock,
) -> None:
    """The venue's Retry-After blocks our bucket too: no request until it has passed."""
    inner = FakeBarSource("binance", TransientAdapterError("429", retry_after_s=30), FRESH)
    limited = RateLimitedBarSource(inner, TokenBucket(BINANCE, clock), cost=lambda r: 2)
    with pytest.raises(TransientAdapterError):
        limited.fetch_bars(HOURLY)
    clock.advance(29)
    with pytest.raises(TransientAdapterError, match=r"retry in 1\.000 s"):
        limited.fetch_bars(HOURLY)
    clock.advance(1 + 2 / BINANCE.rate_per_s)  # the block, then refill from empty for cost 2
    assert tuple(limited.fetch_bars(HOURLY)) == FRESH and inner.calls == 2


def test_manual_clock_when_moved_backwards_then_refused() -> None:
    """Monotonic means monotonic."""
    with pytest.raises(ValueError, match="backwards"):
        ManualClock(NOW).advance(-1)
