"""What every venue adapter does alike — one body per behaviour, run for each venue.

The venue's real SDK talks to its loopback stub; ``venue.facts`` says what the stub's
documented payloads contain.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from decimal import Decimal

import pytest

from bastion.adapters.sources.base import BarRequest
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from tests.venues.conftest import FILLS_SINCE, NOW, RETRY, Adapter, VenueCase
from tests.venues.stub import NotJson

FETCHES: dict[str, Callable[[Adapter, str], object]] = {
    "accounts": lambda adapter, _symbol: adapter.fetch_accounts(),
    "positions": lambda adapter, _symbol: adapter.fetch_positions(),
    "bars": lambda adapter, symbol: adapter.fetch_bars(BarRequest(symbol, 60, limit=3)),
    "quote": lambda adapter, symbol: adapter.fetch_quote(symbol),
    "fills": lambda adapter, _symbol: adapter.fetch_fills(FILLS_SINCE),
}


def fetch(venue: VenueCase, kind: str, adapter: Adapter | None = None) -> object:
    return FETCHES[kind](adapter or venue.adapter, venue.facts.symbol)


# -- the happy path --------------------------------------------------------------------


def test_construct_when_built_then_no_request_is_sent(venue: VenueCase) -> None:
    """Building an adapter (and the SDK client inside it) stays off the network."""
    venue.make()
    assert venue.stub.requests == []


def test_fetch_accounts_when_venue_answers_then_one_account_valued_in_decimal(
    venue: VenueCase,
) -> None:
    """The documented account becomes one VenueAccount with Decimal equity and cash."""
    (account,) = venue.adapter.fetch_accounts()
    assert account.equity_usd == venue.facts.equity_usd
    assert account.cash_usd == venue.facts.cash_usd
    assert isinstance(account.equity_usd, Decimal)
    assert account.type == "gen"
    assert account.id


def test_fetch_accounts_when_type_and_id_configured_then_account_carries_them(
    venue: VenueCase,
) -> None:
    """The account type (gen/rev/com) and id come from the adapter config."""
    adapter = venue.make(account_type="rev", account_id="desk-7")
    (account,) = adapter.fetch_accounts()
    assert (account.type, account.id) == ("rev", "desk-7")


def test_fetch_positions_when_venue_answers_then_positive_quantities_and_strategy(
    venue: VenueCase,
) -> None:
    """Positions have positive quantities, a side, Decimal prices and the default strategy."""
    positions = venue.adapter.fetch_positions()
    assert tuple(position.symbol for position in positions) == venue.facts.position_symbols
    for position in positions:
        assert position.quantity > 0
        assert position.side in ("long", "short")
        assert isinstance(position.price_usd, Decimal) and position.price_usd > 0
        assert position.strategy_id == "core"
        assert position.account_id == venue.adapter.fetch_accounts()[0].id


def test_fetch_bars_when_live_request_then_closed_bars_oldest_first(venue: VenueCase) -> None:
    """The latest closed bars come back oldest first, in Decimal, none still open."""
    bars = venue.adapter.fetch_bars(BarRequest(venue.facts.symbol, 60, limit=3))
    assert len(bars) == 3
    stamps = [bar.timestamp for bar in bars]
    assert stamps == sorted(stamps)
    assert all((NOW - stamp).total_seconds() >= 60 for stamp in stamps)
    assert all(isinstance(bar.close, Decimal) for bar in bars)
    assert all(bar.low <= min(bar.open, bar.close) <= bar.high for bar in bars)


def test_fetch_quote_when_venue_answers_then_bid_and_ask_in_decimal(venue: VenueCase) -> None:
    """The quote carries the documented best bid and ask and a time-zone-aware timestamp."""
    quote = venue.adapter.fetch_quote(venue.facts.symbol)
    assert (quote.bid, quote.ask) == (venue.facts.bid, venue.facts.ask)
    assert quote.timestamp.utcoffset() is not None


def test_fetch_fills_when_since_given_then_later_fills_oldest_first(venue: VenueCase) -> None:
    """Only fills at or after ``since`` come back, oldest first, with buy/sell sides."""
    fills = venue.adapter.fetch_fills(FILLS_SINCE)
    assert tuple(fill.id for fill in fills) == venue.facts.fill_ids
    assert all(fill.filled_at >= FILLS_SINCE for fill in fills)
    assert all(fill.side in ("buy", "sell") and fill.quantity > 0 for fill in fills)
    assert all(fill.strategy_id == "core" for fill in fills)


def test_fetch_bars_when_interval_unsupported_then_fatal_error_naming_it(venue: VenueCase) -> None:
    """An interval the venue has no bars for is a fatal config error, before any request."""
    with pytest.raises(AdapterError, match="7 s") as caught:
        venue.adapter.fetch_bars(BarRequest(venue.facts.symbol, 7, limit=3))
    assert not isinstance(caught.value, TransientAdapterError)
    assert venue.stub.requests == []


# -- credentials -----------------------------------------------------------------------


def wrong_key(venue: VenueCase) -> Adapter:
    return venue.make(
        {venue.facts.key_var: "wrong-key", venue.facts.secret_var: venue.facts.secret}
    )


@pytest.mark.parametrize("kind", ["accounts", "positions", "fills"])
def test_fetch_when_key_rejected_then_fatal_error_naming_the_variables(
    venue: VenueCase, kind: str
) -> None:
    """Wrong credentials are fatal (never retried) and the message names the env vars."""
    with pytest.raises(AdapterError) as caught:
        fetch(venue, kind, wrong_key(venue))
    assert not isinstance(caught.value, TransientAdapterError)
    assert venue.facts.key_var in str(caught.value)
    assert venue.sleeps == []


@pytest.mark.parametrize("kind", ["bars", "quote"])
def test_fetch_market_data_when_key_rejected_then_fatal_only_where_data_needs_a_key(
    venue: VenueCase, kind: str
) -> None:
    """Alpaca's market data needs the key; Binance's and Kraken's is public and still works."""
    adapter = wrong_key(venue)
    if venue.facts.market_data_needs_key:
        with pytest.raises(AdapterError, match=venue.facts.key_var):
            fetch(venue, kind, adapter)
    else:
        assert fetch(venue, kind, adapter)


