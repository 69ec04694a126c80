"""The replay adapter: bars advance with the clock, the positions file, end of data, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.replay import ReplayAdapter, ReplayFinished
from bastion.adapters.replay_book import parse_book
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.errors import DataError
from bastion.engine.snapshot import Regime
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "replay"
FILES = {"SPY": EXAMPLE / "SPY.csv", "AAPL": EXAMPLE / "AAPL.csv"}
DAY_S = 86_400
HEADER = "Date,Open,High,Low,Close,Volume\n"


def replay(**options: object) -> tuple[ReplayAdapter, ManualClock]:
    """The shipped example at one market day per wall second."""
    wall = ManualClock()
    options.setdefault("positions_file", EXAMPLE / "positions.json")
    adapter = ReplayAdapter(FILES, clock=wall, speed=DAY_S, **options)  # type: ignore[arg-type]
    return adapter, wall


def daily(symbol: str = "SPY", limit: int | None = None) -> BarRequest:
    return BarRequest(symbol, DAY_S, limit=limit)


def test_fetch_bars_when_clock_passes_a_close_then_one_more_bar_is_served() -> None:
    """Bars arrive whole as they close; half a day later nothing new has closed."""
    adapter, wall = replay()
    bars = adapter.fetch_bars(daily())
    assert len(bars) == 41  # the warm-up the replay's builder windows need
    assert adapter.now() == bars[-1].timestamp + timedelta(days=1)
    wall.advance(0.5)
    assert len(adapter.fetch_bars(daily())) == 41
    wall.advance(0.5)
    newer = adapter.fetch_bars(daily())
    assert len(newer) == 42 and newer[-1].timestamp == bars[-1].timestamp + timedelta(days=1)


def test_fetch_quote_when_replaying_then_last_close_with_spread_stamped_at_its_close() -> None:
    """A replayed quote is the last close ± 1 bp, never older than its bar."""
    adapter, _ = replay()
    bar = adapter.fetch_bars(daily(limit=1))[0]
    quote = adapter.fetch_quote("SPY")
    assert quote.last == bar.close and quote.timestamp == adapter.now()
    assert quote.bid < bar.close < quote.ask


def test_fetch_accounts_when_positions_file_given_then_marked_to_the_bars() -> None:
    """Positions are marked to the last close; equity = cash + marked positions."""
    adapter, wall = replay()
    positions = {p.id: p for p in adapter.fetch_positions()}
    close = adapter.fetch_bars(daily(limit=1))[0].close
    assert positions["SPY-101"].price_usd == close
    assert "SPY-P-004" not in positions  # entered on 2024-03-01 15:00, after the first close
    wall.advance(1)
    positions = {p.id: p for p in adapter.fetch_positions()}
    assert positions["SPY-P-004"].option is not None
    gen = next(a for a in adapter.fetch_accounts() if a.id == "gen-01")
    values = positions["SPY-101"].price_usd * 100 + positions["AAPL-207"].price_usd * 150
    assert gen.equity_usd == (Decimal(20_000) + values).quantize(Decimal("0.01"))


def test_fetch_fills_when_clock_passes_them_then_served_and_booked() -> None:
    """A fill shows once the replay's time reaches it, and its loss enters the cash."""
    adapter, wall = replay()
    assert adapter.fetch_fills(datetime(2024, 1, 1, tzinfo=UTC)) == ()
    wall.advance(6)  # past 2024-03-06 15:00
    fills = adapter.fetch_fills(datetime(2024, 1, 1, tzinfo=UTC))
    assert [f.id for f in fills] == ["F-1001", "F-1002"]
    gen = next(a for a in adapter.fetch_accounts() if a.id == "gen-01")
    assert gen.cash_usd == Decimal(20_000) - Decimal(52)


def test_fetch_when_all_bars_played_then_replay_finished_says_so() -> None:
    """After the last close plus one interval every fetch raises ReplayFinished."""
    adapter, wall = replay()
    wall.advance(27)  # 2024-03-28 00:00: the last bar (2024-03-27) has closed
    assert not adapter.finished and adapter.fetch_quote("SPY")
    wall.advance(1)
    assert adapter.finished
    with pytest.raises(ReplayFinished, match=r"replay finished: .* \(120 bars\)") as caught:
        adapter.fetch_bars(daily())
    assert "2024-03-28T00:00:00+00:00" in str(caught.value)


