"""Fills → closed trades: FIFO pairing, partial fills, flips, fees, exit reasons, the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.trade_ledger import TradeLedger
from bastion.adapters.trade_pairing import exit_reason, merge_parts, pair_fills
from bastion.adapters.venue import Fill
from bastion.engine.snapshot.consistency import trade_problems

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def _fill(
    id_: str,
    side: str,
    quantity: str,
    price: str,
    minutes: int,
    *,
    fee: str = "0",
    order_id: str = "",
    reason: str = "signal",
    effect: str = "",
    symbol: str = "AAPL",
) -> Fill:
    return Fill(
        id=id_,
        account_id="acct",
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        price_usd=Decimal(price),
        filled_at=T0 + timedelta(minutes=minutes),
        fee_usd=Decimal(fee),
        strategy_id="core",
        order_id=order_id,
        exit_reason=reason,
        position_effect=effect,
    )


def test_pair_when_buy_then_sell_then_one_long_trade_with_profit() -> None:
    """A round trip is one long trade: entry, exit, profit in USD and per cent."""
    (trade,) = pair_fills(
        [_fill("b", "buy", "10", "100", 0), _fill("s", "sell", "10", "103", 5)]
    ).parts
    assert (trade.id, trade.side, trade.units) == ("s", "long", Decimal(10))
    assert (trade.entry_price_usd, trade.exit_price_usd) == (Decimal(100), Decimal(103))
    assert (trade.profit_usd, trade.profit_pct) == (Decimal(30), Decimal(3))
    assert (trade.opened_at, trade.closed_at) == (T0, T0 + timedelta(minutes=5))
    assert trade.strategy_id == "core"


def test_pair_when_two_lots_and_partial_sell_then_first_lot_closes_first() -> None:
    """FIFO: the oldest lot is closed first; the rest stays open."""
    fills = [
        _fill("b1", "buy", "5", "100", 0),
        _fill("b2", "buy", "5", "110", 1),
        _fill("s", "sell", "7", "120", 2),
    ]
    pairing = pair_fills(fills)
    (trade,) = pairing.parts
    # 5 @ 100 and 2 @ 110 → entry 102.857..., profit 5×20 + 2×10 = 120
    assert trade.units == 7
    assert trade.profit_usd == Decimal(120)
    assert trade.opened_at == T0
    (lot,) = pairing.open_lots[("acct", "AAPL")]
    assert (lot.fill_id, lot.units, lot.price_usd) == ("b2", Decimal(3), Decimal(110))


def test_pair_when_sell_exceeds_long_and_short_allowed_then_closes_and_opens_short() -> None:
    """A flip: the sell closes the long and the remainder opens a short."""
    fills = [
        _fill("b", "buy", "2", "100", 0),
        _fill("s", "sell", "5", "90", 1),
        _fill("c", "buy", "3", "80", 2),
    ]
    pairing = pair_fills(fills, allow_short=True)
    long_trade, short_trade = pairing.parts
    assert (long_trade.side, long_trade.units, long_trade.profit_usd) == (
        "long",
        Decimal(2),
        Decimal(-20),
    )
    assert (short_trade.side, short_trade.units, short_trade.profit_usd) == (
        "short",
        Decimal(3),
        Decimal(30),
    )
    assert short_trade.profit_pct == Decimal("11.1111")
    assert dict(pairing.open_lots) == {}


def test_pair_when_sell_without_lots_and_no_short_then_unmatched() -> None:
    """Spot: a sell with nothing on record was opened before the history; no trade."""
    sell = _fill("s", "sell", "1", "100", 0)
    pairing = pair_fills([sell])
    assert pairing.parts == ()
    assert pairing.unmatched == (sell,)
    assert dict(pairing.open_lots) == {}


def test_pair_when_venue_says_sell_opens_then_short_even_if_not_allowed() -> None:
    """Alpaca's sell_short (position_effect open) opens a short on any account."""
    pairing = pair_fills([_fill("s", "sell", "1", "100", 0, effect="open")])
    (lot,) = pairing.open_lots[("acct", "AAPL")]
    assert lot.side == "short"


def test_pair_when_venue_says_fill_closes_and_nothing_open_then_unmatched() -> None:
    """A fill marked closing never opens a position, even where shorting is allowed."""
    pairing = pair_fills([_fill("s", "sell", "1", "100", 0, effect="close")], allow_short=True)
    assert len(pairing.unmatched) == 1
    assert dict(pairing.open_lots) == {}