@pytest.mark.parametrize("status", [401, 403])
def test_fetch_when_http_auth_status_then_fatal_error_without_retry(
    venue: VenueCase, status: int
) -> None:
    """401 / 403 from the venue or a proxy in front of it is fatal and not retried."""
    venue.stub.fail(status)
    with pytest.raises(AdapterError, match=f"HTTP {status}") as caught:
        venue.adapter.fetch_accounts()
    assert not isinstance(caught.value, TransientAdapterError)
    assert len(venue.stub.requests) == 1
    assert venue.sleeps == []


@pytest.mark.parametrize("missing", ["key", "secret", "both"])
def test_from_env_when_variable_missing_then_fatal_error_naming_it(
    venue: VenueCase, missing: str
) -> None:
    """A missing or blank credential variable fails at startup, naming the variable."""
    environ = {venue.facts.key_var: venue.facts.key, venue.facts.secret_var: venue.facts.secret}
    names = {"key": [venue.facts.key_var], "secret": [venue.facts.secret_var]}
    gone = names.get(missing, [venue.facts.key_var, venue.facts.secret_var])
    for name in gone:
        environ[name] = "  " if name == venue.facts.secret_var else ""
    with pytest.raises(AdapterError) as caught:
        venue.make(environ)
    assert all(name in str(caught.value) for name in gone)
    assert venue.facts.key not in str(caught.value)


def test_repr_when_printed_then_no_credential_shows(venue: VenueCase) -> None:
    """Neither the key nor the secret appears in the adapter's repr or str."""
    for text in (repr(venue.adapter), str(venue.adapter)):
        assert venue.facts.key not in text
        assert venue.facts.secret not in text


def test_errors_when_raised_then_no_credential_in_any_message(venue: VenueCase) -> None:
    """Every error's message and printed traceback is free of the key and the secret."""
    messages: list[str] = []

    def collect(error: BaseException) -> None:
        """The message and the traceback as logging would print them (causes included)."""
        messages.append(str(error))
        messages.append("".join(traceback.format_exception(error)))

    for status in (401, 403, 429, 500):
        venue.stub.fail(
            status, body={"code": 1, "message": venue.facts.key, "msg": venue.facts.secret}
        )
        with pytest.raises(AdapterError) as caught:
            venue.adapter.fetch_accounts()
        collect(caught.value)
    venue.stub.reset()
    with pytest.raises(AdapterError) as caught:
        venue.make(
            {venue.facts.key_var: "wrong", venue.facts.secret_var: venue.facts.secret}
        ).fetch_accounts()
    collect(caught.value)
    assert messages
    assert not any(
        venue.facts.key in message or venue.facts.secret in message for message in messages
    )


# -- transient failures: 429, 5xx, timeouts ---------------------------------------------


def test_fetch_when_429_once_with_retry_after_then_waits_that_long_and_succeeds(
    venue: VenueCase,
) -> None:
    """A 429 with Retry-After is retried after at least that wait, then succeeds."""
    venue.stub.fail(429, times=1, retry_after=3)
    (account,) = venue.adapter.fetch_accounts()
    assert account.equity_usd == venue.facts.equity_usd
    assert len(venue.sleeps) == 1 and venue.sleeps[0] >= 3


