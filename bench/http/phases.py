"""One measured phase of the HTTP benchmark: load on the service, with its cycles watched
and the CPU time of the load generator, the service and the rest of the machine taken
around it."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loadgen import Tally, Target, closed_loop, fetch, open_loop, poll_every
from served import (
    Cycles,
    ServedProcess,
    count_cycles,
    machine_busy_s,
    metric_values,
    status_samples,
    utc_now,
)

STATUS_EVERY_S = 0.2
_OUTCOMES = ("approved", "downsized", "denied", "error")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run: closed loop with `clients` clients, or open loop at `rate` over
    `clients` connections, for `duration_s`."""

    mode: str  # "closed" | "open"
    clients: int
    duration_s: float
    rate: float | None = None

    @property
    def label(self) -> str:
        if self.mode == "open":
            return f"open {self.rate:,.0f}/s, {self.clients} conns"
        return f"closed, {self.clients} client{'s' if self.clients != 1 else ''}"


@dataclass(frozen=True, slots=True)
class CpuShare:
    """CPU seconds over a phase's wall time: 1.0 is one core busy all along."""

    generator: float
    server: float
    machine: float

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.generator - self.server)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    plan: Plan
    tally: Tally
    took_s: float
    cycles: Cycles
    cpu: CpuShare
    started: datetime
    ended: datetime
    server_checks: dict[str, float]  # bastion_order_checks_total increase, by outcome
    server_check_mean_s: float | None  # bastion_order_check_seconds: sum / count increase
    evaluation_mean_s: float | None = None  # bastion_evaluation_seconds, the same way
    # bastion_http_loop_lag_seconds over the phase: (mean, p99 bucket bound), seconds;
    # None from a service without the metric (an older checkout with --bastion)
    loop_lag_s: tuple[float, float] | None = None

    @property
    def rate(self) -> float:
        return self.tally.ok / self.took_s if self.took_s > 0 else 0.0

    @property
    def errors(self) -> int:
        """Answers other than 200, connections that broke or could not be opened, and
        (open loop) requests dropped unsent, a timeout behind their due time."""
        return self.tally.non_200 + self.tally.connection_failures + self.tally.dropped

    @property
    def server_cpu_per_check_ms(self) -> float | None:
        """The service's CPU time per check answered (cycles included): unlike checks/s,
        barely moved by other processes taking the cores."""
        if not self.tally.ok:
            return None
        return self.cpu.server * self.took_s / self.tally.ok * 1000

    def percentile_ms(self, fraction: float) -> float | None:
        latencies = sorted(self.tally.latencies_s)
        if not latencies:
            return None
        if fraction == 0.5:
            return statistics.median(latencies) * 1000
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1000

    def with_scheduler_warnings(self, count: int) -> PhaseResult:
        return replace(self, cycles=replace(self.cycles, scheduler_warnings=count))

    def to_dict(self, floor_rate: float, floor_cpu_rate: float = 0.0) -> dict[str, Any]:
        tally = self.tally
        return {
            "mode": self.plan.mode,
            "clients": self.plan.clients,
            "offered_rate_per_s": self.plan.rate,
            "duration_s": self.plan.duration_s,
            "took_s": round(self.took_s, 3),
            "started": self.started.isoformat(),
            "checks": tally.ok,
            "checks_per_s": round(self.rate, 1),
            "ratio_to_in_process": round(self.rate / floor_rate, 4) if floor_rate else None,
            "latency_ms": {
                "p50": _round(self.percentile_ms(0.5)),
                "p99": _round(self.percentile_ms(0.99)),
                "p999": _round(self.percentile_ms(0.999)),
                "max": _round(self.percentile_ms(1.0)),
                "from": "due time" if self.plan.mode == "open" else "send",
            },
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
            "errors": self.errors,
            "non_200": tally.non_200,
            "timeouts": tally.timeouts,
            "connection_failures": tally.connection_failures,
            "late_sends": tally.late_sends,
            "dropped_unsent": tally.dropped,
            "connections_opened": tally.connects,
            "outcomes": dict(sorted(tally.outcomes.items())),
            "server_checks": self.server_checks,
            "server_check_mean_ms": _round(
                None if self.server_check_mean_s is None else self.server_check_mean_s * 1000
            ),
            "cycles": self.cycles.to_dict(),
            "evaluation_mean_ms": _round(
                None if self.evaluation_mean_s is None else self.evaluation_mean_s * 1000
            ),
            "server_loop_lag_ms": (
                None
                if self.loop_lag_s is None
                else {
                    "mean": _round(self.loop_lag_s[0] * 1000),
                    "p99_at_most": _round(self.loop_lag_s[1] * 1000),
                }
            ),
            "server_cpu_per_check_ms": _round(self.server_cpu_per_check_ms),
            "server_cpu_per_check_over_in_process": (
                round(self.server_cpu_per_check_ms * floor_cpu_rate / 1000, 3)
                if self.server_cpu_per_check_ms is not None and floor_cpu_rate
                else None
            ),
            "cpu_share_of_one_core": {
                "load_generator": round(self.cpu.generator, 3),
                "server": round(self.cpu.server, 3),
                "others": round(self.cpu.others, 3),
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run_phase(
    plan: Plan, target: Target, served: ServedProcess, bodies: tuple[bytes, ...]
) -> PhaseResult:
    """Run one phase: metrics before and after, the status polled during, CPU around."""
    before = await _metrics(target)
    stop = asyncio.Event()
    monitor = asyncio.create_task(poll_every(target, "/api/v1/status", STATUS_EVERY_S, stop))
    started_utc = utc_now()
    cpu, server, machine = time.process_time(), served.cpu_s(), machine_busy_s()
    started = time.perf_counter()
    if plan.mode == "open":
        assert plan.rate is not None
        tally, took = await open_loop(target, plan.rate, plan.clients, plan.duration_s, bodies)
    else:
        tally, took = await closed_loop(target, plan.clients, plan.duration_s, bodies)
    ended = time.perf_counter()
    wall = ended - started
    share = CpuShare(
        (time.process_time() - cpu) / wall,
        (served.cpu_s() - server) / wall,
        (machine_busy_s() - machine) / wall,
    )
    ended_utc = utc_now()
    stop.set()
    samples = status_samples(await monitor)
    after = await _metrics(target)

    def increase(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    checks = {o: increase(f'bastion_order_checks_total{{outcome="{o}"}}') for o in _OUTCOMES}
    count = increase("bastion_order_check_seconds_count")
    mean = increase("bastion_order_check_seconds_sum") / count if count > 0 else None
    evaluations = increase("bastion_evaluation_seconds_count")
    evaluation = (
        increase("bastion_evaluation_seconds_sum") / evaluations if evaluations > 0 else None
    )
    cycles = count_cycles(
        int(increase("bastion_evaluations_total")), started, ended, samples, served.speed
    )
    return PhaseResult(
        plan,
        tally,
        took,
        cycles,
        share,
        started_utc,
        ended_utc,
        checks,
        mean,
        evaluation,
        loop_lag(before, after),
    )


_LAG = "bastion_http_loop_lag_seconds"


def loop_lag(before: dict[str, float], after: dict[str, float]) -> tuple[float, float] | None:
    """The service's event-loop lag over a phase from its histogram's increase: the mean,
    and the upper bound of the bucket holding the 99th percentile (+Inf: over the last)."""
    count = after.get(f"{_LAG}_count", 0.0) - before.get(f"{_LAG}_count", 0.0)
    if count <= 0:
        return None
    mean = (after.get(f"{_LAG}_sum", 0.0) - before.get(f"{_LAG}_sum", 0.0)) / count
    bounds = []
    for name, value in after.items():
        if name.startswith(f'{_LAG}_bucket{{le="'):
            bound = float(name.split('le="', 1)[1].split('"', 1)[0])
            bounds.append((bound, value - before.get(name, 0.0)))
    for bound, cumulative in sorted(bounds):
        if cumulative >= 0.99 * count:
            return mean, bound
    return mean, float("inf")


async def _metrics(target: Target) -> dict[str, float]:
    try:
        status, body = await fetch(target, "/metrics")
    except (OSError, TimeoutError, ValueError):
        return {}
    return metric_values(body.decode(errors="replace")) if status == 200 else {}


async def wait_ready(target: Target, served: ServedProcess, timeout_s: float) -> bool:
    """Poll GET /readyz until 200; False when the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served.exited() is not None:
            return False
        try:
            status, _ = await fetch(target, "/readyz")
            if status == 200:
                return True
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    return False
