"""bench/check's peer: NautilusTrader's RiskEngine on the same pre-trade decision as Bastion.

The decision, identical on both sides: max notional per order + submit rate 100/1s +
trading state (ACTIVE / REDUCING / HALTED), over a seeded stream of orders (20,000 by
default) with bursts, the state fed forward. One account holds a long position in one
instrument (AUD/USD, a price of 0.80000); each order is a BUY (Bastion: an increase of
that position) or a SELL (a decrease), of 10,000 to 2,000,000 units, as a LIMIT order at
the price. BUYs above the max notional are denied (Bastion: `on_breach: deny`); SELLs
stay below it (Bastion's notional cap applies to what adds exposure only, Nautilus's to
every order: the workload keeps that difference out). The trading state changes at
seeded points; REDUCING denies a BUY into the long (Nautilus: "BUY when REDUCING and
LONG"; Bastion: an increase), HALTED denies every order. The fake clock advances 20 ms
per order, with 250-order bursts 1 ms apart every 2,000 orders, where 100/1s binds.

- NautilusTrader: installed by this benchmark into its own virtual environment,
  bench/.peer/nautilus-<python> (never by `make install`), and run there
  (peer_nautilus_side.py) on the same orders, passed as JSON: `RiskEngine.execute(
  SubmitOrder)` set up as NautilusTrader's own tests do.
- Bastion, in this process: a policy set holding one LimitPolicy with those controls
  (the limits Bastion always has — risk budgets, kill switch, liquidity, open
  positions — set where they cannot bind; pending exposure off: `pending_ttl_s: 0`),
  `can_execute` with the state fed forward.

Outcomes are compared order by order (approved / denied, and why: the first reason in
Nautilus's order of checks — notional, trading state, submit rate); any mismatch fails
the section. Throughput is the best of N rounds of the whole loop in thread CPU time
(the machine is shared); latency p50 / p99 are each order timed alone in thread CPU
time, the lowest of the same N rounds. Target (issue #17): Bastion >= 1.5x Nautilus's
throughput and p99 <= Nautilus's.

    .venv/bin/python bench/check/peer_nautilus.py [--count 20000] [--peer-python PATH]

--peer-python: the interpreter the peer's environment is made from (default: this
one). The newest NautilusTrader needs Python 3.12; on Python 3.11 pip installs the last
release built for it (1.221.0). The output says which version was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bastion.engine import native
from bastion.engine.authority.check import can_execute
from bastion.engine.authority.request import OrderRequest
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = ROOT / "bench" / ".peer"
SIDE = Path(__file__).with_name("peer_nautilus_side.py")
ROUNDS = 5  # throughput: best of
THROUGHPUT_TARGET = 1.5  # Bastion >= 1.5x Nautilus's orders/s; p99 <= Nautilus's
ACCOUNT, SYMBOL = "acc-peer", "AUD/USD"
PRICE = Decimal("0.80000")
MAX_NOTIONAL = 1_000_000  # USD
HELD = 9_000_000  # units long before the run
CASH = 1_000_000_000  # neither side's cash or balance check can bind
AS_OF = datetime.fromisoformat("2026-11-20T15:30:00+00:00")
STEP, BURST_STEP = timedelta(milliseconds=20), timedelta(milliseconds=1)
BURST_EVERY, BURST_LENGTH = 2_000, 250
STATE_WEIGHTS = (("ACTIVE", 60), ("REDUCING", 25), ("HALTED", 15))
# Nautilus denies with the first check an order fails, in this order.
WHY_ORDER = ("notional", "trading_state", "submit_rate")
BASTION_WHY = {
    "limit.max_notional_per_order": "notional",
    "limit.trading_state": "trading_state",
    "limit.submit_rate": "submit_rate",
}
POLICY_SET_YAML = """\
apiVersion: bastion/v1
kind: PolicySet
metadata: {name: peer, owner: bench, description: One LimitPolicy and nothing else.}
spec:
  required_kinds: [LimitPolicy]
"""
LIMITS_YAML = f"""\
apiVersion: bastion/v1
kind: LimitPolicy
metadata:
  name: peer-limits
  owner: bench
  description: NautilusTrader's RiskEngine decision - max notional, submit rate, trading state.
