"""Each real adapter hands back the same Bar objects for bars unchanged since the last poll
(the snapshot builder's memos key on identity), and new ones for a revised or still-forming
bar; always equal, field by field, to what a fresh parse makes. Real SDKs, loopback stubs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bastion.adapters.sources.base import BarRequest
from bastion.engine.indicators.quality import Bar
from tests.venues.conftest import Adapter, VenueCase
from tests.venues.routes_alpaca import _bar as alpaca_row
from tests.venues.routes_binance import MINUTE_MS
from tests.venues.routes_binance import _kline as binance_row
from tests.venues.routes_kraken import _row as kraken_row

WINDOW = 3
# The newest row that is a closed bar: Binance's last kline and Kraken's last OHLC row are
# still open and never parsed; Alpaca sends closed minutes only.
NEWEST_CLOSED = {"alpaca": -1, "binance": -2, "kraken": -2}


def rows(venue: VenueCase) -> list[Any]:
    """The stub's bar rows for the venue's symbol, oldest first (edited in place)."""
    payloads = venue.stub.payloads
    if venue.name == "alpaca":
        return payloads["bars"]["bars"][venue.facts.symbol]  # type: ignore[no-any-return]
    if venue.name == "binance":
        return payloads["klines"]  # type: ignore[no-any-return]
    return payloads["ohlc"]["result"]["XXBTZUSD"]  # type: ignore[no-any-return]


def advance_one_minute(venue: VenueCase) -> None:
    """A new row at the end: the venue's clock moved on by one bar."""
    series = rows(venue)
    if venue.name == "alpaca":
        minute = int(series[-1]["t"][14:16]) + 1
        series.append(alpaca_row(minute, series[-1]["c"] + 0.25))
    elif venue.name == "binance":
        series.append(binance_row(series[-1][0] + MINUTE_MS, Decimal(series[-1][4]) + 10))
        venue.clock.advance(60)  # so that the last-but-one kline has closed
    else:
        series.append(kraken_row(series[-1][0] + 60, Decimal(series[-1][4]) + 10))


def revise_close(venue: VenueCase, index: int) -> None:
    """The venue revises (or, for the newest, keeps forming) one bar: a new close."""
    row = rows(venue)[index]
    if venue.name == "alpaca":
        row["c"] = row["c"] + 0.5
    elif venue.name == "binance":
        row[4] = f"{Decimal(row[4]) + Decimal('0.5'):.8f}"
    else:
        row[4] = f"{Decimal(row[4]) + Decimal('0.5'):.1f}"


def poll(venue: VenueCase, adapter: Adapter | None = None) -> list[Bar]:
    request = BarRequest(venue.facts.symbol, 60, limit=WINDOW)
    return list((adapter or venue.adapter).fetch_bars(request))


def by_stamp(bars: list[Bar]) -> dict[object, Bar]:
    return {bar.timestamp: bar for bar in bars}


def test_fetch_bars_when_windows_overlap_then_unchanged_bars_are_the_same_objects(
    venue: VenueCase,
) -> None:
    """Polled again one bar later, the bars both windows hold are the very same objects."""
    first = poll(venue)
    advance_one_minute(venue)
    second = poll(venue)
    assert [bar.timestamp for bar in second][:-1] == [bar.timestamp for bar in first][1:]
    assert all(new is old for new, old in zip(second[:-1], first[1:], strict=True))
    assert all(bar is not old for bar in second[-1:] for old in first)
    assert second == poll(venue, venue.make())  # a fresh parse: equal, field by field


def test_fetch_bars_when_a_bar_is_revised_then_a_new_object_with_the_new_values(
    venue: VenueCase,
) -> None:
    """A revised row is parsed anew; the rows around it keep their objects."""
    first = poll(venue)
    revise_close(venue, NEWEST_CLOSED[venue.name] - 1)  # the middle bar of the window
    second = poll(venue)
    assert second[1] is not first[1]
    assert second[1].close == first[1].close + Decimal("0.5")
    assert (second[0], second[2]) == (first[0], first[2])
    assert second[0] is first[0] and second[2] is first[2]
    assert second == poll(venue, venue.make())


def test_fetch_bars_when_the_newest_bar_keeps_forming_then_a_new_object_each_time(
    venue: VenueCase,
) -> None:
    """The newest bar with new values on every poll is a new Bar each time."""
    seen = [poll(venue)[-1]]
    for _ in range(3):
        revise_close(venue, NEWEST_CLOSED[venue.name])
        seen.append(poll(venue)[-1])
    assert len({id(bar) for bar in seen}) == len(seen)
    closes = [bar.close for bar in seen]
    assert closes == [closes[0] + Decimal("0.5") * step for step in range(4)]


def test_fetch_bars_when_a_number_changes_only_its_spelling_then_a_new_object(
    venue: VenueCase,
) -> None:
    """Equal values spelt otherwise (1.0 / 1, "2.50" / "2.5") parse to other Decimals: no reuse."""
    first = poll(venue)
    row = rows(venue)[NEWEST_CLOSED[venue.name]]
    if venue.name == "alpaca":
        row["v"] = float(row["v"])  # 1229 → 1229.0
    else:  # binance "12.34500000", kraken "1.23400000": a trailing zero less
        row[5 if venue.name == "binance" else 6] = row[5 if venue.name == "binance" else 6][:-1]
    second = poll(venue)
    assert second[-1] == first[-1] and second[-1] is not first[-1]
    assert str(second[-1].volume) != str(first[-1].volume)


def test_fetch_bars_when_polled_many_times_then_the_memo_holds_the_last_answer_only(
    venue: VenueCase,
) -> None:
    """Per series the memo holds the bars of the last answer only, however long it runs."""
    for _ in range(20):
        advance_one_minute(venue)
        poll(venue)
    # Alpaca and Binance answer the window (Binance one open kline more, never parsed);
    # Kraken answers its whole page (720 rows live), every committed row parsed as before.
    answered = len(rows(venue)) - 1 if venue.name == "kraken" else WINDOW
    memo = venue.adapter._bars
    assert (len(memo), memo.held()) == (1, answered)
