"""Benchmark: roll analyses per second for one short put (default roll policy).

Run: .venv/bin/python bench/roll/run.py [--seconds 1.0]   (about 3 s)

One analysis = delta, urgency, a 60-candidate synthetic chain (6 Friday expiries × 10
strikes) priced with Black–Scholes–Merton, Decimal economics, ranking and reasons; the
last row instead picks candidates from a listed chain (the sim's SPY puts, ±8 % of spot,
weekly and monthly expiries) priced at their listed quotes.
Figures are the best of five timed runs on one core, after a warm-up.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bastion.adapters.sim_options import synthetic_chain
from bastion.engine.indicators.greeks import OptionType
from bastion.engine.policy.loader import load_policies
from bastion.engine.roll import OptionLeg, RollAnalysis, Side, analyse_roll
from bastion.engine.snapshot.model import OptionChain

ROLL_POLICY = Path(__file__).resolve().parents[2] / "policies" / "roll.yaml"
NOW = datetime(2026, 10, 1, 14, 30, tzinfo=UTC)
RUNS = 5


SHORT_PUT = OptionLeg(
    symbol="SPY",
    option_type=OptionType.PUT,
    side=Side.SHORT,
    strike=Decimal(443),
    expiry=datetime(2026, 10, 16, 20, 0, tzinfo=UTC),
    quantity=Decimal(1),
    underlying_price=Decimal(440),
    implied_vol=Decimal("0.20"),
    bid=Decimal("8.28"),
    ask=Decimal("8.48"),
)


LISTED_PUTS = synthetic_chain(
    "SPY",
    spot=Decimal(440),
    base_vol=0.20,
    now=NOW,
    seed=7,
    strike_range_ratio=Decimal("0.08"),
    option_types=("put",),
)


def rate(
    leg: OptionLeg, seconds: float, chain: OptionChain | None = None
) -> tuple[float, RollAnalysis]:
    """Analyses per second: the best of RUNS runs of ~`seconds` / RUNS each."""
    spec = load_policies([ROLL_POLICY]).policies[0].spec
    analysis = analyse_roll(leg, spec, NOW, chain=chain)
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.2:  # warm-up, and sizes a run
        analyse_roll(leg, spec, NOW, chain=chain)
        calls += 1
    per_run = max(1, int(calls / 0.2 * seconds / RUNS))
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(per_run):
            analyse_roll(leg, spec, NOW, chain=chain)
        best = min(best, time.perf_counter() - start)
    return per_run / best, analysis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per row")
    seconds = parser.parse_args().seconds
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"bench/roll: {python}, one core")
    print(f"  {'measure':<52} {'figure':>16}  note")
    rows: list[tuple[str, OptionLeg, OptionChain | None]] = [
        ("short put, delta computed (BSM), bid/ask given", SHORT_PUT, None),
        (
            "short put, delta from the snapshot, no bid/ask",
            replace(SHORT_PUT, delta=Decimal("-0.54"), bid=None, ask=None),
            None,
        ),
        (
            f"short put, listed chain ({len(LISTED_PUTS.contracts)} puts)",
            SHORT_PUT,
            LISTED_PUTS,
        ),
    ]
    for name, leg, chain in rows:
        per_second, analysis = rate(leg, seconds, chain)
        note = (
            f"{1e6 / per_second:,.0f} µs each; {len(analysis.candidates)} candidates "
            f"({analysis.priced_by.value}), urgency {analysis.urgency}"
        )
        print(f"  {name:<52} {per_second:>12,.0f} /s  {note}", flush=True)


if __name__ == "__main__":
    main()