def test_pair_when_fees_then_opening_and_closing_fees_pro_rata() -> None:
    """Fees: opening fees per unit closed, the closing fee for the part that closed."""
    fills = [
        _fill("b", "buy", "10", "100", 0, fee="1"),
        _fill("s", "sell", "4", "110", 1, fee="0.4"),
    ]
    (trade,) = pair_fills(fills).parts
    assert trade.profit_usd == Decimal(40) - Decimal("0.4") - Decimal("0.4")
    assert trade.profit_pct == Decimal("9.8")


def test_pair_when_fills_out_of_order_then_sorted_by_time() -> None:
    """Fills are paired in time order whatever order the venue listed them in."""
    fills = [_fill("s", "sell", "1", "103", 5), _fill("b", "buy", "1", "100", 0)]
    assert len(pair_fills(fills).parts) == 1


def test_pair_when_symbols_differ_then_separate_queues() -> None:
    """Each (account, symbol) has its own queue."""
    fills = [
        _fill("b", "buy", "1", "100", 0),
        _fill("s", "sell", "1", "50", 1, symbol="MSFT"),
    ]
    pairing = pair_fills(fills)
    assert pairing.parts == ()
    assert len(pairing.unmatched) == 1


def test_merge_when_order_filled_in_pieces_then_one_trade_per_order() -> None:
    """Three partial fills of one stop order are one stop-loss exit, not three."""
    fills = [
        _fill("b", "buy", "9", "100", 0),
        *(
            _fill(f"s{i}", "sell", "3", str(95 - i), 10 + i, order_id="stop-1", reason="stop_loss")
            for i in range(3)
        ),
    ]
    (trade,) = merge_parts(pair_fills(fills).parts)
    assert (trade.id, trade.units, trade.exit_reason) == ("stop-1", Decimal(9), "stop_loss")
    assert trade.exit_price_usd == Decimal(94)
    assert trade.profit_usd == Decimal(-54)
    assert trade.closed_at == T0 + timedelta(minutes=12)


@pytest.mark.parametrize(
    ("order_type", "leg", "liquidation", "expected"),
    [
        ("stop", False, False, "stop_loss"),
        ("stop_limit", False, False, "stop_loss"),
        ("STOP_LOSS_LIMIT", False, False, "stop_loss"),
        ("stop-loss", False, False, "stop_loss"),
        ("trailing_stop", False, False, "stop_loss"),
        ("TAKE_PROFIT", False, False, "take_profit"),
        ("take-profit-limit", False, False, "take_profit"),
        ("limit", True, False, "take_profit"),
        ("limit", False, False, "signal"),
        ("market", False, False, "signal"),
        ("", False, False, "signal"),
        ("market", False, True, "liquidation"),
    ],
)
def test_exit_reason_when_order_type_given_then_documented_mapping(
    order_type: str, leg: bool, liquidation: bool, expected: str
) -> None:
    """The order-type → exit-reason table of the module docstring."""
    assert exit_reason(order_type, take_profit_leg=leg, liquidation=liquidation) == expected


def test_pair_when_trades_made_then_they_pass_the_snapshot_consistency_check() -> None:
    """What pairing produces is what the snapshot accepts (sign, fees, times)."""
    fills = [
        _fill("b", "buy", "3", "100", 0, fee="0.3"),
        _fill("s", "sell", "5", "97.5", 1, fee="0.5"),
        _fill("c", "buy", "2", "99", 2, fee="0.2"),
    ]
    for trade in pair_fills(fills, allow_short=True).parts:
        record = {name: getattr(trade, name) for name in trade.__slots__}
        assert list(trade_problems(record, T0 + timedelta(hours=1), {"acct"})) == []


def test_ledger_when_polled_twice_then_next_fetch_starts_near_newest_fill_and_skips_it() -> None:
    """Incremental: the next fetch starts 5 minutes before the newest fill; refetched fills
    count once."""
    ledger = TradeLedger()
    since = T0 - timedelta(days=7)
    assert ledger.fetch_from(since) == since - timedelta(days=30)
    buy, sell = _fill("b", "buy", "1", "100", 0), _fill("s", "sell", "1", "101", 5)
    ledger.add([buy])
    assert ledger.fetch_from(since) == buy.filled_at - timedelta(minutes=5)
    ledger.add([buy, sell])  # the venue sends the overlap again
    ledger.add([sell])
    (trade,) = ledger.trades(since)
    assert trade.profit_usd == 1


