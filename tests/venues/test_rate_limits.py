"""Binance's request weight: spent from a token bucket before every request (issue #12).

The adapter runs against its own loopback stub whose handlers count each request's
documented weight (binance-spot-api-docs rest-api.md) at the fake clock's time and answer
with ``X-MBX-USED-WEIGHT-1M`` as Binance does. ``sleep`` either moves the fake clock (a
real wait) or only records (time stands still); nothing ever sleeps for real.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bastion.adapters.binance import WEIGHTS, BinanceAdapter, BinanceConfig
from bastion.adapters.retry import RetryPolicy
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.sources.clock import ManualClock
from bastion.adapters.sources.ratelimit import RateLimit, TokenBucket
from bastion.adapters.throttle import RateLimited
from bastion.engine.errors import TransientAdapterError
from tests.venues import routes_binance
from tests.venues.conftest import NOW, SEED
from tests.venues.stub import Handler, Reply, Seen, VenueStub

# binance-spot-api-docs rest-api.md, each endpoint's "Weight:" as this adapter calls it.
DOCUMENTED_WEIGHT = {
    "/api/v3/account": 20,
    "/api/v3/ticker/price": 4,  # no symbol: every ticker
    "/api/v3/myTrades": 20,  # without orderId
    "/api/v3/klines": 2,
    "/api/v3/ticker/bookTicker": 2,  # one symbol
    "/api/v3/exchangeInfo": 20,
    "/api/v3/order": 4,  # query order (USER_DATA)
}
RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=8.0)
WINDOW_S = 60.0


@dataclass
class Ledger:
    """What the stub received: (fake monotonic time, weight) per request, and the header."""

    clock: ManualClock
    spent: list[tuple[float, int]] = field(default_factory=list)
    used_header: int | None = None  # when set, X-MBX-USED-WEIGHT-1M sends this instead

    def used_in_window(self) -> int:
        now_s = self.clock.monotonic()
        return sum(weight for at_s, weight in self.spent if at_s > now_s - WINDOW_S)

    def worst_window(self) -> int:
        """The most weight received in any 60 s window."""
        return max(
            (
                sum(w for at_s, w in self.spent if start_s <= at_s < start_s + WINDOW_S)
                for start_s, _ in self.spent
            ),
            default=0,
        )


def counted(handler: Handler, ledger: Ledger) -> Handler:
    def answer(stub: VenueStub, seen: Seen) -> Reply:
        ledger.spent.append((ledger.clock.monotonic(), DOCUMENTED_WEIGHT[seen.path]))
        reply = handler(stub, seen)
        used = ledger.used_header if ledger.used_header is not None else ledger.used_in_window()
        return dataclasses.replace(
            reply, headers={**reply.headers, "X-MBX-USED-WEIGHT-1M": str(used)}
        )

    return answer


@dataclass
class Rig:
    stub: VenueStub
    ledger: Ledger
    clock: ManualClock
    sleeps: list[float]
    moving: bool = True  # sleep moves the fake clock

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.moving:
            self.clock.advance(seconds)

    def adapter(self) -> BinanceAdapter:
        config = BinanceConfig(base_url=self.stub.url, retry=RETRY, fill_symbols=("BTCUSDT",))
        return BinanceAdapter.from_env(
            {"BINANCE_API_KEY": routes_binance.KEY, "BINANCE_API_SECRET": routes_binance.SECRET},
            config,
            clock=self.clock,
            sleep=self.sleep,
            random=random.Random(SEED).random,
        )

    def set_weight_limit(self, limit: int) -> None:
        self.stub.payloads["exchange_info"]["rateLimits"][0]["limit"] = limit

    def learn_limit(self, adapter: BinanceAdapter, limit: int) -> None:
        """Binance states ``limit``; a minute later the exchangeInfo call itself (20, kept
        as a debt against the new, smaller bucket) is paid back and the bucket is full."""
        self.set_weight_limit(limit)
        adapter.check_symbol("BTCUSDT")
        self.clock.advance(WINDOW_S)


@pytest.fixture
def rig() -> Iterator[Rig]:
    clock = ManualClock(NOW)
    ledger = Ledger(clock)
    routes = dataclasses.replace(
        routes_binance.ROUTES,
        routes={
            key: counted(handler, ledger) for key, handler in routes_binance.ROUTES.routes.items()
        },
    )
    stub = VenueStub(routes, routes_binance.KEY, routes_binance.SECRET)
    yield Rig(stub, ledger, clock, [])
    stub.close()


def sent(rig: Rig, path: str) -> int:
    return sum(seen.path == path for seen in rig.stub.requests)


def test_weights_when_compared_with_binance_docs_then_each_endpoint_has_its_weight() -> None:
    """The adapter's weight table is the one rest-api.md documents for the calls it makes."""
    assert {f"/api/v3/{name}": weight for name, weight in WEIGHTS.items()} == DOCUMENTED_WEIGHT