spec:
  risk:
    max_risk_per_trade_pct: 100
    max_portfolio_risk_pct: 100
    max_open_positions: 1000
    max_per_asset_pct: 100
  kill_switch:
    max_daily_drawdown_pct: 100
    on_drift: false
  liquidity:
    min_liquidity_24h_usd: 0
  orders:
    max_notional_per_order_usd: {MAX_NOTIONAL}
    submit_rate: 100/1s
    pending_ttl_s: 0
  region:
    shorting_allowed: true
    margin_allowed: true
  on_breach: deny
  trading_states:
    ACTIVE: [open, close, increase, decrease, cancel, modify]
    REDUCING: [close, decrease, cancel, modify]
    HALTED: [cancel]
"""


@dataclass(frozen=True, slots=True)
class Workload:
    sides: tuple[str, ...]  # buy | sell
    quantities: tuple[int, ...]
    times: tuple[datetime, ...]
    states: tuple[tuple[int, str], ...]  # (order index, trading state from then on)

    def to_json(self, rounds: int) -> dict[str, Any]:
        epoch = datetime(1970, 1, 1, tzinfo=AS_OF.tzinfo)
        return {
            "symbol": SYMBOL,
            "price": str(PRICE),
            "max_notional": MAX_NOTIONAL,
            "submit_rate": "100/00:00:01",
            "cash": CASH,
            "held": HELD,
            "orders": list(zip(self.sides, self.quantities, strict=True)),
            "times_ns": [(t - epoch) // timedelta(microseconds=1) * 1000 for t in self.times],
            "states": [list(change) for change in self.states],
            "rounds": rounds,
        }


def make_workload(count: int, seed: int = 17) -> Workload:
    """Seeded orders: 55 % BUYs of 10k-2M units (about a third above the max notional),
    45 % SELLs below it; trading-state changes every 500-3,000 orders; bursts."""
    rng = random.Random(seed)
    sides, quantities, times, states = [], [], [], []
    now = AS_OF + timedelta(minutes=5)
    next_change, state = 0, "ACTIVE"
    names, weights = zip(*STATE_WEIGHTS, strict=True)
    cap_units = int(MAX_NOTIONAL / PRICE)
    for index in range(count):
        in_burst = index % BURST_EVERY >= BURST_EVERY - BURST_LENGTH
        now += BURST_STEP if in_burst else STEP
        times.append(now)
        if index == next_change:
            changed = state if index else "ACTIVE"
            while index and changed == state:
                changed = rng.choices(names, weights)[0]
            state = changed
            states.append((index, state))
            next_change = index + rng.randint(500, 3_000)
        if rng.random() < 0.55:
            sides.append("buy")
            quantities.append(rng.randrange(10_000, 2_000_001, 1_000))
        else:
            sides.append("sell")
            quantities.append(rng.randrange(10_000, cap_units + 1, 1_000))
    return Workload(tuple(sides), tuple(quantities), tuple(times), tuple(states))


# -- Bastion ------------------------------------------------------------------------------


def bastion_policies(folder: Path) -> CompiledPolicySet:
    (folder / "bastion.yaml").write_text(POLICY_SET_YAML)
    (folder / "limits.yaml").write_text(LIMITS_YAML)
    return compile_policy_set(load_policy_set([folder]))


def bastion_snapshot() -> Snapshot:
    text = str(PRICE)
    return Snapshot.from_dict(
        {
            "version": 1,
            "as_of": AS_OF.isoformat().replace("+00:00", "Z"),
            "accounts": [
                {
                    "id": ACCOUNT,
                    "type": "gen",
                    "equity_usd": CASH,
                    "cash_usd": CASH,
                    "day_start_equity_usd": CASH,
                    "peak_equity_usd": CASH,
                    "realized_pnl_usd": 0,
                    "unrealized_pnl_usd": 0,
                    "drift_flag": False,
                }
            ],
            "positions": [
                {
                    "id": "P0",
                    "account_id": ACCOUNT,
                    "symbol": SYMBOL,
                    "asset_class": "equity",
                    "quantity": str(HELD),
                    "side": "long",
                    "entry_price_usd": text,
                    "entered_at": (AS_OF - timedelta(days=30)).isoformat().replace("+00:00", "Z"),
                    "price_usd": text,
                    "strategy_id": "peer",
                    "manual": False,
                }
            ],
            "market": {
                SYMBOL: {
                    "price_usd": text,
                    "bid_usd": "0.79999",
                    "ask_usd": "0.80001",
                    "atr_usd": "0.00500",
                    "volume": 10_000_000,
                    "avg_volume": 10_000_000,
                    "volatility": "0.1",
                    "normal_volatility": "0.1",
                    "liquidity_usd": 10_000_000_000,
                    "normal_liquidity_usd": 10_000_000_000,
                    "correlation": "0.5",
                    "normal_correlation": "0.5",
                    "data_age_s": 1,
                    "quality_score_ratio": "1",
                }
            },
            "system": {"error_rate_pct": "0", "connectivity_ratio": "1", "data_age_s": 1},
            "order_flow": [],
            "regime": {
                "name": "calm",
                "severity": "low",
                "changed_at": (AS_OF - timedelta(days=2)).isoformat().replace("+00:00", "Z"),
            },
        }
    )


def bastion_requests(work: Workload) -> list[OrderRequest]:
    held = Decimal(HELD)
    requests = []
    for index, (side, quantity) in enumerate(zip(work.sides, work.quantities, strict=True)):
        buy = side == "buy"
        requests.append(
            OrderRequest(
                id=f"p{index:05d}",
                account_id=ACCOUNT,
                symbol=SYMBOL,
                action="increase" if buy else "decrease",
                current_size=held,
                target_size=held + quantity if buy else held - quantity,
                strategy_id="peer",
                size_increment=Decimal(1),
                order_type="limit",
                price=PRICE,
            )
        )
    return requests


class Bastion:
    """can_execute over the workload, the state fed forward, the trading state set at
    the workload's change points (as Nautilus's `set_trading_state`)."""

    def __init__(self, policies: CompiledPolicySet, work: Workload) -> None:
        self.policies, self.snapshot = policies, bastion_snapshot()
        self.requests = bastion_requests(work)
        self.times = work.times
        self.changes = dict(work.states)

    def run(self, timed: bool) -> tuple[float, list[int], list[tuple[bool, str]]]:
        policies, snapshot, changes = self.policies, self.snapshot, self.changes
        state = State()
        kept: list[tuple[bool, str]] = []
        samples: list[int] = []
        cpu = time.thread_time_ns
        started = time.thread_time()
        if timed:
            for index, (request, now) in enumerate(zip(self.requests, self.times, strict=True)):
                change = changes.get(index)
                if change is not None:
                    state = replace(state, trading_states={ACCOUNT: change})
                began = cpu()
                result = can_execute(policies, request, snapshot, state, now)
                samples.append(cpu() - began)
                state = result.state
                kept.append((result.approved, _bastion_why(result.blocking)))
        else:
            for index, (request, now) in enumerate(zip(self.requests, self.times, strict=True)):
                change = changes.get(index)
                if change is not None:
                    state = replace(state, trading_states={ACCOUNT: change})
                state = can_execute(policies, request, snapshot, state, now).state
        return time.thread_time() - started, samples, kept


def _bastion_why(blocking: Sequence[str]) -> str:
    if not blocking:
        return ""
    named = {BASTION_WHY.get(name, "other:" + name) for name in blocking}
    for why in WHY_ORDER:
        if why in named:
            return why
    return sorted(named)[0]


def _nautilus_why(reason: str) -> str:
    if not reason:
        return ""
    if reason.startswith("NOTIONAL_EXCEEDS_MAX_PER_ORDER"):
        return "notional"
    if "TradingState" in reason:
        return "trading_state"
    if "MAX_ORDER_SUBMIT_RATE" in reason:
        return "submit_rate"
    return "other:" + reason


# -- the peer's environment ---------------------------------------------------------------


def peer_python(base: str) -> Path:
    """The peer environment's interpreter, made from `base` and NautilusTrader installed
    into it on first use (pip picks the newest release built for that Python)."""
    version = subprocess.run(
        [base, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    venv = PEER_DIR / f"nautilus-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"  installing NautilusTrader into {venv.relative_to(ROOT)} (once) ...", flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import nautilus_trader"], check=False, capture_output=True, text=True
    )
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "nautilus_trader"], check=True
        )
    return python


def run_peer(python: Path, work: Workload, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bastion-peer-") as folder:
        source, sink = Path(folder) / "work.json", Path(folder) / "result.json"
        source.write_text(json.dumps(work.to_json(rounds)))
        done = subprocess.run(
            [str(python), str(SIDE), str(source), str(sink)],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"the NautilusTrader side failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(sink.read_text())
        return result


# -- the comparison -----------------------------------------------------------------------


def _percentiles(samples: Sequence[int]) -> tuple[int, int]:
    """(p50, p99) in ns of one timed round."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]