def test_ledger_when_fill_published_late_within_overlap_then_still_paired() -> None:
    """A fill stamped just before the newest one seen, arriving a poll later, is not lost."""
    ledger = TradeLedger()
    ledger.add([_fill("b", "buy", "1", "100", 0), _fill("x", "buy", "1", "50", 10, symbol="MSFT")])
    ledger.add([_fill("s", "sell", "1", "99", 8)])  # 2 minutes older than the newest
    (trade,) = ledger.trades(T0)
    assert trade.id == "s"


def test_ledger_when_exit_reasons_given_then_closing_parts_relabelled() -> None:
    """Venues that describe orders elsewhere label the closing parts after pairing."""
    ledger = TradeLedger()
    asked: list[str] = []

    def reasons(parts: object) -> dict[str, str]:
        asked.extend(part.id for part in parts)  # type: ignore[attr-defined]
        return {"o-2": "stop_loss"}

    ledger.add(
        [
            _fill("b", "buy", "1", "100", 0, order_id="o-1"),
            _fill("s", "sell", "1", "99", 1, order_id="o-2"),
        ],
        reasons,
    )
    (trade,) = ledger.trades(T0)
    assert (trade.id, trade.exit_reason, asked) == ("o-2", "stop_loss", ["o-2"])


def test_ledger_when_trades_older_than_since_then_dropped() -> None:
    """Bounded: only closes at or after the cutoff are kept and returned."""
    ledger = TradeLedger()
    ledger.add(
        [
            _fill("b1", "buy", "1", "100", 0),
            _fill("s1", "sell", "1", "100", 1),
            _fill("b2", "buy", "1", "100", 2),
            _fill("s2", "sell", "1", "100", 3),
        ]
    )
    assert [trade.id for trade in ledger.trades(T0 + timedelta(minutes=2))] == ["s2"]
    assert [trade.id for trade in ledger.trades(T0)] == ["s2"]


def test_ledger_when_close_without_open_then_counted_unmatched() -> None:
    """A close whose opening fill predates the history is counted, not invented."""
    ledger = TradeLedger()
    ledger.add([_fill("s", "sell", "1", "100", 0)])
    assert (ledger.unmatched, ledger.trades(T0)) == (1, ())


def test_ledger_when_exit_reason_lookup_fails_then_nothing_recorded_and_retry_pairs() -> None:
    """All or nothing: a failed order lookup leaves the ledger as it was; the next poll
    pairs the same fills and labels the trade."""
    ledger = TradeLedger()
    fills = [
        _fill("b", "buy", "1", "100", 0, order_id="o-1"),
        _fill("s", "sell", "1", "99", 1, order_id="o-2"),
    ]

    def failing(parts: object) -> dict[str, str]:
        raise TimeoutError("venue down")

    with pytest.raises(TimeoutError):
        ledger.add(fills, failing)
    assert ledger.fetch_from(T0) == T0 - timedelta(days=30)
    assert dict(ledger.open_lots) == {}
    ledger.add(fills, lambda parts: {"o-2": "stop_loss"})
    (trade,) = ledger.trades(T0)
    assert trade.exit_reason == "stop_loss"


def test_ledger_poll_when_fills_wanted_from_earlier_then_one_fetch_from_the_earlier() -> None:
    """poll fetches once, from the earlier of the two starts, and returns both."""
    ledger = TradeLedger()
    history = [_fill("b", "buy", "1", "100", 0), _fill("s", "sell", "1", "101", 60)]
    asked: list[datetime] = []

    def fetch(start: datetime) -> list[Fill]:
        asked.append(start)
        return [fill for fill in history if fill.filled_at >= start]

    fills, trades = ledger.poll(fetch, T0, T0 + timedelta(minutes=30))
    assert asked == [T0 - timedelta(days=30)]
    assert [fill.id for fill in fills] == ["s"] and [trade.id for trade in trades] == ["s"]
    fills, trades = ledger.poll(fetch, T0, T0 - timedelta(hours=1))  # after a long outage
    assert asked[-1] == T0 - timedelta(hours=1)
    assert [fill.id for fill in fills] == ["b", "s"] and len(trades) == 1
