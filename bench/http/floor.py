"""The floor: the same checks in process, without HTTP.

The Service is built as `bastion serve` builds it (`build_service` from the CLI's own
arguments: sim feed, the shipped policies, the same speed and seed), one cycle is run
(the service is then ready), and `Service.check(body)` — what POST /api/v1/check calls
once the body is read — answers the benchmark's order mix in a tight loop on this thread.
Its logs are configured as the service's (JSON, info) and written to a file, as the
served process writes them: the logging is part of a check's cost on both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WARMUP = 200
ROUNDS = 3  # the floor is the best round: other processes preempt this one


@dataclass(frozen=True, slots=True)
class FloorResult:
    checks: int
    took_s: float
    cpu_s: float  # this thread's CPU time over all rounds
    best_rate: float  # checks answered 200 per wall second, best round
    statuses: dict[int, int]
    outcomes: dict[str, int]

    @property
    def rate(self) -> float:
        """The floor: the best round's checks per second (other processes preempt us)."""
        return self.best_rate

    @property
    def cpu_rate(self) -> float:
        """Checks per CPU second of this thread: what the core could do undisturbed."""
        return self.statuses.get(200, 0) / self.cpu_s if self.cpu_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "seconds": round(self.took_s, 3),
            "checks_per_s": round(self.rate, 1),
            "checks_per_cpu_s": round(self.cpu_rate, 1),
            "rounds": ROUNDS,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def in_process(
    policies: Path,
    bodies: Sequence[bytes],
    duration_s: float,
    *,
    speed: float,
    seed: int,
    log: Path,
) -> FloorResult:
    """Checks per second of `Service.check` on this thread: ROUNDS rounds filling
    `duration_s`, the best round's rate, and the rate per CPU second over all of them."""
    from bastion.cli.serve import add_arguments, build_service  # noqa: PLC0415
    from bastion.service.logs import configure_logging  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            *("--adapter", "sim", "--policies", str(policies)),
            *("--speed", f"{speed:g}", "--seed", str(seed), "--log-format", "json"),
            *("--audit", str(log.parent / "floor-audit")),  # audited, as the service is
        ]
    )
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    with log.open("w") as sink, contextlib.redirect_stdout(sink):
        configure_logging(json=True)  # to the current sys.stdout: the file
        service = build_service(args)
        service.cycle()
        check = _check_of(service)
        for index in range(WARMUP):
            check(bodies[index % len(bodies)])
        count, took, cpu, best = 0, 0.0, 0.0, 0.0
        for _ in range(ROUNDS):
            gc.collect()
            ok, started, cpu_started = 0, time.perf_counter(), time.thread_time()
            deadline = started + duration_s / ROUNDS
            while True:
                for body in bodies:
                    status, answer = check(body)
                    statuses[status] += 1
                    ok += status == 200
                    outcomes[str(answer.get("outcome", "other"))] += 1
                count += len(bodies)
                if time.perf_counter() >= deadline:
                    break
            wall = time.perf_counter() - started
            took, cpu = took + wall, cpu + time.thread_time() - cpu_started
            best = max(best, ok / wall)
    return FloorResult(count, took, cpu, best, dict(statuses), dict(outcomes))


def _check_of(service: Any) -> Callable[[bytes], tuple[int, dict[str, Any]]]:
    """`service.check` taking the body alone; when the service has grown a caller
    argument (authentication), the local caller is passed, as the service does without
    --auth."""
    parameters = [
        p
        for p in inspect.signature(service.check).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) <= 1:
        return service.check  # type: ignore[no-any-return]
    from bastion.service.auth import LOCAL  # noqa: PLC0415

    return lambda body: service.check(body, LOCAL)
