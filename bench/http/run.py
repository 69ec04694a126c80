"""Benchmark: POST /api/v1/check on `bastion serve --adapter sim` over loopback HTTP.

A keep-alive load generator (loadgen.py: raw HTTP/1.1 on asyncio, in this process)
against the real service started as a subprocess (served.py), through its HTTP
interface only. It prints checks/s and p50 / p99 / max latency at 1, 16, 64 and 128
closed-loop clients, then an open-loop run (1,000 checks/s due at fixed times, spread
over 64 connections, latency from the due time), with errors, timeouts and the
service's scheduled evaluation cycles during each run (done against expected from the
polling interval; missed). Beside them, the floor: the same checks in process
(`Service.check`, floor.py), as a ratio. CPU: the load generator's, the service's and
the rest of the machine's, each as a share of one core (they share the machine).

Targets (issue #11): open loop 1,000/s over 64 connections, p99 < 10 ms and 0 errors;
128 closed-loop clients for 60 s, 0 errors, 0 timeouts, 0 missed cycles; closed-loop
throughput >= 1/10 of the in-process rate. Exit 0 whatever the verdicts (a benchmark);
1 when the run itself broke (the service did not start or died), 2 on bad arguments.

    .venv/bin/python bench/http/run.py                  # the issue's runs, ~2.5 minutes
    .venv/bin/python bench/http/run.py --quick          # seconds: 1 and 4 clients, 100/s
    .venv/bin/python bench/http/run.py --clients 8,32 --duration 20 --format json
    .venv/bin/python bench/http/run.py --token T --serve-arg=--auth --serve-arg=tokens.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from floor import FloorResult, in_process
from loadgen import Target
from orders import ORDERS, order_bodies
from phases import PhaseResult, Plan, run_phase, wait_ready
from report import document, render_text, verdicts
from served import ServedProcess, scan_log

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
# The runs; --quick: the same shape in seconds (the smoke test runs it).
DEFAULTS: dict[str, Any] = {
    "clients": "1,16,64,128",
    "duration": 60.0,
    "step_duration": 15.0,
    "rate": 1000.0,
    "connections": 64,
    "open_duration": 30.0,
    "floor_duration": 3.0,
    "warmup": 3.0,
    "pause": 1.0,
}
QUICK: dict[str, Any] = {
    "clients": "1,4",
    "duration": 1.0,
    "step_duration": 1.0,
    "rate": 100.0,
    "connections": 4,
    "open_duration": 1.0,
    "floor_duration": 0.5,
    "warmup": 0.3,
    "pause": 0.1,
}


class RunBroke(Exception):
    """The run could not be made (the service did not start, or died): exit 1."""


@dataclass(frozen=True, slots=True)
class Settings:
    clients: tuple[int, ...]
    duration: float
    step_duration: float
    rate: float
    connections: int
    open_duration: float
    floor_duration: float
    warmup: float
    pause: float
    timeout: float
    speed: float
    seed: int
    token: str | None
    serve_args: tuple[str, ...]
    bastion: str | None
    policies: Path | None
    log_dir: Path | None
    output: str

    def plans(self) -> list[Plan]:
        largest = max(self.clients)
        closed = [
            Plan("closed", n, self.duration if n == largest else self.step_duration)
            for n in self.clients
        ]
        return [*closed, Plan("open", self.connections, self.open_duration, self.rate)]


def parse_arguments(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Defaults are the issue's runs; --quick changes the defaults, options given "
        "still apply.",
    )
    add = parser.add_argument
    add("--clients", help=f"closed-loop client counts (default {DEFAULTS['clients']})")
    add("--duration", type=float, help="seconds of the largest closed-loop run (default 60)")
    add("--step-duration", type=float, help="seconds of each other closed-loop run (default 15)")
    add("--rate", type=float, help="open loop: checks per second offered (default 1000)")
    add("--connections", type=int, help="open loop: keep-alive connections (default 64)")
    add("--open-duration", type=float, help="open loop: seconds (default 30)")
    add("--floor-duration", type=float, help="in-process run: seconds (default 3)")
    add("--warmup", type=float, help="seconds of unmeasured load first (default 3)")
    add("--pause", type=float, help="seconds between runs (default 1)")
    add("--timeout", type=float, default=2.0, help="per-request timeout, s (default 2)")
    add("--speed", type=float, default=60.0, help="sim market speed, as serve's (default 60)")
    add("--seed", type=int, default=7, help="sim seed (default 7)")
    add("--token", help="send `Authorization: Bearer TOKEN` (a service run with --auth)")
    add(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for `bastion serve` (repeat; write --serve-arg=--auth)",
    )
    add(
        "--bastion",
        metavar="CMD",
        help="the `bastion` command to serve with (default: the one next to this Python); "
        "e.g. a wrapper running another checkout, to compare versions",
    )
    add("--policies", metavar="DIR", help="policy folder to serve (default: policies/)")
    add("--log-dir", metavar="DIR", help="keep the service's log and stderr in DIR")
    add("--quick", action="store_true", help="seconds instead of minutes (the smoke test)")
    add("--format", choices=("text", "json"), default="text", help="output (default text)")
    args = parser.parse_args(argv)
    chosen = {**DEFAULTS, **(QUICK if args.quick else {})}
    for name in DEFAULTS:
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    try:
        clients = tuple(int(n) for n in str(chosen["clients"]).split(",") if n.strip())
    except ValueError:
        parser.error(f"--clients: a comma-separated list of counts, got {chosen['clients']!r}")
    numbers = [float(chosen[k]) for k in DEFAULTS if k != "clients"] + [args.timeout]
    if not clients or min(clients) < 1 or min(numbers) < 0 or args.speed <= 0:
        parser.error("client counts must be >= 1, durations and rates >= 0, --speed > 0")
    if float(chosen["rate"]) <= 0 or int(chosen["connections"]) < 1:
        parser.error("--rate must be > 0 and --connections >= 1")
    return Settings(
        clients=clients,
        duration=float(chosen["duration"]),
        step_duration=float(chosen["step_duration"]),
        rate=float(chosen["rate"]),
        connections=int(chosen["connections"]),
        open_duration=float(chosen["open_duration"]),
        floor_duration=float(chosen["floor_duration"]),
        warmup=float(chosen["warmup"]),
        pause=float(chosen["pause"]),
        timeout=args.timeout,
        speed=args.speed,
        seed=args.seed,
        token=args.token,
        serve_args=tuple(args.serve_arg),
        bastion=args.bastion,
        policies=None if args.policies is None else Path(args.policies).resolve(),
        log_dir=None if args.log_dir is None else Path(args.log_dir),
        output=args.format,
    )


def progress(message: str) -> None:
    print(f"bench/http: {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


async def measure(
    settings: Settings, served: ServedProcess, bodies: tuple[bytes, ...]
) -> tuple[list[PhaseResult], str]:
    """Start the service, wait for /readyz, warm up, run every plan; the phases and the
    service's Server header."""
    target = Target(served.host, served.port, settings.token, settings.timeout)
    served.start()
    progress(f"service pid {served.pid} on {served.host}:{served.port}, waiting for /readyz")
    if not await wait_ready(target, served, READY_TIMEOUT_S):
        raise RunBroke(
            f"the service never answered /readyz 200 (exit code {served.exited()}); "
            f"its stderr:\n{served.stderr_tail()}"
        )
    if settings.warmup > 0:
        progress(f"warm-up, 16 clients, {settings.warmup:g} s")
        warm = await run_phase(Plan("closed", 16, settings.warmup), target, served, bodies)
        if warm.tally.ok == 0:
            raise RunBroke(
                f"no check answered 200 in the warm-up (statuses {dict(warm.tally.statuses)}, "
                f"{warm.tally.connection_failures} connection failures, "
                f"{warm.tally.timeouts} timeouts): is --token needed?"
            )
    results: list[PhaseResult] = []
    for plan in settings.plans():
        await asyncio.sleep(settings.pause)
        progress(f"{plan.label}, {plan.duration_s:g} s")
        results.append(await run_phase(plan, target, served, bodies))
        if served.exited() is not None:
            raise RunBroke(
                f"the service exited (code {served.exited()}) during {plan.label}; "
                f"its stderr:\n{served.stderr_tail()}"
            )
    return results, results[0].tally.server_header if results else "n/a"


