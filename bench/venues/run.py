"""Benchmark: what a real venue adapter's ``fetch_bars`` costs per poll, parsing a 300-bar
window, with its bar memo (adapters/bar_memo.py) and without.

Each venue's real adapter (Alpaca, Binance, Kraken; their SDK clients built but never
called: the venue's decoded answer is handed to ``fetch_bars`` in process, no HTTP) parses a
live answer of WINDOW closed bars. Per venue, four cases taking turns round after round,
each the best of the rounds in thread CPU time (``time.thread_time``); every poll gets a
freshly decoded answer (``json.loads`` of the venue's text, outside the timing), as from the
wire:

- **floor**: the venue's row parse alone (the module's ``_bar`` over the rows, as
  ``fetch_bars`` did before the memo), no request plumbing;
- **cold**: ``fetch_bars`` with an empty memo every poll (every row parsed, plus the
  memo's keys): what a poll costs without the memo's help;
- **moved on**: ``fetch_bars`` on the next answer a bar later (one new row, the rest as
  last poll): the service at its cadence;
- **same**: ``fetch_bars`` on the same answer again (a poll within the bar interval).

Printed: each cost in ms and its ratio to the floor measured in the same run.

    .venv/bin/python bench/venues/run.py --rounds 30
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bastion.adapters import alpaca, binance, kraken
from bastion.adapters.bar_memo import BarMemo
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.sources.clock import ManualClock

WINDOW = 300
START = datetime(2024, 1, 2, tzinfo=UTC)
START_S = int(START.timestamp())
ENVIRON = {
    "ALPACA_API_KEY_ID": "k",
    "ALPACA_API_SECRET_KEY": "s",
    "BINANCE_API_KEY": "k",
    "BINANCE_API_SECRET": "s",
    "KRAKEN_API_KEY": "k",
    "KRAKEN_API_SECRET": "c2VjcmV0",
}


def _price(minute: int) -> Decimal:
    return Decimal(40000 + (minute * 7919) % 2000) / 4


def alpaca_answer(first: int, symbol: str) -> str:
    def row(m: int) -> dict[str, object]:
        price = float(_price(m))
        stamp = (START + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
        return {"t": stamp, "o": price, "h": price + 3, "l": price - 2, "c": price + 1,
                "v": 1000 + m, "n": 40, "vw": price}  # fmt: skip

    # Newest first, as the adapter asks for a live window.
    return json.dumps({symbol: [row(m) for m in range(first + WINDOW - 1, first - 1, -1)]})


def binance_answer(first: int, symbol: str) -> str:
    def row(m: int) -> list[object]:
        price, open_ms = _price(m), (START_S + 60 * m) * 1000
        return [open_ms, f"{price:.8f}", f"{price + 3:.8f}", f"{price - 2:.8f}",
                f"{price + 1:.8f}", f"{m % 97 + 1}.12300000", open_ms + 59_999, "1000.0", 40,
                "1.0", "100.0", "0"]  # fmt: skip

    return json.dumps([row(m) for m in range(first, first + WINDOW + 1)])  # + the open kline


def kraken_answer(first: int, symbol: str) -> str:
    def row(m: int) -> list[object]:
        price = _price(m)
        return [START_S + 60 * m, f"{price:.1f}", f"{price + 3:.1f}", f"{price - 2:.1f}",
                f"{price + 1:.1f}", f"{price:.1f}", f"{m % 97 + 1}.12300000", 40]  # fmt: skip

    rows = [row(m) for m in range(first, first + WINDOW + 1)]  # + the uncommitted interval
    return json.dumps({symbol: rows, "last": START_S + 60 * (first + WINDOW)})


class Venue:
    """One real adapter, fed a decoded answer in process instead of over HTTP."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.clock = ManualClock(START)
        self.answer: Any = None
        quiet: dict[str, Any] = {"clock": self.clock, "sleep": lambda _s: None}
        self.symbol = {"alpaca": "AAPL", "binance": "BTCUSDT", "kraken": "XXBTZUSD"}[name]
        self.adapter: Any
        self.text: Callable[[int, str], str]
        if name == "alpaca":
            self.adapter = alpaca.AlpacaAdapter.from_env(ENVIRON, **quiet)
            self.adapter._call = lambda _where, call: call()
            self.adapter._data.get_stock_bars = lambda _query: self.answer
            self.text, self.parse_rows = alpaca_answer, self._alpaca_floor
        elif name == "binance":
            self.adapter = binance.BinanceAdapter.from_env(ENVIRON, **quiet)
            self.adapter._call = lambda _where, _weight, call, _symbol=None: call()
            self.adapter._client.get_klines = lambda **_params: self.answer
            self.text, self.parse_rows = binance_answer, self._binance_floor
        else:
            self.adapter = kraken.KrakenAdapter.from_env(ENVIRON, **quiet)
            self.adapter._public = lambda _method, _query, symbol=None: self.answer
            self.text, self.parse_rows = kraken_answer, self._kraken_floor

    def at(self, first: int) -> None:
        """The venue's answer (freshly decoded) when the window starts at minute ``first``."""
        self.answer = json.loads(self.text(first, self.symbol))
        self.clock._now = START + timedelta(minutes=first + WINDOW, seconds=30)

    def poll(self) -> int:
        return len(self.adapter.fetch_bars(BarRequest(self.symbol, 60, limit=WINDOW)))

    def _alpaca_floor(self) -> int:
        rows = self.answer[self.symbol]
        return len([alpaca._bar(row, f"x [{i}]") for i, row in enumerate(rows)])

    def _binance_floor(self) -> int:
        rows = self.answer[:-1]
        return len([binance._bar(row, f"x [{i}]") for i, row in enumerate(rows)])

    def _kraken_floor(self) -> int:
        rows = self.answer[self.symbol][:-1]
        return len([kraken._bar(row, f"x [{i}]") for i, row in enumerate(rows)])


def measure(venue: Venue, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(("floor", "cold", "moved on", "same"), float("inf"))
    first = 0
    venue.at(first)
    venue.poll()  # warm
    cases: list[tuple[str, Callable[[int], None], Callable[[], int]]] = [
        ("floor", venue.at, venue.parse_rows),
        ("cold", lambda first: _cold(venue, first), venue.poll),
        ("moved on", lambda first: venue.at(first + 1), venue.poll),
        ("same", lambda first: venue.at(first + 1), venue.poll),
    ]
    for _ in range(rounds):
        for name, prepare, timed in cases:
            prepare(first)
            started = time.thread_time()
            count = timed()
            best[name] = min(best[name], time.thread_time() - started)
            assert count == WINDOW, (venue.name, name, count)
        first += 1
    return {name: seconds * 1000 for name, seconds in best.items()}


def _cold(venue: Venue, first: int) -> None:
    venue.at(first)
    venue.adapter._bars = BarMemo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"fetch_bars parse cost per poll, {WINDOW}-bar window, best of {args.rounds} (ms)")
    print(f"{'venue':8} {'floor':>7} {'cold':>7} {'moved on':>9} {'same':>7}   ratios to floor")
    for name in ("alpaca", "binance", "kraken"):
        ms = measure(Venue(name), args.rounds)
        ratios = "  ".join(f"{case} {ms[case] / ms['floor']:.2f}x" for case in list(ms)[1:])
        print(
            f"{name:8} {ms['floor']:7.3f} {ms['cold']:7.3f} {ms['moved on']:9.3f} "
            f"{ms['same']:7.3f}   {ratios}"
        )


if __name__ == "__main__":
    main()
