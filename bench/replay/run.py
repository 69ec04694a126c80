"""Benchmark: `bastion replay` over a year of daily bars, 50 symbols, 200 positions.

The history is generated here, seeded (history.py). Prints:

- snapshots built per second (the replay adapter and the snapshot builder: what
  `--bars` adds before any evaluation);
- snapshots replayed per second through one policy set and through two (baseline +
  candidate: the shipped set and the `com` change of README "Reviewing a change"), on
  frames already built;
- the live evaluation rate measured in the same run (one `evaluate` on the same
  snapshot, as the service does every cycle), and each replay rate as a ratio of it;
- the end-to-end time of the year through both sets (build + evaluate): target
  (issue 14) under 10 s — PASS / FAIL on wall time; the CPU time beside it is what an
  idle machine's wall time would be (a shared machine stretches only the wall).

    .venv/bin/python bench/replay/run.py [--days 252 --symbols 50 --positions 200]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from history import write_history

from bastion.adapters.replay_frames import BarReplay, bar_files
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.replay import Frame, PolicySetRun, replay
from bastion.engine.state import State

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 10.0
COM_CHANGE = ROOT / "docs" / "examples" / "policy-change" / "com-accounts.yaml"


def policy_sets(scratch: Path) -> list[PolicySetRun]:
    candidate = scratch / "candidate"
    shutil.copytree(ROOT / "policies", candidate)
    shutil.copy(COM_CHANGE, candidate / "com-accounts.yaml")
    runs = []
    for name, folder in (("baseline", ROOT / "policies"), ("candidate", candidate)):
        policy_set = load_policy_set([str(folder)])
        runs.append(PolicySetRun(name, compile_policy_set(policy_set), policy_set.version))
    return runs


def live_rate(run: PolicySetRun, frame: Frame, rounds: int = 30) -> float:
    """Evaluations per second of one `evaluate` on `frame`, as a cycle of the service."""
    _, state = evaluate(run.policies, frame.snapshot, State(), frame.at)  # a warm state
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate(run.policies, frame.snapshot, state, frame.at)
        timings.append(time.perf_counter() - started)
    return 1 / statistics.median(timings)


class Timer:
    """Wall and CPU seconds of one phase (the CPU time shows what a loaded machine hides)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=252)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--positions", type=int, default=200)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-replay-") as folder:
        scratch = Path(folder)
        bars, book = write_history(
            scratch, symbols=options.symbols, positions=options.positions, days=options.days
        )
        sets = policy_sets(scratch)
        with Timer() as build:
            frames = list(BarReplay(bar_files(bars), book).frames())
        with Timer() as one:
            replay(sets[:1], frames)
        with Timer() as two:
            replay(sets, frames)
        live = live_rate(sets[0], frames[len(frames) // 2])
        for run in sets:
            run.policies.close()
    count = len(frames)
    total_s, total_cpu_s = build.wall + two.wall, build.cpu + two.cpu
    print(
        f"history: {count} daily steps, {options.symbols} symbols, {options.positions} "
        f"positions (seeded); wall s (CPU s)"
    )
    print(f"live evaluate (one set, one snapshot): {live:8.1f} evaluations/s")
    for label, timer in (
        ("build snapshots (adapter + builder)", build),
        ("replay, one policy set", one),
        ("replay, two policy sets", two),
    ):
        rate = count / timer.wall
        print(
            f"{label + ':':<37} {rate:8.1f} snapshots/s ({timer.wall:.2f} s ({timer.cpu:.2f} s))"
            + ("" if timer is build else f" = {rate / live:.2f} x live")
        )
    rate = count / total_s
    print(
        f"{'end to end, two sets:':<37} {rate:8.1f} snapshots/s ({total_s:.2f} s "
        f"({total_cpu_s:.2f} s)) = {rate / live:.2f} x live"
    )
    # A shared machine stretches wall time, not CPU time: the CPU seconds are what the run
    # takes on an idle machine (one thread, no I/O to speak of). The verdict stays on wall.
    print(
        f"{'on CPU time (an idle machine):':<37} {count / total_cpu_s:8.1f} snapshots/s "
        f"({total_cpu_s:.2f} s): {'under' if total_cpu_s < TARGET_S else 'over'} "
        f"the {TARGET_S:.0f} s target; the wall / CPU ratio {total_s / total_cpu_s:.1f} "
        "is the machine's load"
    )
    verdict = "PASS" if total_s < TARGET_S else "FAIL"
    print(
        f"{verdict}: {count} daily steps, {options.symbols} symbols, {options.positions} "
        f"positions, two sets in {total_s:.2f} s wall, {total_cpu_s:.2f} s CPU (target < "
        f"{TARGET_S:.0f} s; building the snapshots {100 * build.wall / total_s:.0f} % of it)"
    )
    return 0  # the verdict is printed (as bench/check and bench/eval): `make bench` goes on


if __name__ == "__main__":
    sys.exit(main())