def _best(latencies: Sequence[Sequence[int]]) -> tuple[float, float]:
    """The lowest p50 and the lowest p99 over the timed rounds, in µs: like throughput,
    the best of N (another process on the shared machine only ever adds)."""
    return min(r[0] for r in latencies) / 1e3, min(r[1] for r in latencies) / 1e3


def native_state() -> str:
    """Which order check this process runs: compiled by `make install`, or Python."""
    if native.loaded():
        return "compiled with mypyc (engine/native.py)"
    return "Python (not compiled: `python -m bastion.engine.native build` compiles it)"


def compare(count: int, rounds: int, base_python: str) -> bool:
    """Run both sides, print the figures and the verdict; False on any mismatch or miss."""
    work, rounds = make_workload(count), max(1, rounds)
    python = peer_python(base_python)
    with tempfile.TemporaryDirectory(prefix="bastion-peer-policies-") as folder:
        policies = bastion_policies(Path(folder))
        try:
            bastion = Bastion(policies, work)
            bastion.run(timed=False)  # warm-up: book, ruleset, caches
            _, samples, outcomes = bastion.run(timed=True)
            latencies = [_percentiles(samples)]
            best = float("inf")
            # The sides take turns (Bastion, the peer, Bastion), as many rounds each.
            for turn in range(rounds):
                if turn == (rounds + 1) // 2:
                    peer = run_peer(python, work, rounds)
                best = min(best, bastion.run(timed=False)[0])
                latencies.append(_percentiles(bastion.run(timed=True)[1]))
            if rounds == 1:
                peer = run_peer(python, work, rounds)
        finally:
            policies.close()
    theirs = [(bool(approved), _nautilus_why(reason)) for approved, reason in peer["outcomes"]]
    mismatches = [
        index
        for index, (ours, other) in enumerate(zip(outcomes, theirs, strict=True))
        if ours != other
    ]
    denied = Counter(why for approved, why in outcomes if not approved)
    print(
        f"  peer: NautilusTrader {peer['version']} (Python {peer['python']}) RiskEngine.execute"
        f"(SubmitOrder) vs Bastion can_execute, {count:,} seeded orders, state fed forward; "
        f"trading state changes {len(work.states)}x; bursts of {BURST_LENGTH} at 1 ms"
    )
    print(f"    Bastion's order check: {native_state()}")
    print(
        f"    outcomes: approved {sum(a for a, _ in outcomes):,}, denied "
        + ", ".join(f"{why} {n:,}" for why, n in denied.most_common())
    )
    same = not mismatches
    print(
        f"    identical outcomes order by order (approved/denied and why): "
        f"{(count - len(mismatches)) / count:.2%} ({len(mismatches):,} mismatches)"
    )
    for index in mismatches[:10]:
        print(
            f"    mismatch: order {index} {work.sides[index]} {work.quantities[index]:,}: "
            f"Bastion {outcomes[index]}, Nautilus {theirs[index]} "
            f"({peer['outcomes'][index][1]})"
        )
    ours_rate, their_rate = count / best, count / peer["best_loop_s"]
    ours_p50, ours_p99 = _best(latencies)
    their_p50, their_p99 = _best(peer["latency_ns"])
    print(
        f"    {'thread CPU time, best of ' + str(rounds):<30} {'Bastion':>11} {'Nautilus':>11}"
        f" {'Bastion/Nautilus':>17}"
    )
    print(
        f"    {'throughput (orders/s)':<30} {ours_rate:>11,.0f} {their_rate:>11,.0f} "
        f"{ours_rate / their_rate:>16.2f}x"
    )
    print(
        f"    {'p50 (µs, each order alone)':<30} {ours_p50:>11.1f} {their_p50:>11.1f} "
        f"{ours_p50 / their_p50:>16.2f}x"
    )
    print(
        f"    {'p99 (µs, each order alone)':<30} {ours_p99:>11.1f} {their_p99:>11.1f} "
        f"{ours_p99 / their_p99:>16.2f}x"
    )
    fast = ours_rate >= THROUGHPUT_TARGET * their_rate and ours_p99 <= their_p99
    verdict = "PASS" if fast else "FAIL"
    print(
        f"  {verdict}  Bastion {ours_rate / their_rate:.2f}x Nautilus's throughput "
        f"(>= {THROUGHPUT_TARGET}x) and p99 {ours_p99 / their_p99:.2f}x its p99 (<= 1x) "
        "(issue #17)"
    )
    if not same:
        print("  FAIL  outcomes differ from Nautilus's: the comparison is void")
    return same and fast


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="orders in the stream")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="throughput: best of")
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter the peer's environment is made from (NautilusTrader's newest "
        "release needs 3.12; default: this one)",
    )
    args = parser.parse_args()
    return 0 if compare(args.count, args.rounds, args.peer_python) else 1


if __name__ == "__main__":
    sys.exit(main())
