"""A seeded history for the replay benchmark: daily bars for N symbols, a book of positions.

`write_history(directory, symbols=50, positions=200, days=252)` writes ``bars/SYM.csv``
(one per symbol: a geometric random walk with a market factor, a sell-off in the middle
of the year and its recovery) and ``positions.json`` (accounts of every type, equity
positions spread over the symbols). Same seed, same files.
"""

from __future__ import annotations

import json
import math
import random
from datetime import date, timedelta
from pathlib import Path

WARMUP_DAYS = 40  # bars before the replay starts (the builder's windows)


def trading_days(start: date, count: int) -> list[date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def write_history(
    directory: Path, *, symbols: int = 50, positions: int = 200, days: int = 252, seed: int = 11
) -> tuple[Path, Path]:
    """Write the bars and the book under `directory`; returns (bars dir, positions file)."""
    rng = random.Random(seed)
    bars = directory / "bars"
    bars.mkdir(parents=True, exist_ok=True)
    calendar = trading_days(date(2023, 1, 2), days + WARMUP_DAYS)
    crash_from = WARMUP_DAYS + days // 2
    market = []
    for index in range(len(calendar)):  # the market factor: calm, a sell-off, a recovery
        drift = (
            -0.025
            if crash_from <= index < crash_from + 8
            else 0.004
            if index > crash_from + 8
            else 0.0004
        )
        market.append(drift + rng.gauss(0, 0.009))
    names = [f"S{number:03d}" for number in range(symbols)]
    first_close: dict[str, float] = {}
    for name in names:
        beta, price = rng.uniform(0.6, 1.5), rng.uniform(20, 400)
        first_close[name] = price
        rows = ["Date,Open,High,Low,Close,Volume"]
        for day, factor in zip(calendar, market, strict=True):
            change = beta * factor + rng.gauss(0, 0.012)
            open_ = price
            price = max(1.0, price * math.exp(change))
            high = max(open_, price) * (1 + abs(rng.gauss(0, 0.004)))
            low = min(open_, price) * (1 - abs(rng.gauss(0, 0.004)))
            volume = int(rng.uniform(0.5, 1.5) * 2_000_000 * (3 if change < -0.02 else 1))
            rows.append(f"{day},{open_:.2f},{high:.2f},{low:.2f},{price:.2f},{volume}")
        (bars / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    book = _book(rng, names, first_close, positions, calendar[WARMUP_DAYS - 1])
    positions_file = directory / "positions.json"
    positions_file.write_text(json.dumps(book, indent=1), encoding="utf-8")
    return bars, positions_file


def _book(
    rng: random.Random, names: list[str], closes: dict[str, float], count: int, entered: date
) -> dict[str, object]:
    types = ("gen", "rev", "com")
    accounts = [
        {"id": f"{types[index % 3]}-{index:02d}", "type": types[index % 3], "cash_usd": 200_000}
        for index in range(10)
    ]
    positions = []
    for number in range(count):
        symbol = names[number % len(names)]
        positions.append(
            {
                "id": f"P-{number:04d}",
                "account_id": accounts[number % len(accounts)]["id"],
                "symbol": symbol,
                "asset_class": "equity",
                "quantity": rng.randint(10, 200),
                "side": "long" if rng.random() < 0.85 else "short",
                "entry_price_usd": round(closes[symbol] * rng.uniform(0.9, 1.1), 2),
                "entered_at": f"{entered.isoformat()}T21:00:00Z",
                "strategy_id": f"strategy-{number % 7}",
            }
        )
    return {"accounts": accounts, "positions": positions}
