"""ChainCache: each underlying's chain read at most once per REFRESH_S, failures retried
after RETRY_S, the last good chain kept through a failed refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.adapters.option_chains import REFRESH_S, RETRY_S, ChainCache, ChainRead
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.snapshot.model import OptionChain

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


class Venue:
    """Counts reads; `down` makes every read fail."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.reads, self.down = clock, [], False

    def read(self, underlying: str) -> ChainRead:
        self.reads.append(underlying)
        if self.down:
            return None, [(f"option_chains[{underlying!r}]", "venue down")]
        return OptionChain(underlying=underlying, as_of=self.clock.now(), contracts=()), []


def test_fetch_when_new_underlying_then_only_it_is_read() -> None:
    """A second underlying is read at once; the first stays cached."""
    clock = ManualClock(START)
    venue, cache = Venue(clock), ChainCache(clock.now)
    cache.fetch(["SPY"], venue.read)
    clock.advance(60)
    fetched = cache.fetch(["SPY", "QQQ"], venue.read)
    assert venue.reads == ["SPY", "QQQ"]
    assert fetched.chains["SPY"].as_of == START
    assert fetched.chains["QQQ"].as_of == START + timedelta(seconds=60)


def test_fetch_when_first_read_fails_then_left_out_and_retried_after_retry_s() -> None:
    """No chain yet and the venue fails: left out with the reason, asked again only
    after RETRY_S (not on every poll)."""
    clock = ManualClock(START)
    venue, cache = Venue(clock), ChainCache(clock.now)
    venue.down = True
    fetched = cache.fetch(["SPY"], venue.read)
    assert dict(fetched.chains) == {} and fetched.left_out == (
        ("option_chains['SPY']", "venue down"),
    )
    clock.advance(RETRY_S - 1)
    cache.fetch(["SPY"], venue.read)
    assert venue.reads == ["SPY"]
    venue.down = False
    clock.advance(1)
    assert cache.fetch(["SPY"], venue.read).chains["SPY"].as_of == clock.now()
    assert venue.reads == ["SPY", "SPY"]


def test_fetch_when_refresh_due_then_read_again_and_new_fetch() -> None:
    """After REFRESH_S the chain is read again; the fetch object changes with it."""
    clock = ManualClock(START)
    venue, cache = Venue(clock), ChainCache(clock.now)
    first = cache.fetch(["SPY"], venue.read)
    clock.advance(REFRESH_S)
    assert cache.fetch(["SPY"], venue.read) is not first
    assert venue.reads == ["SPY", "SPY"]


def test_fetch_when_held_chains_due_together_then_one_read_per_fetch_oldest_first() -> None:
    """Three chains read together fall due together: one is read again per fetch (the
    oldest first), so the reads spread over polls; one twice REFRESH_S old is read
    whatever."""
    clock = ManualClock(START)
    venue, cache = Venue(clock), ChainCache(clock.now)
    cache.fetch(["SPY", "QQQ", "AAPL"], venue.read)
    venue.reads.clear()
    clock.advance(REFRESH_S)
    cache.fetch(["SPY", "QQQ", "AAPL"], venue.read)
    assert len(venue.reads) == 1
    clock.advance(60)
    cache.fetch(["SPY", "QQQ", "AAPL"], venue.read)
    assert len(venue.reads) == 2 and len(set(venue.reads)) == 2
    clock.advance(2 * REFRESH_S)  # all three overdue: the two older ones at once
    venue.reads.clear()
    cache.fetch(["SPY", "QQQ", "AAPL"], venue.read)
    assert len(venue.reads) == 3
