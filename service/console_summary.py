"""The summary `bastion serve` prints when it stops (Ctrl-C, SIGTERM, the end of a replay).

`RunSummary.cycle(...)` is fed every cycle; `RunSummary.lines(...)` says what the run did:
the breaker trips (by breaker and subject), the time each account spent ACTIVE /
REDUCING / HALTED (market time), the escalations, the alerts raised, and — for every
breaker still tripped — the exact request that resets it. `fields()` is the same as
one JSON object (the `run_summary` event).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.engine.decision import Decision
from bastion.engine.state import ARMED, TRADING_STATE_RANK, BreakerState, State

TRADING_STATES = tuple(sorted(TRADING_STATE_RANK, key=TRADING_STATE_RANK.__getitem__))


@dataclass(frozen=True, slots=True)
class StillTripped:
    """A breaker not armed at the end, and how to reset it."""

    breaker: str  # the breaker id
    subject: str  # account:gen-01
    policy: str
    status: str  # tripped | cooldown
    waiting: str  # "awaiting a manual reset", "re-arms once ... clears", "cooling down until"
    command: str  # the exact request (or command) that resets it

    def to_dict(self) -> dict[str, str]:
        return {
            "breaker": self.breaker,
            "subject": self.subject,
            "policy": self.policy,
            "status": self.status,
            "waiting": self.waiting,
            "reset_command": self.command,
        }


@dataclass(slots=True)
class RunSummary:
    first_at: datetime | None = None
    last_at: datetime | None = None
    cycles: int = 0
    # account -> trading state -> market seconds spent in it
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)  # as of the last cycle
    trips: Counter[str] = field(default_factory=Counter)  # "breaker@subject"
    escalations: int = 0

    def cycle(self, at: datetime, decisions: Sequence[Decision], state: State) -> None:
        """Count a cycle's trips and escalations; the time since the last cycle goes to
        the trading state each account was in."""
        if self.last_at is not None and at > self.last_at:
            elapsed = (at - self.last_at).total_seconds()
            for account, trading_state in self.states.items():
                spent = self.seconds.setdefault(account, {})
                spent[trading_state] = spent.get(trading_state, 0.0) + elapsed
        self.first_at = self.first_at or at
        self.last_at = max(at, self.last_at or at)
        self.cycles += 1
        for decision in decisions:
            if decision.kind == "breaker" and decision.outcome == "trip":
                self.trips[f"{decision.rule}@{decision.subject.label()}"] += 1
            elif decision.kind == "escalation" and decision.outcome == "escalate":
                self.escalations += 1
        self.states = dict(state.trading_states)
        for account in self.states:
            self.seconds.setdefault(account, {})

    def time_in_states(self) -> dict[str, dict[str, float]]:
        """account -> {ACTIVE, REDUCING, HALTED: market seconds}."""
        return {
            account: {name: round(spent.get(name, 0.0), 3) for name in TRADING_STATES}
            for account, spent in sorted(self.seconds.items())
        }

    def fields(
        self, breakers: Mapping[str, BreakerState], alerts: Mapping[str, float], reset: ResetHint
    ) -> dict[str, Any]:
        return {
            "from": None if self.first_at is None else self.first_at.isoformat(),
            "to": None if self.last_at is None else self.last_at.isoformat(),
            "cycles": self.cycles,
            "trips": dict(sorted(self.trips.items())),
            "time_in_states_s": self.time_in_states(),
            "final_states": dict(sorted(self.states.items())),
            "escalations": self.escalations,
            "alerts": dict(sorted(alerts.items())),
            "still_tripped": [s.to_dict() for s in still_tripped(breakers, reset)],
        }

    def lines(
        self,
        breakers: Mapping[str, BreakerState],
        alerts: Mapping[str, float],
        reset: ResetHint,
        auto: Set[str] = frozenset(),
    ) -> list[str]:
        """The summary as text; `auto`: the "policy:breaker" ids whose reset is auto (they
        are listed short, without a request each)."""
        span = (
            f"{self.first_at:%Y-%m-%d %H:%M}Z to {self.last_at:%Y-%m-%d %H:%M}Z market time"
            if self.first_at and self.last_at
            else "no cycle ran"
        )
        lines = [f"summary: {self.cycles} cycle(s), {span}"]
        total_trips = sum(self.trips.values())
        lines.append(f"  breaker trips: {total_trips}")
        for key, count in sorted(self.trips.items(), key=lambda item: (-item[1], item[0]))[:10]:
            lines.append(f"    {count:>4}  {key}")
        lines.append("  time per trading state (market time):")
        for account, spent in self.time_in_states().items():
            total = sum(spent.values()) or 1.0
            shares = "  ".join(
                f"{name} {_duration(spent[name])} ({spent[name] / total:.0%})"
                for name in TRADING_STATES
            )
            lines.append(f"    {account:<10} {shares}  now {self.states.get(account, '?')}")
        lines.append(f"  escalations: {self.escalations}")
        raised = ", ".join(f"{severity} {int(n)}" for severity, n in sorted(alerts.items()))
        lines.append(
            f"  alerts raised: {int(sum(alerts.values()))}" + (f" ({raised})" if raised else "")
        )
        tripped = still_tripped(breakers, reset)
        if not tripped:
            lines.append("  still tripped: none")
            return lines
        lines.append(f"  still tripped: {len(tripped)}{reset.kept}")
        by_itself = [item for item in tripped if f"{item.policy}:{item.breaker}" in auto]
        for item in tripped:
            if item in by_itself:
                continue
            lines.append(f"    {item.breaker}@{item.subject} ({item.policy}; {item.waiting})")
            lines.append(f"      reset: {item.command}")
        if by_itself:  # reset: auto — listed short; the same request resets one at once
            lines.append(
                f"    {len(by_itself)} reset: auto (re-arm by themselves once their cooldown "
                "is over and their condition has cleared; the same request resets one now):"
            )
            lines += [f"      {i.breaker}@{i.subject} ({i.waiting})" for i in by_itself]
            lines.append(f"      reset the first now: {by_itself[0].command}")
        return lines


@dataclass(frozen=True, slots=True)
class ResetHint:
    """How a reset is asked for: the service's reset URL (and whether it needs a token),
    and the --state file the tripped breakers are kept in across a restart."""

    url: str = "http://127.0.0.1:9108/api/v1/breakers/reset"
    token: bool = False
    state_file: str | None = None

    @property
    def kept(self) -> str:
        if self.state_file is None:
            return " (not kept: no --state file, a restart starts every breaker armed)"
        return f" (kept in {self.state_file}: reset them once the service runs again)"

    def command(self, breaker: str, subject: str) -> str:
        header = ' -H "Authorization: Bearer $BASTION_TOKEN"' if self.token else ""
        body = (
            f'{{"breaker": "{breaker}", "subject": "{subject}", '
            '"by": "YOUR-NAME", "reason": "WHY IT IS SAFE"}'
        )
        return f"curl -s{header} -d '{body}' {self.url}"


def still_tripped(breakers: Mapping[str, BreakerState], reset: ResetHint) -> list[StillTripped]:
    """Every breaker not armed, keyed `policy:breaker@scope:id`, with its reset."""
    found = []
    for key, value in sorted(breakers.items()):
        if value.status == ARMED:
            continue
        policy, _, rest = key.partition(":")
        breaker, _, subject = rest.partition("@")
        if value.awaiting_manual_reset:
            waiting = "awaiting a manual reset"
        elif value.awaiting_clear:
            waiting = "auto: re-arms by itself once its condition clears"
        else:
            until = value.until.isoformat() if value.until else "?"
            waiting = f"{value.status} until {until}"
        found.append(
            StillTripped(
                breaker, subject, policy, value.status, waiting, reset.command(breaker, subject)
            )
        )
    return found


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f}d"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