def test_polls_when_run_for_minutes_then_no_window_spends_more_than_the_stated_limit(
    rig: Rig,
) -> None:
    """Polls for three minutes against a limit of 120 weight/min: no 60 s window receives
    more than 120 (the exchangeInfo call that stated the limit included), and the throttle
    waited rather than failing."""
    rig.set_weight_limit(120)  # burst 12, 1.8 weight/s
    adapter = rig.adapter()
    adapter.check_symbol("BTCUSDT")
    for poll in range(150):
        if poll % 10 == 0:
            adapter.fetch_bars(BarRequest("BTCUSDT", 60, limit=3))
        adapter.fetch_quote("BTCUSDT")
        rig.clock.advance(0.25)  # the scheduler's cadence is faster than the budget
    assert rig.clock.monotonic() > 3 * WINDOW_S
    assert 100 < rig.ledger.worst_window() <= 120  # the budget was used, never overrun
    assert rig.sleeps and max(rig.sleeps) <= RETRY.max_delay_s
    adapter.close()


def test_fetch_when_bucket_empty_and_time_stands_still_then_rate_limited_naming_the_wait(
    rig: Rig,
) -> None:
    """Beyond the retry loop's patience the call fails as RateLimited (transient), naming
    the wait, and the request is never sent."""
    rig.moving = False
    adapter = rig.adapter()
    rig.learn_limit(adapter, 60)  # burst 6: three quotes of weight 2
    for _ in range(3):
        adapter.fetch_quote("BTCUSDT")
    with pytest.raises(RateLimited, match=r"retry in 2\.222 s") as caught:
        adapter.fetch_quote("BTCUSDT")
    assert isinstance(caught.value, TransientAdapterError)
    assert caught.value.retry_after_s == pytest.approx(2 / 0.9)
    assert "request weight" in str(caught.value) and "exchangeInfo" in str(caught.value)
    assert sent(rig, "/api/v3/ticker/bookTicker") == 3
    adapter.close()


def test_fetch_when_bucket_empty_and_wait_within_bound_then_waits_and_succeeds(
    rig: Rig,
) -> None:
    """An empty bucket is waited out through the injected sleep, then the request goes."""
    adapter = rig.adapter()
    rig.learn_limit(adapter, 60)
    for _ in range(4):
        adapter.fetch_quote("BTCUSDT")
    assert sent(rig, "/api/v3/ticker/bookTicker") == 4
    assert len(rig.sleeps) == 1 and rig.sleeps[0] >= 2 / 0.9
    adapter.close()


def test_check_symbol_when_limit_lowered_then_bucket_shrinks_at_once(rig: Rig) -> None:
    """A limit lowered in exchangeInfo replaces the published 6,000 for the very next call:
    an account read (24 weight) fits the published burst of 600 but not the new one of 20,
    less the 44 already spent."""
    rig.moving = False
    adapter = rig.adapter()
    adapter.fetch_accounts()  # 20 + 4 from the published budget: fine
    rig.set_weight_limit(200)  # burst 20
    adapter.check_symbol("BTCUSDT")
    with pytest.raises(RateLimited, match="200 request weight per 60 s"):
        adapter.fetch_accounts()
    assert sent(rig, "/api/v3/account") == 1
    adapter.close()