def test_build_when_replay_driven_to_the_end_then_a_snapshot_every_day() -> None:
    """The example replays to the end through the same path as a live venue."""
    adapter, wall = replay()
    builder = SnapshotBuilder(adapter.builder_config())
    state, built = BuilderState(), 0
    while not adapter.finished:
        now = adapter.now()
        poll = builder.poll(adapter, now=now, state=state)
        result = builder.build(poll, now=now, state=state, regime=Regime("replay", "low", now))
        state = result.state
        assert result.snapshot.market["SPY"].atr_usd > 0
        built += 1
        wall.advance(1)
    assert built == 28  # calendar days from 2024-03-01 to 2024-03-28


# -- bad input --------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_open_replay_when_bars_out_of_order_then_data_error_names_file_and_line(
    tmp_path: Path,
) -> None:
    """The row that goes back in time is named, with the line it should follow."""
    path = write(
        tmp_path,
        "spy.csv",
        HEADER
        + "2024-01-02,1,2,0.5,1.5,10\n2024-01-04,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n",
    )
    with pytest.raises(DataError, match=r"spy\.csv:4: SPY: bar at 2024-01-03.* line 3"):
        ReplayAdapter({"SPY": path}, clock=ManualClock(), warmup_bars=1)


def test_open_replay_when_csv_value_broken_then_data_error_from_the_reader(tmp_path: Path) -> None:
    """bars_csv's own errors (here a missing close) keep their line numbers."""
    path = write(
        tmp_path, "spy.csv", HEADER + "2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,,10\n"
    )
    with pytest.raises(DataError, match=r"spy\.csv:3: close is missing"):
        ReplayAdapter({"SPY": path}, clock=ManualClock(), warmup_bars=1)


def test_open_replay_when_intervals_differ_then_data_error_names_both(tmp_path: Path) -> None:
    """Daily and hourly files cannot share one replay clock."""
    day = write(
        tmp_path, "d.csv", HEADER + "2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n"
    )
    hour = write(
        tmp_path,
        "h.csv",
        HEADER + "2024-01-02T10:00Z,1,2,0.5,1.5,10\n2024-01-02T11:00Z,1,2,0.5,1.5,10\n",
    )
    with pytest.raises(DataError, match="different intervals") as caught:
        ReplayAdapter({"SPY": day, "QQQ": hour}, clock=ManualClock(), warmup_bars=1)
    assert "d.csv: 86400 s" in str(caught.value) and "h.csv: 3600 s" in str(caught.value)


def test_open_replay_when_warmup_longer_than_file_then_data_error() -> None:
    """Too few bars for the warm-up: the message says which file and what to do."""
    with pytest.raises(DataError, match="AAPL has 60 bars; the replay starts after 100"):
        ReplayAdapter(FILES, clock=ManualClock(), warmup_bars=100)


POSITIONS = """{
  "accounts": [{"id": "gen-01", "type": "gen", "cash_usd": 100}],
  "positions": [
    {"id": "p-1", "account_id": "gen-01", "symbol": "SPY", "asset_class": "equity",
     "quantity": 5, "side": "long", "entry_price_usd": 470}%s
  ]
}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", None),
        (',\n    {"id": "p-2"}', r":6: positions.1.asset_class: is required"),
        (
            ',\n    {"id": "p-2", "account_id": "x", "symbol": "SPY", "asset_class": "equity",\n'
            '     "quantity": -1, "side": "long", "entry_price_usd": 1}',
            r":7: positions.1.quantity: must be > 0, got -1",
        ),
        (
            ',\n    {"id": "p-2", "account_id": "nobody", "symbol": "SPY", "asset_class": "equity",'
            '\n     "quantity": 1, "side": "long", "entry_price_usd": 1}',
            r":6: positions.1.account_id: no account 'nobody'",
        ),
        (",,", r":5: not valid JSON"),
    ],
)
def test_parse_book_when_positions_file_has_problem_then_data_error_at_its_line(
    extra: str, message: str | None
) -> None:
    """Every positions-file error names the line and the field; a good file parses."""
    text = POSITIONS % extra
    if message is None:
        book = parse_book(text, source="positions.json")
        assert book.positions[0].quantity == 5 and book.accounts[0].cash_usd == 100
        return
    with pytest.raises(DataError, match="positions.json" + message):
        parse_book(text, source="positions.json")


def test_open_replay_when_position_symbol_has_no_bars_then_data_error(tmp_path: Path) -> None:
    """A position in a symbol without a bar file cannot be marked."""
    path = write(tmp_path, "positions.json", (POSITIONS % "").replace('"SPY"', '"TSLA"'))
    with pytest.raises(DataError, match="position p-1 needs bars for TSLA"):
        ReplayAdapter(FILES, clock=ManualClock(), positions_file=path)
