"""The console of `bastion serve`: what an operator reads while it runs, and when it stops.

Three renderings of the same lines (`service.console_lines`):

- `live` (stdout is a terminal, --log-format auto): a rich live view — a status panel
  (feed, market time, regime, policy version, next poll, every account's trading state,
  the breakers not armed) under the lines, which scroll above it;
- `text` (--log-format console): the same lines, plain, one per change;
- `json` (--log-format json, or stdout not a terminal): JSON lines only, through the
  structured log — the decisions are already `decision_made` events; the console adds
  `regime_changed`, `replay_summary` and `run_summary`. Never a plain line on stdout.

Reloads are lines too (versions, the files changed, or why refused); at stop (Ctrl-C,
SIGTERM, the end of a replay) the summary: trips, time per trading state, escalations,
alerts raised, and the exact request that resets each breaker still tripped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry

from bastion.engine.policy.model import PolicySet
from bastion.service.console_lines import ConsoleLine, ConsoleLines, trading_states_text
from bastion.service.console_summary import ResetHint, RunSummary
from bastion.service.logs import write_line
from bastion.service.reloader import PolicyReloaded, ReloadRejected

if TYPE_CHECKING:
    from bastion.service.runner import Cycle, Service

log = structlog.get_logger("bastion.console")

MODES = ("live", "text", "json")


class ConsoleSink(Protocol):
    def line(self, line: ConsoleLine) -> None: ...

    def status(self, service: Service, cycle: Cycle) -> None: ...

    def block(self, event: str, lines: Sequence[str], fields: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class TextSink:
    """Plain lines on stdout: `HH:MM:SS LINE` (market time)."""

    def line(self, line: ConsoleLine) -> None:
        write_line(f"{line.at:%H:%M:%S} {line.text}")

    def status(self, service: Service, cycle: Cycle) -> None:
        if not cycle.fresh_data:  # in words, not only in the JSON log (and /readyz: 503)
            reason = " ".join(str(service.last_adapter_error or "no data yet").split())
            kind = "fatal: fix and restart" if service.last_poll_fatal else "transient: retrying"
            write_line(f"{cycle.at:%H:%M:%S} POLL    failed ({kind}): {reason}")

    def block(self, event: str, lines: Sequence[str], fields: Mapping[str, Any]) -> None:
        for text in lines:
            write_line(text)

    def close(self) -> None:
        return None


class JsonSink:
    """JSON lines only, through the structured log (the one JSON stream of stdout)."""

    def line(self, line: ConsoleLine) -> None:
        if line.event == "regime_changed":  # the decisions are decision_made events already
            log.info(line.event, **line.fields())

    def status(self, service: Service, cycle: Cycle) -> None:
        return None  # poll_failed is logged by the service

    def block(self, event: str, lines: Sequence[str], fields: Mapping[str, Any]) -> None:
        log.info(event, **fields)

    def close(self) -> None:
        return None


class Console:
    """Fed by `bastion serve`: `cycle` after each cycle, `reloaded` by the reloader's
    callback, `replay_ended` with the replay summary, `stop` at the end."""

    def __init__(self, sink: ConsoleSink, reset: ResetHint | None = None) -> None:
        self.sink = sink
        self.reset = reset or ResetHint()
        self.lines = ConsoleLines()
        self.summary = RunSummary()
        self.stopped = False
        self.left_out: set[str] = set()  # the records left out of the last snapshot

    def cycle(self, service: Service, cycle: Cycle) -> None:
        snapshot = service.last_snapshot
        regime = snapshot.regime if snapshot is not None and cycle.fresh_data else None
        for line in self.lines.of_cycle(cycle.at, cycle.decisions, service.state, regime):
            self.sink.line(line)
        left_out = {str(item) for item in service.unevaluable}
        for item in sorted(left_out - self.left_out):  # once, when it is first left out
            self.sink.line(ConsoleLine(cycle.at, "record_unevaluable", "", "", f"NO DATA {item}"))
        self.left_out = left_out
        self.summary.cycle(cycle.at, cycle.decisions, service.state)
        self.sink.status(service, cycle)

    def reloaded(self, event: PolicyReloaded | ReloadRejected, files: Mapping[str, str]) -> None:
        """A reload as a line: the versions and the files changed, or why it was refused."""
        self.sink.line(reload_line(event, files))

    def replay_ended(self, text: str) -> None:
        """The `bastion replay` summary at the end of a replay's data."""
        lines = text.rstrip("\n").splitlines()
        self.sink.block("replay_summary", lines, {"lines": lines})

    def stop(self, service: Service) -> None:
        """The run summary (once): trips, time per state, escalations, alerts, resets."""
        if self.stopped:
            return
        self.stopped = True
        breakers = service.state.breakers
        alerts = alerts_raised(service.metrics.registry)
        fields = self.summary.fields(breakers, alerts, self.reset)
        auto = auto_breakers(service.reloader.current.policy_set)
        lines = self.summary.lines(breakers, alerts, self.reset, auto)
        self.sink.block("run_summary", lines, fields)
        self.sink.close()