def test_fetch_when_429_with_retry_after_then_bucket_blocked_for_it(rig: Rig) -> None:
    """Binance's 429 Retry-After (beyond the retry cap) blocks the bucket: the next call is
    refused locally, unsent, until the wait has passed; then it goes."""
    rig.moving = False
    adapter = rig.adapter()
    rig.stub.fail(429, times=1, retry_after=30)
    with pytest.raises(TransientAdapterError) as caught:
        adapter.fetch_quote("BTCUSDT")
    assert not isinstance(caught.value, RateLimited) and caught.value.retry_after_s == 30
    rig.clock.advance(20)
    with pytest.raises(RateLimited, match=r"retry in 10\.000 s"):  # over the 8 s cap: at once
        adapter.fetch_quote("BTCUSDT")
    assert len(rig.stub.requests) == 1 and rig.sleeps == []
    rig.clock.advance(10 + 2 / adapter.request_weight_limit().rate_per_s)
    assert adapter.fetch_quote("BTCUSDT").bid == routes_binance.FACTS.bid
    adapter.close()


def test_fetch_when_venue_reports_weight_used_by_others_then_bucket_drained_to_match(
    rig: Rig,
) -> None:
    """X-MBX-USED-WEIGHT-1M counts every process on the IP: when it says 5,399 of 6,000 are
    used, only 1 of the 5,400 budget is left, so the next quote (2) is not sent."""
    rig.moving = False
    adapter = rig.adapter()
    rig.ledger.used_header = 5399
    adapter.fetch_quote("BTCUSDT")
    with pytest.raises(RateLimited):
        adapter.fetch_quote("BTCUSDT")
    assert sent(rig, "/api/v3/ticker/bookTicker") == 1
    adapter.close()


def test_fetch_when_venue_reports_little_used_then_bucket_not_refilled_by_it(rig: Rig) -> None:
    """The header only ever takes tokens away: a low count never adds to the bucket."""
    rig.moving = False
    adapter = rig.adapter()
    rig.learn_limit(adapter, 60)  # burst 6
    rig.ledger.used_header = 0
    for _ in range(3):
        adapter.fetch_quote("BTCUSDT")
    with pytest.raises(RateLimited):
        adapter.fetch_quote("BTCUSDT")
    adapter.close()


def test_fetch_fills_when_budget_is_exactly_its_weight_then_next_request_refused(
    rig: Rig,
) -> None:
    """fetch_fills pays for every request it sends (account 20, myTrades 20, prices 4 for
    the BNB fee): a burst of exactly 44 admits it and nothing after it."""
    rig.moving = False
    adapter = rig.adapter()
    rig.learn_limit(adapter, 440)  # burst 44
    assert len(adapter.fetch_fills(NOW.replace(hour=0))) == 2
    assert rig.stub.paths()[1:] == ["/api/v3/account", "/api/v3/myTrades", "/api/v3/ticker/price"]
    with pytest.raises(RateLimited, match=r"2 request weight needed"):
        adapter.fetch_quote("BTCUSDT")
    adapter.close()


def test_token_bucket_when_limit_lowered_then_what_was_spent_stays_spent() -> None:
    """set_limit keeps the unrefilled spend as a debt; limit_to only ever removes tokens."""
    clock = ManualClock(NOW)
    bucket = TokenBucket(RateLimit(rate_per_s=10, burst=100), clock)
    assert bucket.try_acquire(80) == 0.0
    bucket.set_limit(RateLimit(rate_per_s=1, burst=10))  # 80 spent: 10 - 80 = -70
    assert bucket.try_acquire(1) == pytest.approx(71.0)
    bucket.limit_to(50)  # more than it holds: nothing added
    assert bucket.try_acquire(1) == pytest.approx(71.0)
    clock.advance(71)
    assert bucket.try_acquire(1) == 0.0
    bucket.set_limit(RateLimit(rate_per_s=10, burst=100))  # raised: refills at its own pace
    assert bucket.try_acquire(1) == pytest.approx(0.1)
