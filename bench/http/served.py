"""`bastion serve --adapter sim` as a subprocess, and what is read from it: readiness,
CPU time, its metrics, its scheduled cycles, the warnings in its log.

The service is started on a loopback port picked here (bound once to port 0, released,
passed with --port), with JSON logs to a file in a temporary folder (block-buffered, as
a service logging to a file is) and its stderr to another. Ready means GET /readyz
answered 200. Stopped with SIGTERM (its graceful shutdown), killed after 15 s.

Cycles on time: the service's scheduler runs one evaluation every polling interval (in
market seconds, divided by --speed; the engine changes it with the escalation level).
`bastion_evaluations_total` is read before and after a phase, and GET /api/v1/status
(`last_evaluation.polling_interval_s`) every 0.2 s during it; the cycles expected are
the wall time over the interval in force, summed. Each change of interval reschedules
the job (its next run is one new interval after the change), which may lose one partial
interval: the tolerance is 1 + the number of changes. Missed cycles are the larger of the
shortfall beyond that tolerance and the scheduler's own warnings in the log (APScheduler
logs a run that came more than its grace time late, and a run skipped because the last
one was still running).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STOP_TIMEOUT_S = 15.0
MIN_WALL_INTERVAL_S = 0.05  # the service's floor on a wall interval (service/runner.py)
_SCHEDULER_WARNINGS = (b"was missed by", b"maximum number of running instances")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def bastion_command() -> str:
    """The `bastion` console script next to this interpreter (the venv's), else on PATH."""
    sibling = Path(sys.executable).with_name("bastion")
    if sibling.exists():
        return str(sibling)
    found = shutil.which("bastion")
    if found is None:
        raise RuntimeError(
            "no `bastion` command: run with the project's interpreter (.venv/bin/python) "
            "after `make install`"
        )
    return found


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ServedProcess:
    """One `bastion serve` subprocess; `log_path` holds its JSON log once stopped."""

    def __init__(
        self,
        root: Path,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        speed: float = 60.0,
        seed: int = 7,
        extra_args: Sequence[str] = (),
        bastion: str | None = None,
        policies: Path | None = None,
    ) -> None:
        self.root, self.host, self.speed = root, host, speed
        self.port = free_port(host)
        self.log_path = workdir / "serve.jsonl"
        self.stderr_path = workdir / "serve.stderr"
        self.command = [
            bastion or bastion_command(),
            "serve",
            "--adapter",
            "sim",
            "--policies",
            str(policies or root / "policies"),
            "--host",
            host,
            "--port",
            str(self.port),
            "--speed",
            f"{speed:g}",
            "--seed",
            str(seed),
            "--log-format",
            "json",
            "--audit",
            str(workdir / "audit"),  # every check is audited (fsynced), as in production
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log, self.stderr_path.open("wb") as errors:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=errors, stdin=subprocess.DEVNULL, cwd=self.root
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode
        return self.returncode

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_s(self) -> float:
        """User + system CPU seconds of the service process (every thread), from /proc."""
        return process_cpu_s(self.pid)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, every thread (Linux /proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat; idle and iowait excluded)."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return math.nan
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _CLOCK_TICKS  # guest time is already in user


# -- the service's metrics and status ---------------------------------------------------------


def metric_values(text: str) -> dict[str, float]:
    """Every sample line of a Prometheus text exposition: `name{labels}` -> value."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


@dataclass(frozen=True, slots=True)
class StatusSample:
    at_s: float  # perf_counter time of the answer
    interval_s: float  # the polling interval in force, market seconds
    evaluated_at: str  # last_evaluation.at (market time)


def status_samples(raw: Sequence[tuple[float, bytes]]) -> list[StatusSample]:
    samples = []
    for at_s, body in raw:
        try:
            last = json.loads(body)["last_evaluation"]
            samples.append(StatusSample(at_s, float(last["polling_interval_s"]), last["at"]))
        except (ValueError, KeyError, TypeError):
            continue
    return samples


@dataclass(frozen=True, slots=True)
class Cycles:
    """The scheduled evaluations of one phase: done, expected from the interval, missed."""

    done: int
    expected: float
    tolerance: int
    shortfall: int  # expected - tolerance - done, at least 0
    intervals_wall_s: tuple[float, ...]  # each interval in force, in order, wall seconds
    scheduler_warnings: int = 0  # filled from the log once the service has stopped

    @property
    def measured(self) -> bool:
        """False when no status sample came back during the phase: nothing is known."""
        return not math.isnan(self.expected)

    @property
    def missed(self) -> int:
        return max(self.shortfall, self.scheduler_warnings)

    def to_dict(self) -> dict[str, object]:
        return {
            "done": self.done,
            "expected": round(self.expected, 1) if self.measured else None,
            "tolerance": self.tolerance,
            "shortfall": self.shortfall,
            "scheduler_warnings": self.scheduler_warnings,
            "missed": self.missed,
            "intervals_wall_s": list(self.intervals_wall_s),
        }


def count_cycles(
    done: int, started_s: float, ended_s: float, samples: Sequence[StatusSample], speed: float
) -> Cycles:
    """Cycles expected over [started_s, ended_s] from the sampled interval (see the module
    docstring), against `done` (the evaluations counter's increase)."""
    if not samples:
        return Cycles(done, math.nan, 0, 0, ())
    expected = 0.0
    intervals: list[float] = []
    for index, sample in enumerate(samples):
        wall = max(MIN_WALL_INTERVAL_S, sample.interval_s / speed)
        if not intervals or intervals[-1] != wall:
            intervals.append(wall)
        begin = started_s if index == 0 else sample.at_s
        end = samples[index + 1].at_s if index + 1 < len(samples) else ended_s
        expected += max(0.0, min(end, ended_s) - max(begin, started_s)) / wall
    tolerance = len(intervals)  # 1 + the changes of interval
    shortfall = max(0, math.floor(expected) - tolerance - done)
    return Cycles(done, expected, tolerance, shortfall, tuple(intervals))


# -- the log, read once the service has stopped ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFindings:
    lines: int
    errors: int  # level error or critical, alerts aside
    alerts: int  # alert_raised events (breakers tripped by the sim's sell-off)
    scheduler_warnings: tuple[datetime, ...]  # the times of missed / skipped runs
    first_error: str


def scan_log(path: Path) -> LogFindings:
    """Count the log's lines, error events and alerts; time-stamp the scheduler's warnings."""
    lines = errors = alerts = 0
    warnings: list[datetime] = []
    first_error = ""
    with path.open("rb") as log:
        for line in log:
            lines += 1
            if b'"level": "info"' in line:
                continue  # almost every line: one order_checked and one http_request per check
            is_error = b'"level": "error"' in line or b'"level": "critical"' in line
            is_warning = any(marker in line for marker in _SCHEDULER_WARNINGS)
            if not (is_error or is_warning):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if is_error and event.get("event") == "alert_raised":
                alerts += 1  # the sim's breakers tripping: the service doing its job
            elif is_error:
                errors += 1
                first_error = first_error or line.decode(errors="replace").strip()[:300]
            if is_warning:
                stamp = event.get("timestamp", "")
                with contextlib.suppress(ValueError):
                    warnings.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    return LogFindings(lines, errors, alerts, tuple(warnings), first_error)


def utc_now() -> datetime:
    return datetime.now(UTC)
