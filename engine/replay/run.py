"""The replay loop: every frame through every policy set, in time order, at full speed.

Time is the frame's (`Frame.at`), never a clock: a year of daily bars runs in seconds
and the same frames always give the same tracks. Each policy set keeps its own state
from frame to frame, exactly as `bastion eval --state s --state-out s` stepped over the
same snapshots would (no manual resets: a breaker that waits for one stays tripped).

Order checks of the history (`TimedCheck`) are asked of each set's order authority
against the snapshot current at their time (the latest frame at or before it; the first
frame for earlier ones), as questions: they change no memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bastion.engine.authority.authority import DecisionAuthority
from bastion.engine.authority.request import OrderRequest
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.replay.track import Track
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.state import State


@dataclass(frozen=True, slots=True)
class Frame:
    """One moment of the history: its time and the snapshot built for it."""

    at: datetime
    snapshot: Snapshot
    left_out: tuple[Unevaluable, ...] = ()  # records the builder could not use


@dataclass(frozen=True, slots=True)
class TimedCheck:
    """An order check the history holds: when it was asked, and what."""

    at: datetime
    request: OrderRequest
    where: str = ""  # file:line, for the report


@dataclass(frozen=True, slots=True)
class PolicySetRun:
    """A compiled policy set to replay, under a name the report uses."""

    name: str  # baseline | candidate | policies
    policies: CompiledPolicySet
    version: str


def replay(
    sets: Sequence[PolicySetRun],
    frames: Iterable[Frame],
    checks: Sequence[TimedCheck] = (),
) -> tuple[Track, ...]:
    """Each set's track over `frames` (oldest first), with `checks` answered on the way."""
    tracks = tuple(Track(run.name, run.version) for run in sets)
    states = [State() for _ in sets]
    waiting = sorted(checks, key=lambda check: check.at)
    previous: Frame | None = None
    for frame in frames:
        if previous is not None and frame.at < previous.at:
            raise ValueError(
                f"frames out of order: {frame.at.isoformat()} after {previous.at.isoformat()}"
            )
        if previous is not None:
            waiting = _ask(sets, tracks, states, previous, waiting, until=frame.at)
        for index, run in enumerate(sets):
            decisions, states[index] = evaluate(
                run.policies, frame.snapshot, states[index], frame.at, left_out=frame.left_out
            )
            tracks[index].record(frame.at, frame.snapshot, decisions, states[index])
        previous = frame
    if previous is not None:
        _ask(sets, tracks, states, previous, waiting, until=None)
    return tracks


def _ask(
    sets: Sequence[PolicySetRun],
    tracks: Sequence[Track],
    states: Sequence[State],
    frame: Frame,
    waiting: list[TimedCheck],
    *,
    until: datetime | None,
) -> list[TimedCheck]:
    """Answer the waiting checks asked before `until` (all when None) on `frame`'s
    snapshot; returns those still waiting."""
    due = [check for check in waiting if until is None or check.at < until]
    if not due:
        return waiting
    for index, run in enumerate(sets):
        authority = DecisionAuthority(run.policies, state=states[index])
        for check in due:
            now = max(check.at, frame.at)
            tracks[index].checked(now, authority.check(check.request, frame.snapshot, now))
    return waiting[len(due) :]
