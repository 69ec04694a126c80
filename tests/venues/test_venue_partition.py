"""`restricted_to(owns)` on every real adapter (`bastion serve --ray` partitions): a
partition that does not own the key's account sends the venue no account request, and
market data as before; the owner polls as a single service does. Counted on the
loopback stub the real SDK talks to."""

from __future__ import annotations

from typing import Any

from bastion.adapters.sources.base import BarRequest
from bastion.service.ray.accounts import AccountFilter
from tests.venues.conftest import FILLS_SINCE, VenueCase

ACCOUNT = "desk-7"


def _account_side(adapter: Any) -> list[tuple[Any, ...]]:
    """Every account-side call a partition's builder makes (as tuples)."""
    fills, trades = adapter.fetch_history(FILLS_SINCE, FILLS_SINCE)
    return [
        tuple(adapter.fetch_accounts()),
        tuple(adapter.fetch_positions()),
        tuple(adapter.fetch_fills(FILLS_SINCE)),
        (tuple(fills), tuple(trades)),
    ]


def test_restricted_when_account_not_owned_then_no_account_request_and_market_data_as_before(
    venue: VenueCase,
) -> None:
    """The key's account (configured) is another partition's: accounts, positions,
    fills and history come back empty without one request; a quote and bars are asked
    and answered as the adapter answers them."""
    adapter = venue.make(account_id=ACCOUNT)
    restricted = AccountFilter(adapter.restricted_to(lambda a: a != ACCOUNT), lambda a: False)
    assert _account_side(restricted) == [(), (), (), ((), ())]
    assert venue.stub.requests == []
    quote = restricted.fetch_quote(venue.facts.symbol)
    assert (quote.bid, quote.ask) == (venue.facts.bid, venue.facts.ask)
    assert restricted.fetch_bars(BarRequest(venue.facts.symbol, 60, limit=3))
    assert venue.stub.requests  # market data: asked


def test_restricted_when_account_owned_then_same_answers_as_the_adapter(
    venue: VenueCase,
) -> None:
    """The owner's adapter answers the account side as the adapter itself does, with
    the same requests."""
    plain = venue.make(account_id=ACCOUNT)
    expected = _account_side(plain)
    asked = venue.stub.paths()
    venue.stub.reset()
    owner = venue.make(account_id=ACCOUNT).restricted_to(lambda a: a == ACCOUNT)
    assert _account_side(owner) == expected
    assert venue.stub.paths() == asked
    assert expected[0] and expected[1]  # the stub's account and positions: not empty


def test_restricted_when_account_id_not_configured_then_one_request_says_whose_it_is(
    venue: VenueCase,
) -> None:
    """Without a configured id the venue says which account the key is: at most one
    request (Kraken needs none), then nothing more for a partition that does not own it."""
    restricted = venue.make().restricted_to(lambda _account: False)
    assert _account_side(restricted) == [(), (), (), ((), ())]
    assert len(venue.stub.requests) <= (0 if venue.name == "kraken" else 1)
    first = len(venue.stub.requests)
    assert _account_side(restricted) == [(), (), (), ((), ())]
    assert len(venue.stub.requests) == first
