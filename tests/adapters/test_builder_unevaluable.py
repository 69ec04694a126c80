"""One bad record is one unevaluable subject, not a blank snapshot (issue #12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.venue import (
    Fill,
    UnknownSymbolError,
    VenueAccount,
    VenuePosition,
    unreadable_position,
)
from bastion.engine.indicators.quality import Bar
from tests.adapters.test_builder import (
    ACCOUNT,
    CALM,
    T0,
    TINY,
    build,
    fallback_fields,
    flat,
    position,
    quote,
)


def test_build_when_venue_values_position_at_zero_then_priced_from_quote() -> None:
    """Dust (value ÷ volume = 0) takes the quote's price, listed as a fallback."""
    dust = position(id="dust", price_usd=Decimal(0), quantity=Decimal("0.0000001"))
    result = build({"SPY": flat()}, positions=[dust, position(id="p-ok")])
    priced = {p.id: p.price_usd for p in result.snapshot.positions}
    assert priced["dust"] == Decimal(100)  # the quote's last
    assert result.unevaluable == ()
    assert "positions[dust].price_usd" in fallback_fields(result)


def test_build_when_row_unreadable_then_left_out_and_listed_with_its_problem() -> None:
    """A row the adapter could not read is listed, with the adapter's words; others stay."""
    bad = unreadable_position(
        id="bad", account_id="acc-1", symbol="SPY", asset_class="equity", problem="'qty' is missing"
    )
    result = build({"SPY": flat()}, positions=[bad, position(id="p-ok")])
    assert [p.id for p in result.snapshot.positions] == ["p-ok"]
    (left_out,) = result.unevaluable
    assert (left_out.id, left_out.account_id, left_out.reason) == (
        "bad",
        "acc-1",
        "'qty' is missing",
    )
    assert "position bad (SPY, account acc-1)" in str(left_out)


def test_build_when_position_has_no_market_data_then_unevaluable_not_a_failed_build() -> None:
    """A symbol with no bars or quote makes its position unevaluable, not the snapshot."""
    result = build({"SPY": flat()}, positions=[position(id="ghost", symbol="GHST"), position()])
    assert [p.id for p in result.snapshot.positions] == ["p-1"]
    assert "no market data for GHST" in result.unevaluable[0].reason


def test_build_when_entry_price_zero_then_unevaluable() -> None:
    """No usable cost: the breach from entry cannot be measured, so it is not guessed."""
    result = build({"SPY": flat()}, positions=[position(entry_price_usd=Decimal(0))])
    assert result.snapshot.positions == ()
    assert "entry_price_usd is 0" in result.unevaluable[0].reason


def test_symbols_for_when_no_benchmark_then_only_position_symbols() -> None:
    """`benchmark: none` adds nothing to the poll; correlations fall back, saying why."""
    builder = SnapshotBuilder(replace(TINY, benchmark=None))
    assert builder.symbols_for([position(symbol="AAPL")]) == ["AAPL"]
    result = build({"AAPL": flat()}, config=replace(TINY, benchmark=None))
    reasons = {f.where: f.reason for f in result.fallbacks}
    assert "no benchmark is configured" in reasons["market[AAPL].correlation"]


class _Venue:
    """A venue that lists SPY only: anything else is its unknown-symbol error."""

    name = "fake"

    def __init__(self, positions: Sequence[VenuePosition]) -> None:
        self.positions = positions
        self.asked: list[str] = []

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        return [ACCOUNT]

    def fetch_positions(self) -> Sequence[VenuePosition]:
        return self.positions

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        return []

    def _listed(self, symbol: str) -> None:
        self.asked.append(symbol)
        if symbol != "SPY":
            raise UnknownSymbolError(
                f"fake GET /quote {symbol}: unknown symbol", venue="fake", symbol=symbol
            )

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        self._listed(request.symbol)
        return flat()

    def fetch_quote(self, symbol: str) -> Quote:
        self._listed(symbol)
        return quote(symbol)


def test_poll_when_venue_does_not_list_a_symbol_then_it_alone_is_set_aside() -> None:
    """UnknownSymbolError for one symbol: set aside with the venue's words; the rest polled."""
    venue = _Venue([position(id="p-1"), position(id="gone", symbol="DELISTED")])
    builder = SnapshotBuilder(TINY)
    poll = builder.poll(venue, now=T0, state=BuilderState())
    assert set(poll.bars) == {"SPY"}
    assert "fake GET /quote DELISTED" in poll.unavailable["DELISTED"]
    result = builder.build(poll, now=T0, state=BuilderState(), regime=CALM)
    assert [p.id for p in result.snapshot.positions] == ["p-1"]
    assert [u.id for u in result.unevaluable] == ["gone"]
    assert "unknown symbol" in result.unevaluable[0].reason