def test_fetch_when_429_persists_then_transient_error_carrying_retry_after(
    venue: VenueCase,
) -> None:
    """A 429 that does not clear ends in a TransientAdapterError with the venue's wait."""
    venue.stub.fail(429, retry_after=2)
    with pytest.raises(TransientAdapterError) as caught:
        venue.adapter.fetch_accounts()
    assert caught.value.retry_after_s == 2
    assert len(venue.stub.requests) == RETRY.max_attempts


def test_fetch_when_retry_after_exceeds_max_delay_then_raised_without_sleeping(
    venue: VenueCase,
) -> None:
    """A Retry-After beyond the policy's max delay goes back to the caller at once."""
    venue.stub.fail(429, retry_after=120)
    with pytest.raises(TransientAdapterError) as caught:
        venue.adapter.fetch_accounts()
    assert caught.value.retry_after_s == 120
    assert venue.sleeps == []
    assert len(venue.stub.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fetch_when_5xx_twice_then_jittered_backoff_then_success(
    venue: VenueCase, status: int
) -> None:
    """Two 5xx answers are retried with growing, jittered waits; the third try succeeds."""
    venue.stub.fail(status, times=2)
    venue.adapter.fetch_accounts()
    first, second = venue.sleeps
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0
    assert first != second * 0.5  # jittered, not a fixed doubling


def test_fetch_when_seeded_random_then_waits_are_reproducible(venue: VenueCase) -> None:
    """The same seed gives the same waits: the backoff is deterministic under test."""
    venue.stub.fail(503, times=2)
    venue.adapter.fetch_accounts()
    venue.stub.fail(503, times=2)
    venue.make().fetch_accounts()
    assert venue.sleeps[:2] == venue.sleeps[2:]


def test_fetch_when_5xx_persists_then_transient_error_after_max_attempts(venue: VenueCase) -> None:
    """A 503 that never clears is tried max_attempts times, then raised as transient."""
    venue.stub.fail(503)
    with pytest.raises(TransientAdapterError, match="HTTP 503"):
        venue.adapter.fetch_accounts()
    assert len(venue.sleeps) == RETRY.max_attempts - 1


def test_fetch_when_venue_too_slow_then_transient_timeout_error(venue: VenueCase) -> None:
    """An answer slower than timeout_s is a TransientAdapterError saying it timed out."""
    adapter = venue.make(timeout_s=0.15, retry=RETRY.__class__(max_attempts=2))
    venue.stub.slow(2.0)
    with pytest.raises(TransientAdapterError, match="timeout"):
        adapter.fetch_quote(venue.facts.symbol)
    assert len(venue.stub.requests) == 2


# -- malformed payloads ------------------------------------------------------------------


# A position row is read alone: its problems are that row's (test_live_scenarios below).
STRICT = [kind for kind in FETCHES if kind != "positions"]


@pytest.mark.parametrize("kind", STRICT)
def test_fetch_when_field_missing_then_data_error_naming_it(venue: VenueCase, kind: str) -> None:
    """A payload missing a field is a DataError naming that field, never a zero."""
    broken = venue.facts.malformed[kind]
    venue.stub.delete_field(broken.path)
    with pytest.raises(DataError, match=broken.missing_says):
        fetch(venue, kind)
    assert venue.sleeps == []


@pytest.mark.parametrize("kind", STRICT)
def test_fetch_when_field_holds_garbage_then_data_error_naming_it(
    venue: VenueCase, kind: str
) -> None:
    """A field holding text where a number belongs is a DataError naming the field."""
    broken = venue.facts.malformed[kind]
    venue.stub.set_field(broken.path, "n/a")
    with pytest.raises(DataError, match=broken.garbage_says):
        fetch(venue, kind)


@pytest.mark.parametrize("kind", STRICT)
def test_fetch_when_field_has_wrong_json_type_then_data_error(venue: VenueCase, kind: str) -> None:
    """A field holding an object or a boolean where a number belongs is a DataError."""
    broken = venue.facts.malformed[kind]
    venue.stub.set_field(broken.path, {"value": 1})
    with pytest.raises(DataError, match=broken.garbage_says):
        fetch(venue, kind)


def test_fetch_when_body_is_not_json_then_data_error(venue: VenueCase) -> None:
    """A 200 answer whose body is an HTML page is a DataError, not retried."""
    venue.stub.fail(200, times=1, body=NotJson("<html>maintenance</html>"))
    with pytest.raises(DataError, match="not JSON"):
        venue.adapter.fetch_accounts()
    assert venue.sleeps == []
