"""Write examples/replay/crash/: a synthetic crash-and-recovery history (not market data).

Daily bars for SPY and QQQ from November 2023 to the end of June 2024: a calm drift, a
sell-off in the second half of March (about -15 % for SPY over seven sessions, two days
worse than -3 %), then a recovery through May and June. Beside them, ``positions.json``:
a `gen` account long both, a small `com` account fully in SPY (its daily-loss and
drawdown breakers are the ones `docs/examples/policy-change/com-accounts.yaml` moves)
and a `rev` account short an SPY put. Seeded: running it again writes the same bytes.

    python examples/replay/make_crash.py          # rewrites examples/replay/crash/
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

SEED = 20240318
FIRST_DAY = date(2023, 11, 1)
LAST_DAY = date(2024, 6, 28)
CRASH_FROM = date(2024, 3, 18)
ENTRY_DAY = date(2023, 12, 27)  # the positions are opened at this close (the warm-up's last)
# SPY's daily returns through the sell-off; QQQ falls 1.3 times as far.
CRASH = (-0.012, -0.034, -0.021, -0.038, 0.009, -0.029, -0.024)
SYMBOLS = {"SPY": (470.0, 1.0, 0.007), "QQQ": (390.0, 1.3, 0.009)}  # start, beta, own noise


def sessions(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def market_returns(days: list[date], rng: random.Random) -> list[float]:
    """The common factor: calm, the sell-off, then a recovery of about 1 % a week more."""
    crash_at = days.index(CRASH_FROM)
    returns = []
    for index in range(len(days)):
        offset = index - crash_at
        if 0 <= offset < len(CRASH):
            returns.append(CRASH[offset])
        elif offset >= len(CRASH):
            returns.append(0.0028 + rng.gauss(0, 0.006))
        else:
            returns.append(0.0006 + rng.gauss(0, 0.005))
    return returns


def bars(
    days: list[date], market: list[float], rng: random.Random, symbol: str
) -> tuple[str, dict[date, float]]:
    """The CSV text, and the close of each day."""
    price, beta, noise = SYMBOLS[symbol]
    closes = {}
    rows = [
        "# Synthetic bars (examples/replay/make_crash.py): a crash and its recovery, "
        "not market data.",
        "Date,Open,High,Low,Close,Volume",
    ]
    for day, factor in zip(days, market, strict=True):
        change = beta * factor + rng.gauss(0, noise / 3)
        open_ = price * (1 + rng.gauss(0, 0.002))
        price *= math.exp(change)
        high = max(open_, price) * (1 + abs(rng.gauss(0, 0.003)))
        low = min(open_, price) * (1 - abs(rng.gauss(0, 0.003)))
        volume = int(rng.uniform(0.8, 1.2) * 60_000_000 * (2.5 if change < -0.02 else 1.0))
        rows.append(f"{day},{open_:.2f},{high:.2f},{low:.2f},{price:.2f},{volume}")
        closes[day] = round(price, 2)
    return "\n".join(rows) + "\n", closes


def put_price(spot: float) -> float:
    """The SPY put's Black-Scholes price at the entry close (IV 17 %, r 4 %, as the replay
    marks it): sold at fair value, so it starts with no loss."""
    years = (date(2024, 6, 21) - ENTRY_DAY).days / 365
    strike, rate, volatility = 460.0, 0.04, 0.17
    d1 = (math.log(spot / strike) + (rate + volatility**2 / 2) * years) / (
        volatility * math.sqrt(years)
    )
    d2 = d1 - volatility * math.sqrt(years)

    def normal(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return round(strike * math.exp(-rate * years) * normal(-d2) - spot * normal(-d1), 2)


def book(spy: float, qqq: float) -> dict[str, object]:
    """The accounts, and positions opened at the close of ENTRY_DAY (before the replay's
    first step: held from the start)."""
    entered = f"{ENTRY_DAY}T21:00:00Z"
    return {
        "accounts": [
            {"id": "gen-01", "type": "gen", "cash_usd": 30000},
            {"id": "com-01", "type": "com", "cash_usd": 1000},
            {"id": "rev-01", "type": "rev", "cash_usd": 60000},
        ],
        "positions": [
            {
                "id": "SPY-101",
                "account_id": "gen-01",
                "symbol": "SPY",
                "asset_class": "equity",
                "quantity": 80,
                "side": "long",
                "entry_price_usd": spy,
                "entered_at": entered,
                "strategy_id": "trend-spy",
            },
            {
                "id": "QQQ-102",
                "account_id": "gen-01",
                "symbol": "QQQ",
                "asset_class": "equity",
                "quantity": 60,
                "side": "long",
                "entry_price_usd": qqq,
                "entered_at": entered,
                "strategy_id": "trend-qqq",
            },
            {
                "id": "SPY-201",
                "account_id": "com-01",
                "symbol": "SPY",
                "asset_class": "equity",
                "quantity": 20,
                "side": "long",
                "entry_price_usd": spy,
                "entered_at": entered,
                "strategy_id": "core-spy",
            },
            {
                "id": "SPY-P-301",
                "account_id": "rev-01",
                "symbol": "SPY240621P00460000",
                "asset_class": "option",
                "quantity": 3,
                "side": "short",
                "entry_price_usd": put_price(spy),
                "entered_at": entered,
                "strategy_id": "put-write",
                "option": {
                    "option_type": "put",
                    "strike_usd": 460,
                    "expires_at": "2024-06-21T20:00:00Z",
                    "underlying_symbol": "SPY",
                    "implied_volatility": 0.17,
                },
            },
        ],
        "instruments": {
            "SPY": {"asset_class": "equity", "sector": "broad-market"},
            "QQQ": {"asset_class": "equity", "sector": "technology"},
        },
    }


def main(target: Path) -> None:
    rng = random.Random(SEED)
    days = sessions(FIRST_DAY, LAST_DAY)
    market = market_returns(days, rng)
    target.mkdir(parents=True, exist_ok=True)
    entry = {}
    for symbol in SYMBOLS:
        text, closes = bars(days, market, rng, symbol)
        (target / f"{symbol}.csv").write_text(text, encoding="utf-8")
        entry[symbol] = closes[ENTRY_DAY]
    positions = book(entry["SPY"], entry["QQQ"])
    (target / "positions.json").write_text(json.dumps(positions, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "crash")