def attribute_warnings(phases: list[PhaseResult], stamps: tuple[datetime, ...]) -> None:
    for index, phase in enumerate(phases):
        count = sum(phase.started <= stamp <= phase.ended for stamp in stamps)
        phases[index] = phase.with_scheduler_warnings(count)


def main(argv: list[str] | None = None) -> int:
    settings = parse_arguments(argv)
    bodies = order_bodies()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        workdir = Path(folder)
        progress(f"in process (the floor), {settings.floor_duration:g} s")
        try:
            floor: FloorResult = in_process(
                settings.policies or ROOT / "policies",
                bodies,
                settings.floor_duration,
                speed=settings.speed,
                seed=settings.seed,
                log=workdir / "in-process.jsonl",
            )
        except Exception as error:  # the service cannot be built: nothing to compare with
            print(
                f"bench/http: the in-process run broke: {type(error).__name__}: {error}",
                file=sys.stderr,
            )
            return 1
        served = ServedProcess(
            ROOT,
            workdir,
            speed=settings.speed,
            seed=settings.seed,
            extra_args=settings.serve_args,
            bastion=settings.bastion,
            policies=settings.policies,
        )
        try:
            phases, server_header = asyncio.run(measure(settings, served, bodies))
        except RunBroke as error:
            served.stop()
            print(f"bench/http: the run broke: {error}", file=sys.stderr)
            return 1
        finally:
            served.stop()
        findings = scan_log(served.log_path)
        if settings.log_dir is not None:
            settings.log_dir.mkdir(parents=True, exist_ok=True)
            for kept in workdir.iterdir():  # the log, stderr, the state and the audit folder
                if kept.is_dir():
                    shutil.copytree(kept, settings.log_dir / kept.name, dirs_exist_ok=True)
                else:
                    shutil.copy(kept, settings.log_dir / kept.name)
    attribute_warnings(phases, findings.scheduler_warnings)
    meta: dict[str, Any] = {
        "speed": settings.speed,
        "server_header": server_header,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_average(),
        "orders": len(ORDERS),
        "timeout_s": settings.timeout,
        "log_lines": findings.lines,
        "log_errors": findings.errors,
        "log_alerts": findings.alerts,
        "first_log_error": findings.first_error,
        "service_exit_code": served.returncode,
        "command": " ".join(served.command),
    }
    found = verdicts(phases, floor)
    if settings.output == "json":
        print(json.dumps(document(meta, floor, phases, found), indent=2))
    else:
        print(render_text(meta, floor, phases, found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
