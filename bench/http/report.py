"""The HTTP benchmark's verdicts on the issue's targets, its table and its JSON document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from floor import ROUNDS, FloorResult
from phases import PhaseResult

P99_TARGET_MS = 10.0
RATIO_TARGET = 0.1  # closed-loop checks/s over the in-process rate


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    target: str
    measured: str

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "target": self.target, "measured": self.measured}


def verdicts(phases: Sequence[PhaseResult], floor: FloorResult) -> list[Verdict]:
    """The issue's three targets, on the phases that ran (none: FAIL, nothing measured)."""
    found: list[Verdict] = []
    opened = [p for p in phases if p.plan.mode == "open"]
    if opened:
        p = opened[-1]
        p99 = p.percentile_ms(0.99)
        ok = p99 is not None and p99 < P99_TARGET_MS and p.errors == 0 and p.tally.timeouts == 0
        found.append(
            Verdict(
                ok,
                f"open loop {p.plan.rate:,.0f} checks/s over {p.plan.clients} keep-alive "
                f"connections: p99 < {P99_TARGET_MS:g} ms and 0 errors",
                f"p99 {_ms(p99)} ms (from the due time), {p.errors} errors, "
                f"{p.tally.timeouts} timeouts",
            )
        )
    else:
        found.append(Verdict(False, "open loop: p99 < 10 ms and 0 errors", "not run"))
    closed = [p for p in phases if p.plan.mode == "closed"]
    if closed:
        soak = max(closed, key=lambda p: (p.plan.clients, p.plan.duration_s))
        cycles = soak.cycles
        ok = soak.errors == 0 and soak.tally.timeouts == 0
        ok = ok and cycles.measured and cycles.missed == 0
        found.append(
            Verdict(
                ok,
                f"closed loop {soak.plan.clients} clients for {soak.plan.duration_s:g} s: "
                "0 errors, 0 timeouts, 0 missed cycles",
                f"{soak.errors} errors, {soak.tally.timeouts} timeouts, "
                + (
                    f"{cycles.missed} missed cycles ({cycles.done} done, "
                    f"{cycles.expected:.1f} expected)"
                    if cycles.measured
                    else "cycles not measured (no /api/v1/status answer during the run)"
                ),
            )
        )
        best = max(closed, key=lambda p: p.rate)
        ratio = best.rate / floor.rate if floor.rate else 0.0
        per_cpu = ""
        if best.server_cpu_per_check_ms and floor.cpu_rate:
            in_process_ms = 1000 / floor.cpu_rate
            per_cpu = (
                f"; per CPU second, which other processes barely move: service "
                f"{best.server_cpu_per_check_ms:.2f} ms a check against {in_process_ms:.2f} ms "
                f"in process = {in_process_ms / best.server_cpu_per_check_ms:.2f}"
            )
        found.append(
            Verdict(
                ratio >= RATIO_TARGET,
                f"closed-loop throughput >= 1/{1 / RATIO_TARGET:g} of the in-process check rate",
                f"{best.rate:,.0f} checks/s at {best.plan.clients} clients = {ratio:.3f} of "
                f"{floor.rate:,.0f}/s in process (load generator "
                f"{best.cpu.generator:.0%} of a core, service {best.cpu.server:.0%}){per_cpu}",
            )
        )
    else:
        found.append(Verdict(False, "closed loop: 0 errors, 0 timeouts, 0 missed", "not run"))
        found.append(Verdict(False, "closed-loop throughput >= 1/10 in process", "not run"))
    return found


def cpu_over_floor(phase: PhaseResult, floor: FloorResult) -> float | None:
    """The service's CPU time per check over the in-process (floor) CPU time per check:
    what the HTTP front, the event loop and the cycles add, as a ratio (other processes
    barely move it, unlike checks/s)."""
    if phase.server_cpu_per_check_ms is None or not floor.cpu_rate:
        return None
    return phase.server_cpu_per_check_ms / (1000 / floor.cpu_rate)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _per_check_ms(rate: float) -> str:
    return f"{1000 / rate:.2f}" if rate > 0 else "n/a"


def _mix(counts: Mapping[str, int | float]) -> str:
    total = sum(counts.values())
    if not total:
        return "none"
    return ", ".join(f"{name} {count / total:.0%}" for name, count in sorted(counts.items()))


