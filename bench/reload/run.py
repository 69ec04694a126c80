"""Benchmark: hot reload of the policy directory (issue 6, item 8).

1. Latency from a file write to the new version being `current`, through the
   directory watcher (default debounce 0.2 s): 30 saves, alternately in place and
   by rename-replace as editors do; p50 / p99 (target p99 < 500 ms).
2. 200 reloads (reload() calls alternating two valid versions of escalation.yaml)
   while another thread evaluates examples/snapshots/crash-day.json without pause:
   evaluations, failed ones (an exception or an evaluation/error decision) and mixed
   ones (compiled set and policy set disagree, or a decision names a version not in
   its set) — targets: zero; OS thread count and RSS before / after (flat).
3. 50 × 50: reloads of the default set and of 50 LimitPolicies × 50 ProtectionPolicies
   (bench/check/many_policies.py `write_grid`) taking turns, a threshold changed in
   each every time; one reload (load + lint + compile + swap) p50 / p99 in wall time
   and in thread CPU time, the grid's as a ratio to the default set's measured in the
   same run (issue 17 point 6); rulesets live after (bounded). Target: grid p99 <
   500 ms.

Runs on a temporary copy of policies/; takes about 40 s.

    .venv/bin/python bench/reload/run.py [--grid-only]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "check"))

from many_policies import live_rulesets, write_grid

from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.reloader import PolicyReloaded, PolicyReloader

ROOT = Path(__file__).resolve().parents[2]
SAVES = 30
RELOADS = 200
WARM_UP_RELOADS = 20
LATENCY_TARGET_S = 0.5
RSS_GROWTH_BOUND_MB = 20.0
TIMEOUT_S = 5.0
GRID_RELOADS = 20
GRID_RULESETS_BOUND = 1_000  # live after the grid reloads: a few hundred at most


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def os_threads() -> int:
    """Threads as the kernel counts them: C threads too, not only Python's."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def escalation_text(interval_s: int) -> str:
    """escalation.yaml with the `enhanced` level polled every `interval_s` seconds."""
    text = (ROOT / "policies" / "escalation.yaml").read_text()
    return text.replace("interval_s: 60 ", f"interval_s: {interval_s} ")


def save(policies: Path, text: str, *, rename: bool) -> None:
    target = policies / "escalation.yaml"
    if not rename:
        target.write_text(text)
        return
    temporary = policies / ".escalation.yaml.tmp"
    temporary.write_text(text)
    os.replace(temporary, target)


def watcher_latency(policies: Path) -> list[float]:
    reloader = PolicyReloader(policies, now=lambda: datetime.now(UTC))
    reloader.load_initial()
    reloader.start_watching()
    samples = []
    try:
        for index in range(SAVES):
            before = reloader.current.version
            text = escalation_text(100 + index)  # a new version every time
            started = time.perf_counter()
            save(policies, text, rename=index % 2 == 1)
            while reloader.current.version == before:
                if time.perf_counter() - started > TIMEOUT_S:
                    raise SystemExit(f"save {index}: no reload within {TIMEOUT_S} s")
                time.sleep(0.001)
            samples.append(time.perf_counter() - started)
            time.sleep(0.05)  # separate saves, or the debounce merges them
    finally:
        reloader.stop()
    return samples


class Evaluator(threading.Thread):
    """Evaluates the crash-day snapshot on whatever set is current, without pause."""

    def __init__(self, reloader: PolicyReloader) -> None:
        super().__init__(name="bench-evaluator")
        self.reloader = reloader
        self.snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
        self.done = threading.Event()
        self.evaluations = self.failed = self.mixed = 0
        self.versions: set[str] = set()

    def run(self) -> None:
        while not self.done.is_set():
            loaded = self.reloader.current  # one read: this evaluation's whole set
            try:
                decisions, _ = evaluate(
                    loaded.compiled, self.snapshot, State(), self.snapshot.as_of
                )
            except Exception:
                self.failed += 1
                continue
            self.evaluations += 1
            self.versions.add(loaded.version)
            known = {*loaded.versions().values(), loaded.version}
            if any(d.kind == "evaluation" and d.outcome == "error" for d in decisions):
                self.failed += 1
            if loaded.compiled.version != loaded.policy_set.version or any(
                d.policy_version not in known for d in decisions
            ):
                self.mixed += 1
            time.sleep(0)  # offer the GIL (the rules engine's C code never releases it)