def reload_line(event: PolicyReloaded | ReloadRejected, files: Mapping[str, str]) -> ConsoleLine:
    if isinstance(event, PolicyReloaded):
        changed = ", ".join(
            f"{name} ({files[name]})" if name in files else name for name in event.changed
        )
        who = f" by {event.principal}" if event.principal else ""
        text = (
            f"RELOAD  policies  {event.previous_version[:19]} -> {event.version[:19]} "
            f"({event.trigger}{who}): changed {changed or 'nothing'}"
        )
        if event.warnings:
            text += f"; {len(event.warnings)} lint warning(s): {event.warnings[0].code}"
        return ConsoleLine(
            event.at,
            "policy_reloaded",
            "system:policies",
            event.version[:19],
            text,
            value=event.version[:19],
            action="reload",
            severity="warning" if event.warnings or event.accepted_removals else "info",
        )
    first = event.errors[0] if event.errors else "unknown error"
    more = f" (+{len(event.errors) - 1} more)" if len(event.errors) > 1 else ""
    text = (
        f"REFUSED policies  reload ({event.trigger}, {event.reason}): {first}{more}; "
        f"still serving {event.kept_version[:19]}"
    )
    return ConsoleLine(
        event.at,
        "reload_rejected",
        "system:policies",
        event.kept_version[:19],
        text,
        value=event.kept_version[:19],
        action="kept",
        severity="critical" if event.refused_by_guard else "warning",
    )


def auto_breakers(policy_set: PolicySet) -> frozenset[str]:
    """ "policy:breaker" of every `reset: auto` breaker of the set."""
    return frozenset(
        f"{policy.name}:{breaker.id}"
        for policy in policy_set.of_kind("BreakerPolicy")
        if policy.spec is not None
        for breaker in policy.spec.breakers
        if breaker.reset == "auto"
    )


def alerts_raised(registry: CollectorRegistry) -> dict[str, float]:
    """Alerts raised so far, by severity (bastion_alerts_total)."""
    found: dict[str, float] = {}
    for metric in registry.collect():
        if metric.name != "bastion_alerts":
            continue
        for sample in metric.samples:
            if sample.name == "bastion_alerts_total":
                severity = sample.labels.get("severity", "?")
                found[severity] = found.get(severity, 0.0) + sample.value
    return found


def status_text(service: Service, cycle: Cycle) -> str:
    """One line: market time, poll, next poll, regime, trading states (the live header)."""
    snapshot = service.last_snapshot
    regime = f"{snapshot.regime.name}/{snapshot.regime.severity}" if snapshot else "?"
    poll = "ok" if cycle.fresh_data else "FAILED"
    states = trading_states_text(service.state.trading_states.items()) or "no accounts"
    return (
        f"{cycle.at:%Y-%m-%d %H:%M:%S} market  poll {poll}  next in {cycle.interval_s} s  "
        f"regime {regime}  {states}"
    )


def mode_for(log_format: str, stdout_is_terminal: bool) -> str:
    """live in a terminal (auto), json without one (auto) or when asked, text when asked."""
    if log_format == "json":
        return "json"
    if log_format == "console":
        return "text"
    return "live" if stdout_is_terminal else "json"


def make_console(mode: str, reset: ResetHint, title: str = "bastion serve") -> Console:
    if mode == "live":
        from bastion.service.console_live import LiveSink  # noqa: PLC0415 - rich only here

        return Console(LiveSink(title), reset)
    return Console(TextSink() if mode == "text" else JsonSink(), reset)


def once_fields(service: Service, cycle: Cycle) -> dict[str, Any]:
    """`bastion serve --once` without a terminal: the cycle as one `cycle_evaluated`
    JSON line (its decisions are `decision_made` lines already)."""
    return {
        "at": cycle.at.isoformat(),
        "decisions": len(cycle.decisions),
        "trading_states": dict(sorted(service.state.trading_states.items())),
        "next_evaluation_s": str(cycle.interval_s),
        "policy_version": cycle.policy_version[:19],
        "breakers_not_armed": service.breakers_not_armed(),
        "unevaluable": [str(item) for item in service.unevaluable],
    }
