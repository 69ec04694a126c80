"""Benchmark: ATR (batch and incremental) against TA-Lib's C code, and greeks throughput.

Run: .venv/bin/python bench/indicators/run.py   (about 15 s; TA-Lib is optional)

Every timing is the best of several runs on one core, measured in the same process as
TA-Lib so the ratios are like for like. Targets (issue 5): ≥ 200,000 incremental ATR
updates/s; 100 symbols/s with < 10 ms per ATR calculation.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from bastion.engine.indicators.atr import (
    AtrMethod,
    AtrSpec,
    AtrUpdater,
    FloatAtrUpdater,
    atr,
    atr_float,
)
from bastion.engine.indicators.greeks import (
    ImpliedVolatilityError,
    bsm_greeks,
    bsm_greeks_array,
    implied_volatility,
)

BARS = 1_000_000
DECIMAL_BARS = 100_000
PERIOD = 14

try:
    import talib
except ImportError:  # pragma: no cover - bench-only dependency
    talib = None


def best_of(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def random_walk(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240102)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, count))), 4)
    high = np.round(close * (1 + rng.uniform(0, 0.01, count)), 4)
    low = np.round(close * (1 - rng.uniform(0, 0.01, count)), 4)
    return high, low, close


def main() -> None:
    high, low, close = random_walk(BARS)
    rows: list[tuple[str, str, str]] = []

    def row(name: str, figure: str, note: str = "") -> None:
        rows.append((name, figure, note))
        print(f"  {name:<46} {figure:>18}  {note}", flush=True)

    python = f"{platform.python_implementation()} {platform.python_version()}"
    talib_version = getattr(talib, "__version__", "not installed")
    print(f"bench/indicators: {python}, numpy {np.__version__}, TA-Lib {talib_version}")
    print(f"  {'measure':<46} {'figure':>18}  note")

    # -- batch ATR, float --------------------------------------------------------------------
    ours_s, ours = best_of(5, lambda: atr_float(high, low, close, AtrSpec(PERIOD)))
    row(
        "ATR(14) wilder, float, 1M bars",
        f"{ours_s * 1e3:.1f} ms",
        f"{ours_s / BARS * 1e9:.1f} ns/bar",
    )
    if talib is not None:
        talib_s, reference = best_of(5, lambda: talib.ATR(high, low, close, timeperiod=PERIOD))
        row(
            "TA-Lib ATR(14) (C), 1M bars",
            f"{talib_s * 1e3:.2f} ms",
            f"{talib_s / BARS * 1e9:.1f} ns/bar",
        )
        row("ratio float / TA-Lib", f"{ours_s / talib_s:.1f} x", "same run, best of 5")
        worst = np.nanmax(np.abs(ours - reference) / reference)
        row("max relative difference vs TA-Lib", f"{worst:.1e}", "1M bars")
    for method in (AtrMethod.SMA, AtrMethod.EMA):
        seconds, _ = best_of(3, lambda m=method: atr_float(high, low, close, AtrSpec(PERIOD, m)))
        row(f"ATR(14) {method.value}, float, 1M bars", f"{seconds * 1e3:.1f} ms")

    # -- batch ATR, Decimal ------------------------------------------------------------------
    columns = [
        [Decimal(x) for x in column[:DECIMAL_BARS].tolist()] for column in (high, low, close)
    ]
    decimal_s, exact = best_of(3, lambda: atr(*columns, AtrSpec(PERIOD)))
    per_bar = decimal_s / DECIMAL_BARS
    row(
        "ATR(14) wilder, Decimal, 100k bars",
        f"{decimal_s * 1e3:.0f} ms",
        f"{per_bar * 1e9:.0f} ns/bar",
    )
    if talib is not None:
        row(
            "ratio Decimal / TA-Lib (per bar)",
            f"{per_bar / (talib_s / BARS):.0f} x",
            "100k vs 1M bars",
        )
        exact_f = np.array([np.nan if v is None else float(v) for v in exact])
        worst = np.nanmax(np.abs(exact_f - reference[:DECIMAL_BARS]) / reference[:DECIMAL_BARS])
        row("max relative difference Decimal vs TA-Lib", f"{worst:.1e}", "100k bars")
    one_symbol = [column[:1000] for column in columns]
    symbol_s, _ = best_of(20, lambda: atr(*one_symbol, AtrSpec(PERIOD)))
    row("one symbol: ATR(14), Decimal, 1,000 bars", f"{symbol_s * 1e3:.2f} ms", "target < 10 ms")
    row("  symbols per second at that size", f"{1 / symbol_s:,.0f}", "target ≥ 100")

    # -- incremental -------------------------------------------------------------------------
    feed = list(zip(high.tolist(), low.tolist(), close.tolist(), strict=True))

    def float_updates() -> None:
        update = FloatAtrUpdater(AtrSpec(PERIOD)).update
        for h, lo, c in feed:
            update(h, lo, c)

    seconds, _ = best_of(3, float_updates)
    row("incremental updates/s, float", f"{BARS / seconds:,.0f}", "target ≥ 200,000")
    decimal_feed = list(zip(*columns, strict=True))

    def decimal_updates() -> None:
        update = AtrUpdater(AtrSpec(PERIOD)).update
        for h, lo, c in decimal_feed:
            update(h, lo, c)

    seconds, _ = best_of(3, decimal_updates)
    row("incremental updates/s, Decimal", f"{DECIMAL_BARS / seconds:,.0f}", "target ≥ 200,000")

    # -- greeks ------------------------------------------------------------------------------
    rng = np.random.default_rng(7)
    count = 1_000_000
    spot = rng.uniform(50, 150, count)
    book = {
        "spot": spot,
        "strike": spot * rng.uniform(0.7, 1.3, count),
        "time_years": rng.uniform(0.02, 2, count),
        "rate": rng.uniform(0, 0.05, count),
        "volatility": rng.uniform(0.1, 0.8, count),
        "dividend_yield": rng.uniform(0, 0.03, count),
    }
    is_call = rng.random(count) < 0.5
    scalar_n = 100_000
    scalar_args = [
        ("call" if is_call[i] else "put", {k: float(v[i]) for k, v in book.items()})
        for i in range(scalar_n)
    ]
    seconds, _ = best_of(3, lambda: [bsm_greeks(kind, **kw) for kind, kw in scalar_args])
    row("greeks/s, scalar (price + 5 greeks)", f"{scalar_n / seconds:,.0f}")
    seconds, _ = best_of(3, lambda: bsm_greeks_array(is_call, **book))
    row(
        "greeks/s, vectorised, 1M options",
        f"{count / seconds:,.0f}",
        f"{seconds * 1e3:.0f} ms per call",
    )
    iv_n = 10_000
    quotes = []  # (price, kind, inputs without volatility): prices a model can reproduce
    for kind, kw in scalar_args[: 2 * iv_n]:
        inputs = {k: v for k, v in kw.items() if k != "volatility"}
        price = bsm_greeks(kind, **kw).price
        try:
            implied_volatility(price, kind, **inputs)
        except ImpliedVolatilityError:  # time value lost to rounding: price is at its bound
            continue
        quotes.append((price, kind, inputs))
    quotes = quotes[:iv_n]
    seconds, _ = best_of(3, lambda: [implied_volatility(p, k, **kw) for p, k, kw in quotes])
    row("implied volatilities/s, scalar (Brent)", f"{len(quotes) / seconds:,.0f}")


if __name__ == "__main__":
    main()
