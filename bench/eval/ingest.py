"""Benchmark: ingestion against evaluation — one tick of 1k / 10k / 100k positions.

Issue 17, point 2: building and validating a tick's snapshot must cost no more than the
evaluation it feeds; target build + validate + evaluate <= 2x the evaluation alone at
10,000 positions. Per size, five cases measured in the same run, taking turns round
after round, each the best of the rounds in thread CPU time (``time.thread_time``):

- **build**: the adapters' path from one poll to a Snapshot —
  ``SnapshotBuilder.build`` on a synthetic poll of that size (the venue types of
  adapters/venue.py: accounts, positions, minute and daily bars per symbol, quotes,
  fills, every symbol's instrument; each series a new list every poll, of the very same
  Bar objects where a row did not change, as the adapters hand them over), the
  builder's memos warm and its state fed forward as in the service: the same poll
  again, as a poll within the bar interval sees the last poll's bars. Validation is
  part of it: every venue value is checked.
- **moved on**: the same, but each round builds the next of a series of polls a minute
  apart (the one-minute bars moved on by a bar, the quotes stamped anew: the service at
  a 60 s cadence), so what the builder works out of the bars is worked out again for
  the new bar (incrementally where it can).
- **cerberus**: the same snapshot as a JSON-ready document (``Snapshot.to_dict``: what a
  file or an HTTP body holds) through ``Snapshot.from_dict`` — the validator of documents
  that come from outside, shown for scale (it is not on the builder's path).
- **doc check**: for comparison, the builder's check before it made the Snapshot's
  records directly — the same positions as document records, every value checked in
  the document (engine/snapshot/built.snapshot_from_built), then the Snapshot built
  from it — without the market part.
- **evaluate**: a steady evaluation of the built snapshot with the previous evaluation's
  state (as bench/eval/run.py does): the default policy set. Each call gets a new
  Snapshot object (a shallow copy), as each tick does, so what the engine keeps for the
  last snapshot it saw (the position columns of its screen) is built in every round.

Printed: each cost, and the ratios to the evaluation measured in the same run;
``PASS``/``FAIL`` for (build + evaluate) / evaluate <= 2 at 10,000 positions, both builds
(exit 1 on FAIL).

    .venv/bin/python bench/eval/ingest.py                 # 1k, 10k, 100k
    .venv/bin/python bench/eval/ingest.py --sizes 10000 --rounds 5 --no-cerberus
    .venv/bin/python bench/eval/ingest.py --gc default     # Python's default collector
    .venv/bin/python bench/eval/ingest.py --sizes 10000 --no-cerberus --calendar XNYS  # equity
    .venv/bin/python bench/eval/ingest.py --sizes 10000 --no-cerberus --venue alpaca

``--venue`` shapes the poll as a venue's: ``alpaca`` (the XNYS calendar, positions
without entry times), ``binance`` (24/7, without), ``kraken`` (24/7, with).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bastion.adapters import builder as builder_module
from bastion.adapters.builder import BuilderState, Poll, SnapshotBuilder
from bastion.adapters.builder_parts import BuilderConfig
from bastion.adapters.sources.base import Quote
from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.indicators.quality import Bar
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Regime, Snapshot
from bastion.engine.snapshot.built import (
    position_document,
    snapshot_from_built,
    snapshot_from_typed,
)
from bastion.engine.snapshot.model import Instrument
from bastion.engine.state import State
from bastion.service.runner import GC_THRESHOLDS, gc_thresholds

ROOT = Path(__file__).resolve().parents[2]
TARGET = 2.0  # build + validate + evaluate <= 2x evaluate, at TARGET_SIZE positions
TARGET_SIZE = 10_000
# What a venue's polls look like here: (exchange calendar, positions carry entry times).
VENUES = {"kraken": (None, True), "binance": (None, False), "alpaca": ("XNYS", False)}
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
ACCOUNT_TYPES = ("gen", "rev", "com")
BENCHMARK = "SPY"
CENT = Decimal("0.01")


def make_poll(
    positions: int, *, symbols: int = 50, seed: int = 7, entry_times: bool = True
) -> Poll:
    """A poll as a venue adapter returns it: 3 accounts, ``positions`` positions over
    ``symbols`` symbols (as bench/eval/snapshots.py spreads them) plus the benchmark, 301
    one-minute bars and 45 daily bars per symbol, a quote each, and a few fills."""
    return make_polls(positions, 1, symbols=symbols, seed=seed, entry_times=entry_times)[0]


def make_polls(
    positions: int, count: int, *, symbols: int = 50, seed: int = 7, entry_times: bool = True
) -> list[Poll]:
    """``count`` polls a minute apart (poll ``k`` is as of ``NOW + k`` minutes): the same
    accounts, positions and daily bars, the one-minute bars moved on by a bar each time
    (the next bar added, the oldest dropped), the quotes stamped anew. Each poll's series
    are new lists (of the very same Bars where a row did not change), as an adapter's.
    ``entry_times`` False: positions without an entry time, as Alpaca and Binance report
    them (Kraken gives one): the builder stamps each with the time it first saw it."""
    rng = random.Random(seed)
    symbols = max(1, min(symbols, positions // 2))
    names = [f"S{index:03d}" for index in range(symbols)]
    prices = {name: Decimal(rng.randint(20, 900)) for name in [*names, BENCHMARK]}
    minutes: dict[str, tuple[Bar, ...]] = {}
    daily: dict[str, tuple[Bar, ...]] = {}
    for name, price in prices.items():
        minutes[name] = _walk(rng, price, NOW - 301 * MINUTE, MINUTE, 300 + count)
        daily[name] = _walk(rng, price, NOW - 45 * DAY, DAY, 45)
    accounts = tuple(
        VenueAccount(
            f"acc-{index}",
            ACCOUNT_TYPES[index % 3],
            Decimal(1_000_000),
            Decimal(100_000),
            day_start_equity_usd=Decimal(1_004_000),
            peak_equity_usd=Decimal(1_010_000),
        )
        for index in range(3)
    )
    held = []
    for index in range(positions):
        name = rng.choice(names)
        price = prices[name]
        move = Decimal(rng.randint(-350, 150)) / 100 * (price / 50).quantize(CENT)
        held.append(
            VenuePosition(
                id=f"P{index:06d}",
                account_id=f"acc-{index % 3}",
                symbol=name,
                asset_class="equity",
                quantity=Decimal(rng.randint(1, 500)),
                side="long",
                entry_price_usd=price - move,
                price_usd=price,
                entered_at=datetime(2026, 11, 1, 14, 30, tzinfo=UTC) if entry_times else None,
                strategy_id=f"strat-{index % 7}",
            )
        )
    fills = tuple(
        Fill(
            id=f"F{a}-{s}-{n}",
            account_id=f"acc-{a}",
            symbol=names[(a + s) % len(names)],
            side="buy",
            quantity=Decimal(10),
            price_usd=prices[names[(a + s) % len(names)]] + CENT,
            filled_at=NOW - timedelta(seconds=10 * (n + 1)),
            expected_price_usd=prices[names[(a + s) % len(names)]],
            strategy_id=f"strat-{s}",
        )
        for a in range(3)
        for s in range(7)
        for n in range(3)
    )
    # What the adapters' fetch_instruments gives: every polled symbol's kind (and rules).
    instruments = {name: Instrument(name, "equity") for name in prices}
    polls = []
    for shift in range(count):
        now = NOW + shift * MINUTE
        quotes = {
            name: Quote(name, price - CENT, price + CENT, now - timedelta(seconds=2), price)
            for name, price in prices.items()
        }
        # New lists every poll, of the same Bar objects where the rows did not change: what
        # a venue adapter hands over (its BarMemo keeps the unchanged rows' Bars).
        bars = {name: list(series[shift : shift + 301]) for name, series in minutes.items()}
        atr_bars = {name: list(series) for name, series in daily.items()}
        polls.append(
            Poll(
                accounts,
                tuple(held),
                bars,
                quotes,
                fills,
                atr_bars=atr_bars,
                instruments=instruments,
            )
        )
    return polls


def _walk(
    rng: random.Random, last: Decimal, start: datetime, step: timedelta, count: int
) -> tuple[Bar, ...]:
    """``count`` bars from ``start``, a seeded random walk ending near ``last``."""
    closes = [last]
    for _ in range(count - 1):
        closes.append(max(CENT, closes[-1] * (1 + Decimal(rng.randint(-20, 20)) / 10_000)))
    closes.reverse()
    out = []
    for index, raw in enumerate(closes):
        close = raw.quantize(CENT)
        volume = Decimal(rng.randint(5_000, 15_000))
        out.append(Bar(start + step * index, close, close + CENT, close - CENT, close, volume))
    return tuple(out)


def per_call(runs: Sequence[Callable[[], object]], rounds: int) -> list[float]:
    """For each case, the best of ``rounds`` thread-CPU timings; the cases take turns
    within each round (bench/check/lists.py ``_per_call``), so a machine that slows down
    during the run moves all of them alike. Each call starts after a young collection;
    the collector runs within the calls as it would in the process."""
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for index, run in enumerate(runs):
            gc.collect(0)
            started = time.thread_time()
            run()
            best[index] = min(best[index], time.thread_time() - started)
    return best


def measure(
    size: int,
    rounds: int,
    *,
    with_cerberus: bool = True,
    gc_mode: str = "service",
    calendar: str | None = None,
    entry_times: bool = True,
) -> tuple[float, ...]:
    """(build s, cerberus s, evaluate s, document-check s, moved-on build s) for one tick
    of ``size`` positions; ``gc_mode``
    "service": the collector as `bastion serve` sets it after start-up, "default": as
    Python starts."""
    thresholds = gc.get_threshold()
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    try:
        poll, *later = make_polls(size, rounds + 2, entry_times=entry_times)
        builder = SnapshotBuilder(BuilderConfig(market_calendar=calendar))
        regime = Regime("calm", "low", NOW - DAY)
        state = BuilderState()

        same_state = [state]

        def build() -> Snapshot:  # the state fed forward, as the service does
            built = builder.build(poll, now=NOW, state=same_state[0], regime=regime)
            same_state[0] = built.state
            return built.snapshot

        # A builder of its own, fed polls a minute apart: each build sees the one-minute
        # bars moved on by a bar (the service at a 60 s cadence).
        # Its state fed forward, as the service does (the first-seen times of positions
        # without an entry time come from it).
        moving = SnapshotBuilder(BuilderConfig(market_calendar=calendar))
        next_polls = iter(enumerate(later, start=1))
        moving_state = [state]

        def build_moved() -> Snapshot:
            shift, moved = next(next_polls)
            now = NOW + shift * MINUTE
            built = moving.build(moved, now=now, state=moving_state[0], regime=regime)
            moving_state[0] = built.state
            return built.snapshot

        kept: list[dict[str, Any]] = []

        def keep(document: Any, positions: Any, **options: Any) -> Snapshot:
            kept.append({**document, "positions": [position_document(p) for p in positions]})
            return snapshot_from_typed(document, positions, **options)

        builder_module.snapshot_from_typed = keep
        try:
            snapshot = build()  # warms the builder's memos, as after the service's first poll
        finally:
            builder_module.snapshot_from_typed = snapshot_from_typed
        rest = {**kept[0], "positions": []}

        def as_document() -> Snapshot:
            # The builder's path before the typed one: a document record per position,
            # every value checked in it (engine/snapshot/built.py), then the Snapshot.
            records = [position_document(p) for p in snapshot.positions]
            return snapshot_from_built({**rest, "positions": records})

        assert len(snapshot.positions) == size, "every synthetic position is valid"
        build_moved()  # warms the moving builder's memos
        document = snapshot.to_dict()
        assert Snapshot.from_dict(document) == snapshot, "both paths give the same Snapshot"
        _, warm = evaluate(policies, snapshot, State(), NOW)
        if gc_mode == "service":  # as `bastion serve` runs (cli/serve.py)
            gc.collect()
            gc.freeze()  # what start-up made: never walked again
            gc.set_threshold(*gc_thresholds(size))  # as after the service's first cycle
        elif gc_mode == "fixed":  # before the young threshold followed the book
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)

        def steady() -> object:
            # A tick's snapshot is new: a copy, so that nothing the engine keeps for the
            # last snapshot it saw (evaluation/columns.py) is reused from the round before.
            return evaluate(policies, replace(snapshot), warm, NOW)

        assert as_document() == snapshot, "the document path gives the same Snapshot"
        runs: list[Callable[[], object]] = [build, steady, as_document, build_moved]
        if with_cerberus:
            runs.append(lambda: Snapshot.from_dict(document))
        timings = per_call(runs, rounds)
        build_s, evaluate_s, document_s, moved_s = timings[:4]
        cerberus_s = timings[4] if with_cerberus else float("nan")
        return build_s, cerberus_s, evaluate_s, document_s, moved_s
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        policies.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="positions per tick")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (3 above 10k positions)")
    parser.add_argument(
        "--no-cerberus", action="store_true", help="skip the cerberus case (slow at 100k)"
    )
    parser.add_argument(
        "--calendar",
        default=None,
        metavar="NAME",
        help="an exchange calendar (e.g. XNYS, Alpaca's default): bar quality and data age "
        "on its session clock, as an equity feed builds (default: none, 24/7 like crypto)",
    )
    parser.add_argument(
        "--no-entry-times",
        action="store_true",
        help="positions without an entry time, as Alpaca and Binance report them (the "
        "builder stamps each with the time it first saw it; Kraken gives one)",
    )
    parser.add_argument(
        "--venue",
        choices=sorted(VENUES),
        default=None,
        help="as that venue's polls look: kraken (24/7, entry times), binance (24/7, none), "
        "alpaca (the XNYS calendar, none); sets --calendar and --no-entry-times",
    )
    parser.add_argument(
        "--gc",
        choices=("service", "fixed", "default"),
        default="service",
        help="the garbage collector as `bastion serve` sets it (gc.freeze after start-up, "
        "the young threshold following the book: gc_thresholds; the default), `fixed` "
        f"(frozen, thresholds {GC_THRESHOLDS} whatever the book) or as Python starts",
    )
    args = parser.parse_args(argv)
    if args.venue is not None:
        args.calendar, entry_times = VENUES[args.venue]
        args.no_entry_times = not entry_times
    sizes = [int(size) for size in args.sizes.split(",")]
    regime = {
        "service": "gc.freeze() after set-up, thresholds gc_thresholds(positions) (as "
        f"`bastion serve`: {gc_thresholds(TARGET_SIZE)} at {TARGET_SIZE:,})",
        "fixed": f"gc.freeze() after set-up, thresholds {GC_THRESHOLDS} whatever the book",
        "default": f"Python's default collector {gc.get_threshold()}",
    }[args.gc]
    print(
        "bench/eval/ingest: one tick, default policy set, thread CPU time, best of "
        f"{args.rounds} rounds with the cases taking turns; {regime}; exchange calendar: "
        f"{args.calendar or 'none (24/7)'}; positions "
        f"{'without' if args.no_entry_times else 'with'} entry times"
        + (f" (as {args.venue}'s)" if args.venue else "")
    )
    print(
        f"  {'positions':>9}  {'build':>10}  {'moved on':>10}  {'evaluate':>10}  "
        f"{'cerberus':>10}  {'(build+eval)/eval':>17}  {'moved on':>8}  {'build/eval':>10}  "
        f"{'doc check/eval':>14}  {'cerberus/eval':>13}"
    )
    verdict = None
    for size in sizes:
        rounds = args.rounds if size <= TARGET_SIZE else min(args.rounds, 3)
        build_s, cerberus_s, evaluate_s, document_s, moved_s = measure(
            size,
            rounds,
            with_cerberus=not args.no_cerberus,
            gc_mode=args.gc,
            calendar=args.calendar,
            entry_times=not args.no_entry_times,
        )
        total = (build_s + evaluate_s) / evaluate_s
        moved = (moved_s + evaluate_s) / evaluate_s
        print(
            f"  {size:>9,}  {build_s * 1e3:>7.1f} ms  {moved_s * 1e3:>7.1f} ms  "
            f"{evaluate_s * 1e3:>7.1f} ms  {cerberus_s * 1e3:>7.1f} ms  {total:>16.2f}x  "
            f"{moved:>7.2f}x  {build_s / evaluate_s:>9.2f}x  "
            f"{document_s / evaluate_s:>13.2f}x  {cerberus_s / evaluate_s:>12.2f}x"
        )
        if size == TARGET_SIZE:
            verdict = max(total, moved) <= TARGET
    if verdict is not None:
        print(
            f"  {'PASS' if verdict else 'FAIL'}  build + validate + evaluate <= {TARGET:g}x "
            f"the evaluation alone at {TARGET_SIZE:,} positions, the same poll again and "
            "the bars moved on (issue 17, point 2)"
        )
    return 0 if verdict in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
