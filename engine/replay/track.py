"""What one policy set did over a replay: a point per step, the events, the checks.

A `Track` is filled step by step (`record`, `checked`) by the replay loop or by the
service (`bastion serve --adapter replay`), and read by `impact` and the report. It is
the one mutable object of this package: an append-only recorder, owned by one loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bastion.engine.authority.answer import ExecutionDecision
from bastion.engine.decision import Decision
from bastion.engine.roll.model import NO_URGENCY
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import ARMED, State

TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
# Decision kinds the report lists as events (the others are folded into the points).
EVENT_KINDS = frozenset({"breaker", "escalation", "roll", "trading_state", "evaluation"})


@dataclass(frozen=True, slots=True)
class Point:
    """The state of things after the evaluation at `at`."""

    at: datetime
    trading: Mapping[str, str]  # account id -> ACTIVE | REDUCING | HALTED
    equity: Mapping[str, Decimal]  # account id -> equity_usd in the snapshot
    levels: Mapping[str, int]  # position id -> escalation level (absent: 0, the base level)
    level_names: Mapping[str, str]  # position id -> the level's name (escalated ones)
    tripped: frozenset[str]  # "breaker@scope:id" for every breaker not armed
    rolls: Mapping[str, str]  # position id -> roll urgency (when one is set)


@dataclass(frozen=True, slots=True)
class Event:
    """One decision worth listing: a trip, an escalation, a roll, a trading-state change."""

    at: datetime
    kind: str
    rule: str
    subject: str
    account_id: str | None  # the account the subject belongs to, when it has one
    outcome: str
    actions: tuple[str, ...]
    mode: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "rule": self.rule,
            "subject": self.subject,
            "account_id": self.account_id,
            "outcome": self.outcome,
            "actions": list(self.actions),
            "mode": self.mode,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The answer to one order check of the history."""

    at: datetime
    label: str  # the request's id, else "ACTION SYMBOL in ACCOUNT"
    outcome: str  # approved | downsized | denied
    approved_size: Decimal | None
    blocking: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "label": self.label,
            "outcome": self.outcome,
            "approved_size": None if self.approved_size is None else str(self.approved_size),
            "blocking": list(self.blocking),
            "reason": self.reason,
        }


@dataclass(slots=True)
class Track:
    """One policy set's run: `name` (baseline / candidate / policies) and its version."""

    name: str
    version: str
    points: list[Point] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    decisions: int = 0  # every decision made, listed or not

    def record(
        self, at: datetime, snapshot: Snapshot, decisions: Iterable[Decision], state: State
    ) -> Point:
        """One step: the decisions `evaluate` made at `at` and the state it returned."""
        for decision in decisions:
            self.decisions += 1
            if decision.kind in EVENT_KINDS:
                self.events.append(_event(decision))
        point = point_of(at, snapshot, state)
        self.points.append(point)
        return point

    def checked(self, at: datetime, answer: ExecutionDecision) -> CheckOutcome:
        request = answer.request
        label = request.id or f"{request.action} {request.symbol} in {request.account_id or '?'}"
        outcome = CheckOutcome(
            at=at,
            label=label,
            outcome=answer.outcome,
            approved_size=answer.approved_size,
            blocking=tuple(answer.blocking),
            reason=answer.reasons[0] if answer.reasons else "",
        )
        self.checks.append(outcome)
        return outcome

    def of_kind(self, kind: str, outcome: str | None = None) -> list[Event]:
        return [
            event
            for event in self.events
            if event.kind == kind and (outcome is None or event.outcome == outcome)
        ]


def point_of(at: datetime, snapshot: Snapshot, state: State) -> Point:
    accounts = [account.id for account in snapshot.accounts]
    return Point(
        at=at,
        trading={account: state.trading_state(account) for account in accounts},
        equity={account.id: account.equity_usd for account in snapshot.accounts},
        levels={pid: level.level for pid, level in state.escalations.items() if level.level},
        level_names={pid: level.level_name for pid, level in state.escalations.items()},
        tripped=frozenset(
            key.partition(":")[2]
            for key, breaker in state.breakers.items()
            if breaker.status != ARMED
        ),
        rolls={
            pid: urgency
            for pid, urgency in state.roll_urgencies.items()
            if urgency and urgency != NO_URGENCY
        },
    )


def _event(decision: Decision) -> Event:
    subject = decision.subject
    return Event(
        at=decision.time,
        kind=decision.kind,
        rule=decision.rule,
        subject=decision.subject.label(),
        account_id=subject.id if subject.scope == "account" else subject.account_id,
        outcome=decision.outcome,
        actions=tuple(decision.actions),
        mode=decision.mode,
        reason=decision.reasons[0] if decision.reasons else "",
    )
