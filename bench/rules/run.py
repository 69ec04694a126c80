"""Throughput of CompiledRuleset.match: facts per second for 3, 15 and 30 threshold rules.

Each rule compares one field to a threshold (mixed > >= < <=); rule k reads field
k mod F. Rows: 3, 15 and 30 rules over 12 fields, and the default policy's position
shape (3 escalation + 2 roll thresholds over 2 fields: breach_atr, abs_delta). "calm"
facts trip ~5 % of the rules, "stressed" facts trip every rule (the worst case: each
match is a result frame the engine serialises). Batch 1 is one `match` call per fact
(pre-trade); batch 1,000 is a snapshot's worth. Beside each figure: the same thresholds
as a plain Python loop (the floor), and the ratio floor / engine.

    .venv/bin/python bench/rules/run.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import operator
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bastion.engine.rules import Compare, CompiledRuleset, RuleSpec, compile_rules

ALL_FIELDS = [f"metric_{index}" for index in range(12)]
OPS = [">", ">=", "<", "<="]
PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def make_specs(count: int, fields: int) -> list[RuleSpec]:
    """Rule k: field k mod `fields`, op k mod 4; a field only ever sees > >= or < <=."""
    specs = []
    for index in range(count):
        field = index % fields
        op = OPS[2 * (field % 2) + (index // fields) % 2]
        threshold = 95.0 if op.startswith(">") else 5.0  # calm values: uniform in [0, 100]
        specs.append(RuleSpec(f"rule_{index}", Compare(ALL_FIELDS[field], op, threshold)))
    return specs


def make_facts(count: int, fields: int, *, stressed: bool) -> list[dict[str, float]]:
    rng = random.Random(7)
    names = ALL_FIELDS[:fields]
    if stressed:  # beyond every threshold: 99 for the > fields, 1 for the < fields
        return [{name: 99.0 - 98.0 * (k % 2) for k, name in enumerate(names)}] * count
    return [{name: rng.uniform(0.0, 100.0) for name in names} for _ in range(count)]


def plain_python(specs: Sequence[RuleSpec], facts: Sequence[Mapping[str, float]]) -> int:
    checks = [
        (spec.rule_id, spec.condition.field, PY_OPS[spec.condition.op], spec.condition.value)
        for spec in specs
        if isinstance(spec.condition, Compare)
    ]
    hits = 0
    for fact in facts:
        hits += len(frozenset(rid for rid, f, op, t in checks if op(fact[f], t)))
    return hits


def rate(run: Callable[[], object], facts: int, seconds: float) -> float:
    run()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        done += facts
    return done / (time.perf_counter() - start)


def bench(rules: int, fields: int, batch: int, stressed: bool, seconds: float) -> str:
    specs = make_specs(rules, fields)
    compiled: CompiledRuleset = compile_rules(specs)
    facts = make_facts(batch, fields, stressed=stressed)
    hits = sum(map(len, compiled.match(facts))) / batch
    engine = rate(lambda: compiled.match(facts), batch, seconds)
    floor = rate(lambda: plain_python(specs, facts), batch, seconds)
    compiled.close()
    label = "stressed" if stressed else "calm"
    return (
        f"{rules:>5} {fields:>6} {batch:>6} {label:>9} {hits:>10.2f} {engine:>13,.0f} "
        f"{floor:>13,.0f} {floor / engine:>7.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    header = ("rules", 5), ("fields", 6), ("batch", 6), ("facts", 9), ("hits/fact", 10)
    more = ("engine f/s", 13), ("python f/s", 13), ("ratio", 8)
    print(" ".join(f"{name:>{width}}" for name, width in (*header, *more)))
    for rules, fields in ((3, 12), (15, 12), (30, 12), (5, 2)):
        for batch in (1, 1000):
            for stressed in (False, True):
                print(bench(rules, fields, batch, stressed, args.seconds), flush=True)


if __name__ == "__main__":
    main()
