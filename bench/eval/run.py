"""Benchmark: evaluate() on snapshots of 10, 1,000 and 10,000 positions (default policies).

Prints positions evaluated per second for a first evaluation (empty state: many
transitions, so many decisions) and for the steady state (the state of the previous
evaluation: few decisions — what the service does every tick); p50/p99 latency for
a 10-position snapshot; memory growth at 10,000 positions; and, beside them, the
same rules written as plain Python (the floor: the same facts, thresholds compared
with `if`, no rules engine, no state machine, no decisions), as a ratio.

Targets (issue 3): >= 50,000 position evaluations/s on one core; p99 < 2 ms at 10
positions; memory growth < 50 MB at 10,000 positions.

    .venv/bin/python bench/eval/run.py
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from snapshots import make_snapshot

from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.evaluation.facts import build_facts
from bastion.engine.lint.rules.breakers import OPERATORS
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.kinds.breakers import Compare
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

ROOT = Path(__file__).resolve().parents[2]


def best_of(rounds: int, call: Callable[[], object]) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return min(timings)


def plain_python(policies: CompiledPolicySet, snapshot: Snapshot) -> int:
    """The floor: same facts and thresholds, compared with plain `if`s."""
    facts = build_facts(snapshot)
    escalation = policies.of_kind("EscalationPolicy")[0].policy.spec
    thresholds = [level.breach_atr for level in escalation.levels[1:]]
    fired = 0
    for position in snapshot.positions:
        market = snapshot.market[position.symbol]
        breach = max(Decimal(0), (position.entry_price_usd - market.price_usd) / market.atr_usd)
        fired += sum(1 for threshold in thresholds if breach >= threshold)
    for compiled in policies.of_kind("BreakerPolicy"):
        assert compiled.breakers is not None
        for scope, members in compiled.breakers.by_scope.items():
            for item in facts.of(scope):
                for breaker in members:
                    condition = breaker.condition
                    if isinstance(condition, Compare):
                        value = item.value(condition.metric)
                        if value is not None and OPERATORS[condition.op](value, condition.value):
                            fired += 1
    return fired


def main() -> int:
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    print("bench/eval: default policy set, one core, best of 3 rounds")
    print(
        f"  {'positions':>9}  {'first eval':>12}  {'steady':>12}  {'pos/s steady':>12}  "
        f"{'pos/s first':>11}  {'plain py':>10}  {'ratio':>6}"
    )
    for size in (10, 1_000, 10_000):
        snapshot = make_snapshot(size)
        _, warm = evaluate(policies, snapshot, State(), snapshot.as_of)
        first = best_of(3, partial(evaluate, policies, snapshot, State(), snapshot.as_of))
        steady = best_of(3, partial(evaluate, policies, snapshot, warm, snapshot.as_of))
        floor = best_of(3, partial(plain_python, policies, snapshot))
        print(
            f"  {size:>9,}  {first * 1e3:>9.2f} ms  {steady * 1e3:>9.2f} ms  "
            f"{size / steady:>12,.0f}  {size / first:>11,.0f}  {floor * 1e3:>7.2f} ms  "
            f"{steady / floor:>5.1f}x"
        )
    small = make_snapshot(10)
    _, warm = evaluate(policies, small, State(), small.as_of)
    samples = []
    for _ in range(3000):
        started = time.perf_counter_ns()
        evaluate(policies, small, warm, small.as_of)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99)]
    print(
        f"  10 positions, 3,000 steady evaluations: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        "(target p99 < 2 ms)"
    )
    big = make_snapshot(10_000)
    gc.collect()
    tracemalloc.start()
    evaluate(policies, big, State(), big.as_of)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  memory growth evaluating 10,000 positions (tracemalloc peak): {peak / 2**20:.1f} MB "
        "(target < 50 MB)"
    )
    policies.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
