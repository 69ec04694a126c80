"""Benchmark: positions evaluated per second with 1 and with 2 local Ray partition actors.

The same synthetic venue (book.py: `--accounts` accounts of `--positions` positions on
the sim's market) is served twice on one local Ray instance: once by one partition that
owns every account, once by two partitions that own half each (the accounts dealt as
`bastion serve --ray` deals them). Each partition runs whole service cycles — poll its
share of the venue, build and validate the snapshot, evaluate, save its --state file —
back to back (`Partition.run_cycles`), all partitions of a case at once. A round is
`--cycles` cycles per partition; the two cases take turns, best of `--rounds` rounds.

Printed: positions per second of wall time for each case and the ratio 2 actors / 1
actor (the scale-out: 2.0 is perfect on two free cores), the CPU per position inside
each partition's cycle thread (`time.thread_time`), the same two partitions run one at
a time (no contention: what partitioning itself costs per position, against what two
busy cores cost each other), and the machine's cores and load — on a shared 2-core VM the
ratio can only be read against them.

    .venv/bin/python bench/scale/run.py                  # 20 accounts x 100 positions
    .venv/bin/python bench/scale/run.py --quick          # a smoke run (seconds)
    .venv/bin/python bench/scale/run.py --accounts 40 --positions 250 --format json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERIAL = 0  # the case "2 partitions, one at a time" (what partitioning costs, alone)
ROOT = HERE.parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--positions", type=int, default=100, help="positions per account")
    parser.add_argument("--cycles", type=int, default=3, help="cycles per partition per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="4 accounts x 25, 2 rounds")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.positions, args.cycles, args.rounds = 4, 25, 2, 2
    # The partition actors import book.py: Ray's workers inherit this environment.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
    )
    sys.path.insert(0, str(HERE))
    result = measure(args)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import ray  # noqa: PLC0415 - the optional extra

    from bastion.service.ray.accounts import PartitionMap  # noqa: PLC0415
    from bastion.service.ray.head import RayHead  # noqa: PLC0415
    from bastion.service.ray.partition import PartitionSpec  # noqa: PLC0415

    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    accounts = [f"acc-{index:04d}" for index in range(args.accounts)]
    config = {"accounts": args.accounts, "positions_per_account": args.positions}
    ray.init(num_cpus=usable, include_dashboard=False, log_to_driver=False)
    heads: dict[int, RayHead] = {}
    with tempfile.TemporaryDirectory(prefix="bastion-scale-") as scratch:
        try:
            for n in (1, 2):
                partition_map = PartitionMap.dealt(n, accounts)
                specs = [
                    PartitionSpec(
                        k,
                        partition_map,
                        adapter="scale",
                        config=config,
                        speed=60.0,
                        state_path=str(Path(scratch) / f"n{n}.partition-{k}.json"),
                        feed_factory="book:feed",
                    )
                    for k in range(n)
                ]
                # num_cpus 0: both cases' actors exist at once (they take turns, idle
                # between), on however many cores the machine has.
                head = RayHead(
                    specs,
                    ROOT / "policies",
                    actor_options={"num_cpus": 0},
                    loops=False,
                    health_interval_s=None,
                )
                head.start()
                head.run_cycles(2)  # warm: first poll, first evaluation, caches
                heads[n] = head
            rounds: dict[int, list[dict[str, float]]] = {1: [], 2: [], SERIAL: []}
            load_before = os.getloadavg()[0]
            for _ in range(args.rounds):
                for n in (1, 2, SERIAL):  # the cases take turns
                    started = time.perf_counter()
                    if n == SERIAL:  # the two partitions one after the other: no contention
                        records = [
                            r
                            for slot in heads[2].slots
                            for r in ray.get(slot.actor.run_cycles.remote(args.cycles))
                        ]
                    else:
                        records = heads[n].run_cycles(args.cycles)
                    wall = time.perf_counter() - started
                    positions = sum(r["positions"] for r in records)
                    cpu = sum(r["cpu_s"] for r in records)
                    busy = cpu + sum(r["save_cpu_s"] for r in records)
                    rounds[n].append(
                        {
                            "positions": positions,
                            "wall_s": wall,
                            "per_s": positions / wall,
                            "cpu_us_per_position": 1e6 * cpu / max(positions, 1),
                            "cores_used": busy / wall,
                        }
                    )
        finally:
            for head in heads.values():
                head.stop()
            ray.shutdown()
    best = {n: max(rounds[n], key=lambda r: r["per_s"]) for n in rounds}
    cpu = {n: min(r["cpu_us_per_position"] for r in rounds[n]) for n in rounds}
    return {
        "cores": cores,
        "usable_cores": usable,
        "load_1min": load_before,
        "accounts": args.accounts,
        "positions_per_account": args.positions,
        "positions": args.accounts * args.positions,
        "cycles_per_round": args.cycles,
        "rounds": args.rounds,
        "one_actor_per_s": best[1]["per_s"],
        "two_actors_per_s": best[2]["per_s"],
        "ratio_two_to_one": best[2]["per_s"] / best[1]["per_s"],
        "cpu_us_per_position": cpu,
        "cpu_ratio_two_to_one": cpu[2] / cpu[1],
        "cores_used": {n: best[n]["cores_used"] for n in best},
        "two_in_turn_per_s": best[SERIAL]["per_s"],
        "cpu_ratio_in_turn_to_one": cpu[SERIAL] / cpu[1],
        "all_rounds": rounds,
    }


def render(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"bench/scale: {result['positions']} positions ({result['accounts']} accounts x "
            f"{result['positions_per_account']}), {result['cycles_per_round']} cycles per "
            f"partition per round, best of {result['rounds']} rounds, cases taking turns",
            f"machine: {result['cores']} cores ({result['usable_cores']} usable), "
            f"load {result['load_1min']:.2f} at start",
            f"  1 actor : {result['one_actor_per_s']:>10,.0f} positions/s "
            f"({result['cores_used'][1]:.2f} cores busy: cycles and saves)",
            f"  2 actors: {result['two_actors_per_s']:>10,.0f} positions/s "
            f"({result['cores_used'][2]:.2f} cores busy: what the machine gave)",
            f"  ratio 2 actors / 1 actor: {result['ratio_two_to_one']:.2f} "
            f"(2.00 = perfect on two free cores)",
            f"  CPU per position in a cycle: {result['cpu_us_per_position'][1]:.1f} us (1 actor), "
            f"{result['cpu_us_per_position'][2]:.1f} us (2 actors): ratio "
            f"{result['cpu_ratio_two_to_one']:.2f}",
            f"  2 partitions one at a time: {result['two_in_turn_per_s']:>10,.0f} positions/s, "
            f"CPU per position {result['cpu_us_per_position'][SERIAL]:.1f} us: ratio to 1 actor "
            f"{result['cpu_ratio_in_turn_to_one']:.2f} (what partitioning itself costs)",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