def reloads_under_evaluation(policies: Path) -> dict[str, float]:
    reloader = PolicyReloader(policies, now=lambda: datetime.now(UTC))
    reloader.load_initial()
    texts = (escalation_text(45), escalation_text(50))
    for index in range(WARM_UP_RELOADS):  # first compiles fill caches; not a leak
        save(policies, texts[index % 2], rename=True)
        reloader.reload()
    gc.collect()
    threads_before, rss_before = os_threads(), rss_mb()
    evaluator = Evaluator(reloader)
    evaluator.start()
    started = time.perf_counter()
    rejected, took_s = 0, []
    for index in range(RELOADS):
        save(policies, texts[index % 2], rename=True)
        event = reloader.reload()
        took_s.append(event.took_s)
        if not isinstance(event, PolicyReloaded):
            rejected += 1
    took = time.perf_counter() - started
    evaluator.done.set()
    evaluator.join()
    gc.collect()
    return {
        "took_s": took,
        "reload_p50_s": statistics.median(took_s),
        "reload_max_s": max(took_s),
        "rejected": rejected,
        "evaluations": evaluator.evaluations,
        "failed": evaluator.failed,
        "mixed": evaluator.mixed,
        "versions_seen": len(evaluator.versions),
        "threads_before": threads_before,
        "threads_after": os_threads(),
        "rss_before": rss_before,
        "rss_after": rss_mb(),
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def grid_reloads(scratch: Path) -> bool:
    """Reloads of the default set and of the 50 × 50 grid, taking turns (section 3)."""
    default_dir = scratch / "default"
    shutil.copytree(ROOT / "policies", default_dir)
    grid_dir = write_grid(scratch / "grid")
    cases = {  # name: (directory, file changed, text, threshold line)
        "default": (default_dir, "limits.yaml", "max_open_positions: 10"),
        "grid": (grid_dir, "limits-07.yaml", "max_open_positions: 13"),
    }
    reloaders = {}
    for name, (directory, _, _) in cases.items():
        reloaders[name] = PolicyReloader(directory, now=lambda: datetime.now(UTC))
        reloaders[name].load_initial()
    texts = {name: (d / f).read_text() for name, (d, f, _) in cases.items()}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    rejected = 0
    for index in range(GRID_RELOADS):
        for name, (directory, filename, line) in cases.items():
            changed = line.replace(line.split(": ")[1], str(20 + index % 2))
            (directory / filename).write_text(texts[name].replace(line, changed))
            started = time.thread_time()
            event = reloaders[name].reload()
            cpu[name].append(time.thread_time() - started)
            wall[name].append(event.took_s)
            rejected += not isinstance(event, PolicyReloaded)
    gc.collect()
    rulesets = live_rulesets()
    grid_wall, default_wall = _percentiles(wall["grid"]), _percentiles(wall["default"])
    grid_cpu, default_cpu = _percentiles(cpu["grid"]), _percentiles(cpu["default"])
    cache = reloaders["grid"].current.compiled.order_rulesets
    print(
        f"  50 × 50 limit × protection policies ({len(list(grid_dir.glob('*.yaml')))} files), "
        f"{GRID_RELOADS} reloads each taking turns with the default set, a threshold "
        f"changed every time ({rejected} rejected):"
    )
    for label, grid_pair, default_pair in (
        ("wall", grid_wall, default_wall),
        ("thread CPU", grid_cpu, default_cpu),
    ):
        print(
            f"    one reload, {label}: grid p50 {grid_pair[0] * 1e3:.0f} ms, p99 "
            f"{grid_pair[1] * 1e3:.0f} ms; default set p50 {default_pair[0] * 1e3:.0f} ms, "
            f"p99 {default_pair[1] * 1e3:.0f} ms; grid = {grid_pair[0] / default_pair[0]:.1f}x "
            f"(p50), {grid_pair[1] / default_pair[1]:.1f}x (p99) the default set"
        )
    print(
        f"    rulesets live after: {rulesets:,} (both sets; the grid's order cache holds "
        f"{len(cache) if cache else 0}, {cache.compiled if cache else 0} compiled for it)"
    )
    latency_ok = grid_wall[1] < LATENCY_TARGET_S and rejected == 0
    bounded = rulesets < GRID_RULESETS_BOUND
    print(
        f"  {'PASS' if latency_ok else 'FAIL'} 50 × 50 reload p99 {grid_wall[1] * 1e3:.0f} ms "
        f"< {LATENCY_TARGET_S * 1e3:.0f} ms (thread CPU p99 {grid_cpu[1] * 1e3:.0f} ms)"
    )
    print(f"  {'PASS' if bounded else 'FAIL'} rulesets live {rulesets:,} < {GRID_RULESETS_BOUND:,}")
    for reloader in reloaders.values():
        reloader.stop()
    return latency_ok and bounded


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Runs on a temporary copy of policies/; exit 1 when a target is missed.",
    )
    parser.add_argument(
        "--grid-only",
        action="store_true",
        help="only the 50 × 50 limit × protection reloads (part 3, ~15 s)",
    )
    if parser.parse_args().grid_only:
        with tempfile.TemporaryDirectory(prefix="bastion-bench-reload-") as scratch:
            print("bench/reload: 50 × 50 policies against the default set")
            return 0 if grid_reloads(Path(scratch)) else 1
    with tempfile.TemporaryDirectory(prefix="bastion-bench-reload-") as scratch:
        policies = Path(scratch) / "policies"
        shutil.copytree(ROOT / "policies", policies)
        print(f"bench/reload: default policy set ({len(list(policies.glob('*.yaml')))} files)")

        samples = sorted(watcher_latency(policies))
        p50, p99 = (
            statistics.median(samples),
            samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        )
        latency_ok = p99 < LATENCY_TARGET_S
        print(
            f"  write -> current via the watcher (debounce 0.2 s), {len(samples)} saves "
            f"(in place and rename-replace): p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
            f"max {samples[-1] * 1e3:.0f} ms "
            f"(target p99 < 500 ms: {'ok' if latency_ok else 'MISSED'})"
        )

        result = reloads_under_evaluation(policies)
        growth = result["rss_after"] - result["rss_before"]
        flat = result["threads_after"] == result["threads_before"] and growth < RSS_GROWTH_BOUND_MB
        clean = result["failed"] == result["mixed"] == result["rejected"] == 0
        print(
            f"  {RELOADS} reloads in {result['took_s']:.1f} s under continuous evaluation: "
            f"{result['evaluations']:,.0f} evaluations on {result['versions_seen']:.0f} versions, "
            f"{result['failed']:.0f} failed, {result['mixed']:.0f} mixed, "
            f"{result['rejected']:.0f} reloads rejected (target: zero failed / mixed: "
            f"{'ok' if clean else 'MISSED'})"
        )
        print(
            f"  one reload (load + lint + compile + swap) under that load: "
            f"p50 {result['reload_p50_s'] * 1e3:.0f} ms, max {result['reload_max_s'] * 1e3:.0f} ms"
        )
        print(
            f"  OS threads {result['threads_before']:.0f} -> {result['threads_after']:.0f}, "
            f"RSS {result['rss_before']:.1f} -> {result['rss_after']:.1f} MB "
            f"({growth:+.1f} MB; target flat, < {RSS_GROWTH_BOUND_MB:.0f} MB: "
            f"{'ok' if flat else 'MISSED'})"
        )
        grid_ok = grid_reloads(Path(scratch))
    return 0 if latency_ok and clean and flat and grid_ok else 1


if __name__ == "__main__":
    sys.exit(main())