def render_text(
    meta: Mapping[str, Any],
    floor: FloorResult,
    phases: Sequence[PhaseResult],
    found: Sequence[Verdict],
) -> str:
    lines = [
        f"bench/http: POST /api/v1/check on `bastion serve --adapter sim --speed "
        f"{meta['speed']:g}` over loopback (Server header: {meta['server_header']}), "
        f"{meta['python']}, "
        f"{meta['cpus']} CPUs, load average {meta['load_before']} before, "
        f"{meta['load_after']} after",
        f"  service: {meta['command']}",
        f"  orders: {meta['orders']} valid requests on the sim book, shuffled (seed), cycled; "
        f"per-request timeout {meta['timeout_s']:g} s; service logs JSON to a file "
        f"({meta['log_lines']:,} lines, {meta['log_errors']} errors, {meta['log_alerts']} alerts)",
        f"  in process (the floor): Service.check, {floor.rate:,.0f} checks/s (best of "
        f"{ROUNDS} rounds, {floor.checks:,} checks in {floor.took_s:.1f} s; "
        f"{floor.cpu_rate:,.0f} per CPU second = {_per_check_ms(floor.cpu_rate)} ms CPU a "
        f"check; {_mix(floor.outcomes)})",
    ]
    if meta["log_errors"]:
        lines.append(f"  first error in the service log: {meta['first_log_error']}")
    lines.append("")
    header = (
        f"  {'run':<28} {'checks/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'errors':>6} {'t/o':>4} {'cycles':>10} {'missed':>6} {'/floor':>7} "
        f"{'CPU gen':>7} {'srv':>5} {'other':>5} {'srv ms/chk':>10} {'x floor':>7}"
    )
    lines += [header, "  " + "-" * (len(header) - 2)]
    for p in phases:
        label = f"{p.plan.label}, {p.plan.duration_s:g} s"
        cycles = f"{p.cycles.done}/{p.cycles.expected:.0f}" if p.cycles.measured else "n/a"
        missed = str(p.cycles.missed) if p.cycles.measured else "n/a"
        ratio = p.rate / floor.rate if floor.rate else 0.0
        cpu_ratio = cpu_over_floor(p, floor)
        lines.append(
            f"  {label:<28} {p.rate:>9,.0f} {_ms(p.percentile_ms(0.5)):>7} "
            f"{_ms(p.percentile_ms(0.99)):>7} {_ms(p.percentile_ms(1.0)):>7} "
            f"{p.errors:>6} {p.tally.timeouts:>4} {cycles:>10} {missed:>6} "
            f"{ratio:>7.3f} {p.cpu.generator:>7.0%} {p.cpu.server:>5.0%} {p.cpu.others:>5.0%} "
            f"{_ms(p.server_cpu_per_check_ms):>10} "
            f"{'n/a' if cpu_ratio is None else f'{cpu_ratio:.2f}':>7}"
        )
    lines += [
        "",
        "  checks/s: 200 answers over the run's wall time; latency: send to answer (closed "
        "loop), due time to answer (open loop);",
        "  errors: non-200 answers + broken or refused connections (+ open loop: dropped "
        "unsent); t/o: no answer within the timeout;",
        "  cycles: evaluations done/expected from the polling interval in force; CPU: share "
        "of one core (load generator, service, others);",
        "  srv ms/chk: the service's CPU time (/proc/<pid>/stat, user + system, cycles "
        "included) per check answered; x floor: that over the in-process CPU time a check.",
    ]
    for p in phases:
        extra = ""
        if p.server_check_mean_s is not None:
            extra = f"; in the service {p.server_check_mean_s * 1000:.3f} ms a check (mean)"
        if p.server_cpu_per_check_ms is not None:
            extra += f"; service CPU {p.server_cpu_per_check_ms:.2f} ms a check"
        if p.loop_lag_s is not None:
            mean, p99 = p.loop_lag_s
            extra += f"; its event loop {mean * 1000:.2f} ms late (mean), p99 <= {p99 * 1000:g} ms"
        if p.plan.mode == "open":
            extra += (
                f"; {p.tally.late_sends:,} sent late (> 1 ms after due), {p.tally.dropped:,} "
                "dropped unsent (a timeout late)"
            )
        if p.errors:
            refused = {k: v for k, v in sorted(p.tally.statuses.items()) if k != 200}
            extra += (
                f"; errors: {p.tally.connection_failures:,} connections broken or refused, "
                f"non-200 {refused or 'none'}"
            )
        if p.tally.connects > p.plan.clients:
            extra += (
                f"; {p.tally.connects:,} connections opened for {p.plan.clients} "
                "(the service closed them: no keep-alive)"
            )
        intervals = "/".join(f"{s:g}" for s in p.cycles.intervals_wall_s) or "n/a"
        evaluation = ""
        if p.evaluation_mean_s is not None:
            evaluation = f" (an evaluation {p.evaluation_mean_s * 1000:.0f} ms, mean)"
        lines.append(
            f"  {p.plan.label}: {_mix(p.tally.outcomes)}; interval {intervals} s wall"
            f"{evaluation}{extra}"
        )
    lines.append("")
    lines += [f"  {'PASS' if v.passed else 'FAIL'}  {v.target}: {v.measured}" for v in found]
    return "\n".join(lines)


def document(
    meta: Mapping[str, Any],
    floor: FloorResult,
    phases: Sequence[PhaseResult],
    found: Sequence[Verdict],
) -> dict[str, Any]:
    return {
        "benchmark": "bench/http",
        "meta": dict(meta),
        "in_process": floor.to_dict(),
        "phases": [p.to_dict(floor.rate, floor.cpu_rate) for p in phases],
        "targets": [v.to_dict() for v in found],
    }
