"""Benchmark: a tick end to end (build, evaluate, record decisions) from 10 to 1M positions.

For each size, in a process of its own (so that its peak memory is its own):

- build: the snapshot's values assembled in code turned into a Snapshot as the
  adapters' builder finishes one (bench/eval/snapshots.build: each Position made and
  checked by `typed.maker`, the rest and the cross-references by `snapshot_from_typed`)
  — every field rule checked; the market records are given, not worked out from bars
  (bench/eval/ingest.py times the builder from a venue poll);
- first: evaluate() with an empty state (a crash day: half the book escalates at once,
  each transition a decision);
- steady: evaluate() with the previous evaluation's state (what the service does every
  tick), positions screened with numpy first (engine/evaluation/screen.py);
- full: the same steady evaluation without the screen (every position through the
  rules engine: the path before the screen), up to 100,000 positions;
- tick: build + steady evaluate + record the decisions in an audit trail (one fsync),
  on the next document, where one symbol in fifty moved by an ATR or two;
- floor: the plain-Python floor — for every position its breach and loss in Decimal,
  compared with `if` to every threshold (no rules engine, no state, no decisions);

each timed in this thread's CPU time, best of N rounds with the cases taking turns, and
printed as a ratio to the floor measured in the same run; per-position cost; peak RSS.
Then p50/p99 latency at 10 positions, and the 100,000-position tick with the garbage
collector on, off, and frozen after start-up with raised thresholds (the service's
setting, service/runner.py).

    .venv/bin/python bench/eval/run.py                      # 10 .. 100,000 positions
    .venv/bin/python bench/eval/run.py --sizes 10,1000      # a quick look
    .venv/bin/python bench/eval/run.py --sizes 1000000 --gc 0   # 1M: about two minutes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from snapshots import AS_OF, build, make_document, moved

from bastion.engine.evaluation import columns as columns_module
from bastion.engine.evaluation import evaluate as evaluate_module
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.kinds.breakers import Compare
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State
from bastion.service.audit import AuditTrail
from bastion.service.auditor import Auditor
from bastion.service.runner import GC_THRESHOLDS, GC_YOUNG_MAX, gc_thresholds

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SIZES = (10, 1_000, 10_000, 100_000)
FULL_UP_TO = 100_000  # the unscreened path beyond this takes minutes
HUNDRED = Decimal(100)


def rounds_for(size: int) -> int:
    return 5 if size <= 10_000 else 3 if size <= 100_000 else 1


def best_of(rounds: int, cases: Sequence[Callable[[], object]], repeat: int = 1) -> list[float]:
    """Best CPU seconds (this thread) per call of each case, over `repeat` calls; the
    cases take turns in each round."""
    best = [float("inf")] * len(cases)
    for _ in range(rounds):
        for index, case in enumerate(cases):
            started = time.thread_time()
            for _ in range(repeat):
                case()
            best[index] = min(best[index], (time.thread_time() - started) / repeat)
    return best


def plain_python(policies: CompiledPolicySet, snapshot: Snapshot) -> int:
    """The floor: each position's breach (ATRs) and loss (%) in Decimal against every
    escalation threshold and position breaker, with `if`s; nothing else."""
    escalation = policies.of_kind("EscalationPolicy")[0].policy.spec
    thresholds = [level.breach_atr for level in escalation.levels[1:]]
    losses = [
        breaker.condition.value
        for compiled in policies.of_kind("BreakerPolicy")
        if compiled.breakers is not None
        for breaker in compiled.breakers.by_scope.get("position", ())
        if isinstance(breaker.condition, Compare) and breaker.condition.metric.endswith("loss_pct")
    ]
    market = dict(snapshot.market)
    fired = 0
    for position in snapshot.positions:
        quote = market[position.symbol]
        entry = position.entry_price_usd
        breach = max(Decimal(0), (entry - quote.price_usd) / quote.atr_usd)
        loss = max(Decimal(0), (entry - position.price_usd) / entry * HUNDRED)
        for threshold in thresholds:
            if breach >= threshold:
                fired += 1
        for threshold in losses:
            if loss >= threshold:
                fired += 1
    return fired


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return _status_mb("VmRSS")


def reset_peak() -> None:
    """Start the peak resident memory (VmHWM) afresh from the current RSS (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """The peak resident memory since `reset_peak`."""
    return _status_mb("VmHWM")


def service_gc(size: int) -> None:
    """The service's collector setting (cli/serve.py): start-up frozen, raised thresholds,
    the young one following a book of ``size`` positions (gc_thresholds)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*gc_thresholds(size))


def measure(size: int) -> dict[str, Any]:
    """One size, in this process: timings (CPU s), decisions and memory (MB)."""
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    service_gc(size)
    started_mb = rss_mb()
    document = make_document(size)
    document_mb = rss_mb() - started_mb
    reset_peak()
    snapshot = build(document)
    build_peak = peak_mb()
    snapshot_mb = rss_mb() - started_mb - document_mb
    reset_peak()
    first_decisions, warm = evaluate(policies, snapshot, State(), AS_OF)
    first_peak, first_count = peak_mb(), len(first_decisions)
    del first_decisions
    state_mb = rss_mb() - started_mb - document_mb - snapshot_mb
    following = moved(document)
    auditor = Auditor(AuditTrail.open(tempfile.mkdtemp(prefix="bench-eval-"), clock=lambda: AS_OF))
    parts: list[tuple[float, float, float, int]] = []  # build, evaluate, record, decisions

    def steady(screened: bool = True) -> None:
        evaluate_module.SCREEN = screened
        columns_module.forget()  # the service evaluates each snapshot once: build columns
        evaluate(policies, snapshot, warm, AS_OF)
        evaluate_module.SCREEN = True

    def tick() -> None:
        columns_module.forget()
        started = time.thread_time()
        fresh = build(following)
        built = time.thread_time()
        decisions, _ = evaluate(policies, fresh, warm, AS_OF)
        evaluated = time.thread_time()
        auditor.decisions(decisions)
        parts.append(
            (built - started, evaluated - built, time.thread_time() - evaluated, len(decisions))
        )

    reset_peak()
    tick()  # alive: the document, the previous snapshot and state, the new snapshot
    tick_peak = peak_mb()
    cases: list[Callable[[], object]] = [
        lambda: build(document),
        lambda: evaluate(policies, snapshot, State(), AS_OF),
        steady,
        tick,
        lambda: plain_python(policies, snapshot),
    ]
    if size <= FULL_UP_TO:
        cases.append(lambda: steady(screened=False))
    timings = best_of(rounds_for(size), cases, repeat=max(1, 2_000 // size))
    build_s, first_s, steady_s, tick_s, floor_s = timings[:5]
    tick_build, tick_evaluate, tick_record, tick_decisions = min(parts, key=lambda p: sum(p[:3]))
    policies.close()
    return {
        "size": size,
        "build": build_s,
        "first": first_s,
        "steady": steady_s,
        "tick": tick_s,
        "tick_build": tick_build,
        "tick_evaluate": tick_evaluate,
        "tick_record": tick_record,
        "floor": floor_s,
        "full": timings[5] if len(timings) > 5 else None,
        "first_decisions": first_count,
        "tick_decisions": tick_decisions,
        "document_mb": document_mb,
        "snapshot_mb": snapshot_mb,
        "state_mb": state_mb,
        "build_peak_mb": build_peak,
        "first_peak_mb": first_peak,
        "tick_peak_mb": tick_peak,
    }


def save_state(size: int, path: str) -> dict[str, Any]:
    """The steady state of `size` positions, written to `path` (as the service saves it)."""
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    snapshot = build(make_document(size))
    _, warm = evaluate(policies, snapshot, State(), AS_OF)
    Path(path).write_text(json.dumps(warm.to_dict()))
    return {"escalations": len(warm.escalations)}


def restarted_tick(size: int, path: str) -> dict[str, Any]:
    """Peak RSS of a tick in a service restarted from its saved state: no crash day
    behind it, only the document, the previous snapshot, the state and the new snapshot."""
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    service_gc(size)
    warm = State.from_dict(json.loads(Path(path).read_text()))
    document = make_document(size)
    previous = build(document)
    evaluate(policies, previous, warm, AS_OF)  # the last cycle before this one
    following = moved(document)
    gc.collect()
    before = rss_mb()
    reset_peak()
    fresh = build(following)
    evaluate(policies, fresh, warm, AS_OF)
    return {"peak_mb": peak_mb(), "before_mb": before}


def gc_tick(mode: str, size: int) -> dict[str, Any]:
    """The tick (build + steady evaluate) with the collector `mode`, set at start-up as
    the service sets it: on (defaults), off, or start-up frozen with the service's
    thresholds. The snapshots and the state are made after it, as in the service."""
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    if mode == "off":
        gc.disable()
    elif mode == "frozen":
        service_gc(size)
    elif mode == "fixed":  # before the young threshold followed the book
        service_gc(0)
    document = make_document(size)
    snapshot = build(document)
    _, warm = evaluate(policies, snapshot, State(), AS_OF)
    following = moved(document)

    def tick() -> None:
        columns_module.forget()
        evaluate(policies, build(following), warm, AS_OF)

    (best,) = best_of(3, [tick])
    return {"mode": mode, "tick": best}


def child(job: str) -> dict[str, Any]:
    """`size:N` or `gc:MODE:N`, run in a process of its own (`run_child`)."""
    parts = job.split(":")
    if parts[0] == "latency":
        return latency_at_10()
    if parts[0] == "save":
        return save_state(int(parts[1]), parts[2])
    if parts[0] == "restart":
        return restarted_tick(int(parts[1]), parts[2])
    if parts[0] == "size":
        return measure(int(parts[1]))
    return gc_tick(parts[1], int(parts[2]))


def run_child(job: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", job], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/eval: {job} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def latency_at_10() -> dict[str, Any]:
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    service_gc(10)
    small = build(make_document(10))
    _, warm = evaluate(policies, small, State(), AS_OF)
    samples = []
    for _ in range(3000):  # CPU time: what the machine's other tenants do not add
        started = time.thread_time_ns()
        evaluate(policies, small, warm, AS_OF)
        samples.append((time.thread_time_ns() - started) / 1e6)
    samples.sort()
    policies.close()
    return {"p50": statistics.median(samples), "p99": samples[int(len(samples) * 0.99)]}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:>7.1f}ms" if seconds < 10 else f"{seconds:>8.2f}s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated position counts (default: %(default)s; 1000000 takes about "
        "two minutes and 1.7 GB)",
    )
    parser.add_argument(
        "--gc",
        type=int,
        default=100_000,
        metavar="POSITIONS",
        help="positions of the garbage-collector comparison (0: skip it; default %(default)s)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(child(options.child)))
        return 0
    sizes = [int(text.replace("_", "")) for text in options.sizes.split(",") if text]
    print("bench/eval: default policy set, one core, CPU time of this thread, best of N rounds,")
    print(
        "  the service's collector setting (start-up frozen, thresholds "
        f"gc_thresholds(positions): {gc_thresholds(10_000)} at 10,000, {GC_THRESHOLDS} from "
        f"{(GC_YOUNG_MAX - GC_THRESHOLDS[0]) * 2 // 3 + 1:,})"
    )
    print(
        f"  {'positions':>9}  {'build':>9}  {'first':>9}  {'steady':>9}  {'floor':>9}  "
        f"{'st/floor':>8}  {'unscreened':>10}  {'tick e2e':>9}  {'µs/pos':>6}  {'tick/fl':>8}  "
        f"{'tick RSS':>8}"
    )
    for size in sizes:
        row = run_child(f"size:{size}")
        floor = row["floor"]
        full = row["full"]
        full_text = f"{full / row['steady']:>9.1f}x" if full is not None else f"{'—':>10}"
        print(
            f"  {size:>9,}  {_ms(row['build'])}  {_ms(row['first'])}  {_ms(row['steady'])}  "
            f"{_ms(floor)}  {row['steady'] / floor:>7.2f}x  {full_text}  {_ms(row['tick'])}  "
            f"{row['tick'] / size * 1e6:>6.2f}  {row['tick'] / floor:>7.2f}x  "
            f"{row['tick_peak_mb']:>6.0f}MB"
        )
        tick = row["tick_build"] + row["tick_evaluate"] + row["tick_record"]
        print(
            f"  {'':>9}  tick: build {row['tick_build'] / tick:.0%}, evaluate "
            f"{row['tick_evaluate'] / tick:.0%}, record {row['tick_record'] / tick:.0%} "
            f"({row['tick_decisions']:,} decisions); first: {row['first_decisions']:,} decisions"
        )
        saved = str(Path(tempfile.mkdtemp(prefix="bench-eval-")) / "state.json")
        run_child(f"save:{size}:{saved}")
        restarted = run_child(f"restart:{size}:{saved}")
        print(
            f"  {'':>9}  memory: peak RSS of a tick after a restart from the saved state "
            f"(no crash day behind it) {restarted['peak_mb']:.0f} MB"
        )
        print(
            f"  {'':>9}  memory: document {row['document_mb']:.0f} MB, snapshot "
            f"{row['snapshot_mb']:.0f} MB, state {row['state_mb']:.0f} MB; peak RSS of the "
            f"build {row['build_peak_mb']:.0f} MB, of the first evaluation "
            f"{row['first_peak_mb']:.0f} MB"
        )
    print(
        "  floor: plain Python, each position's breach and loss in Decimal against every "
        "threshold;\n  st/floor, tick/fl: x the floor; unscreened: the steady evaluation without "
        "the numpy screen,\n  x the screened one; tick e2e: build + steady evaluate + record "
        "the decisions, one symbol in 50 moved"
    )
    latency = run_child("latency")
    p50, p99 = latency["p50"], latency["p99"]
    print(
        f"  10 positions, 3,000 steady evaluations (CPU time): p50 {p50:.3f} ms, "
        f"p99 {p99:.3f} ms (target p99 < 2 ms)"
    )
    if options.gc:
        ticks = dict.fromkeys(MODES, float("inf"))
        for _ in range(2):  # the settings take turns, each in a process of its own
            for mode in MODES:
                ticks[mode] = min(ticks[mode], run_child(f"gc:{mode}:{options.gc}")["tick"])
        on = ticks["on"]
        print(f"  garbage collector, {options.gc:,}-position tick (build + steady evaluate):")
        for mode in MODES:
            print(
                f"    {MODE_TEXT[mode]:<62} {ticks[mode] * 1e3:>8.1f} ms  {ticks[mode] / on:.2f}x"
            )
    return 0


MODES = ("on", "off", "fixed", "frozen")
MODE_TEXT = {
    "on": "on, default thresholds",
    "off": "off (gc.disable)",
    "fixed": f"gc.freeze() after start-up, thresholds {GC_THRESHOLDS}",
    "frozen": "gc.freeze() after start-up, gc_thresholds(book) (the service)",
}


if __name__ == "__main__":
    sys.exit(main())
