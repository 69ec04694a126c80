"""Compare the tracks of a replay: what each policy set did, and where they part.

`impact_of(tracks)` is the report's content as JSON-ready data (report.json is exactly
this): per account the time (and steps) spent ACTIVE / REDUCING / HALTED under each set
and its equity; every breaker trip, escalation and roll recommendation; the order checks
whose outcome changed; and the first moment the two sets disagree — a different trading
state, escalation level, set of tripped breakers, roll urgency or check outcome.

Time in a state: the state after a step holds until the next step; the last step holds
for `tail_s` (the bar interval of a bar replay; by default the step before it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from bastion.engine.replay.track import TRADING_STATES, CheckOutcome, Point, Track

Impact = dict[str, Any]
NO_CHECKS = "the history has no order checks (pass --checks FILE to replay some)"


def impact_of(tracks: Sequence[Track], *, tail_s: float | None = None) -> Impact:
    """The report of one track (a single set) or two (baseline first, then candidate)."""
    if not tracks or len(tracks) > 2:
        raise ValueError(f"impact compares one or two tracks, got {len(tracks)}")
    points = tracks[0].points
    durations = _durations([point.at for point in points], tail_s)
    impact: Impact = {
        "period": {
            "from": points[0].at.isoformat() if points else None,
            "to": points[-1].at.isoformat() if points else None,
            "steps": len(points),
            "seconds": sum(durations),
        },
        "sets": [{"name": t.name, "version": t.version, "decisions": t.decisions} for t in tracks],
        "accounts": _accounts(tracks, durations),
        "breaker_trips": {
            t.name: [e.to_dict() for e in t.of_kind("breaker", "trip")] for t in tracks
        },
        "escalations": {t.name: _escalations(t) for t in tracks},
        "roll_recommendations": {t.name: [e.to_dict() for e in t.of_kind("roll")] for t in tracks},
        "checks": _checks(tracks),
    }
    if len(tracks) == 2:
        differing = list(_disagreements(tracks[0], tracks[1]))
        impact["disagreeing_steps"] = len(differing)
        impact["first_disagreement"] = _first(differing, impact["checks"].get("changed", []))
    return impact


def _durations(times: Sequence[datetime], tail_s: float | None) -> list[float]:
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    if times:
        gaps.append(tail_s if tail_s is not None else (gaps[-1] if gaps else 0.0))
    return gaps


def _accounts(tracks: Sequence[Track], durations: Sequence[float]) -> dict[str, Any]:
    accounts = sorted({account for t in tracks for p in t.points for account in p.trading})
    found: dict[str, Any] = {}
    for account in accounts:
        found[account] = {t.name: _account(t, account, durations) for t in tracks}
    return found


def _account(track: Track, account: str, durations: Sequence[float]) -> dict[str, Any]:
    seconds = dict.fromkeys(TRADING_STATES, 0.0)
    steps = dict.fromkeys(TRADING_STATES, 0)
    first: dict[str, str | None] = dict.fromkeys(("REDUCING", "HALTED"), None)
    equity: list[Decimal] = []
    for point, duration in zip(track.points, durations, strict=False):
        state = point.trading.get(account)
        if state is None:
            continue
        seconds[state] = seconds.get(state, 0.0) + duration
        steps[state] = steps.get(state, 0) + 1
        if state in first and first[state] is None:
            first[state] = point.at.isoformat()
        if account in point.equity:
            equity.append(point.equity[account])
    final = next((p.trading[account] for p in reversed(track.points) if account in p.trading), None)
    return {
        "seconds": seconds,
        "steps": steps,
        "final": final,
        "first_reducing_at": first["REDUCING"],
        "first_halted_at": first["HALTED"],
        "trips": sum(
            1 for event in track.of_kind("breaker", "trip") if event.account_id == account
        ),
        "equity": None
        if not equity
        else {"start": str(equity[0]), "end": str(equity[-1]), "min": str(min(equity))},
    }


def _escalations(track: Track) -> dict[str, Any]:
    highest: dict[str, tuple[int, str]] = {}
    for point in track.points:
        for position, level in point.levels.items():
            if level > highest.get(position, (0, ""))[0]:
                highest[position] = (level, point.level_names.get(position, str(level)))
    return {
        "events": [event.to_dict() for event in track.of_kind("escalation")],
        "highest": {
            position: {"level": level, "name": name}
            for position, (level, name) in sorted(highest.items())
        },
    }


def _checks(tracks: Sequence[Track]) -> dict[str, Any]:
    count = len(tracks[0].checks)
    if not count:
        return {"count": 0, "note": NO_CHECKS}
    outcomes = {t.name: _tally(t.checks) for t in tracks}
    result: dict[str, Any] = {"count": count, "outcomes": outcomes}
    if len(tracks) == 2:
        result["changed"] = [
            {
                "at": old.at.isoformat(),
                "label": old.label,
                tracks[0].name: old.to_dict(),
                tracks[1].name: new.to_dict(),
            }
            for old, new in zip(tracks[0].checks, tracks[1].checks, strict=True)
            if (old.outcome, old.approved_size) != (new.outcome, new.approved_size)
        ]
    return result


def _tally(checks: Sequence[CheckOutcome]) -> dict[str, int]:
    tally = dict.fromkeys(("approved", "downsized", "denied"), 0)
    for check in checks:
        tally[check.outcome] = tally.get(check.outcome, 0) + 1
    return tally


def _disagreements(baseline: Track, candidate: Track) -> Iterator[dict[str, Any]]:
    """One entry per step where the sets' points differ, with what differs."""
    for old, new in zip(baseline.points, candidate.points, strict=True):
        differences = point_differences(old, new)
        if differences:
            yield {"at": old.at.isoformat(), "differences": differences}


def point_differences(old: Point, new: Point) -> list[dict[str, Any]]:
    """What differs between two points of the same moment, each as what / subject /
    baseline / candidate."""
    found: list[dict[str, Any]] = []
    found += _mapping("trading_state", "account", old.trading, new.trading, "ACTIVE")
    found += _mapping("escalation_level", "position", old.levels, new.levels, 0)
    found += _mapping("roll_urgency", "position", old.rolls, new.rolls, "none")
    for key in sorted(old.tripped ^ new.tripped):
        breaker, _, subject = key.partition("@")
        found.append(
            {
                "what": "breaker",
                "subject": subject,
                "breaker": breaker,
                "baseline": "tripped" if key in old.tripped else "armed",
                "candidate": "tripped" if key in new.tripped else "armed",
            }
        )
    return found


def _mapping(
    what: str, scope: str, old: Mapping[str, Any], new: Mapping[str, Any], default: Any
) -> list[dict[str, Any]]:
    return [
        {
            "what": what,
            "subject": f"{scope}:{key}",
            "baseline": old.get(key, default),
            "candidate": new.get(key, default),
        }
        for key in sorted(set(old) | set(new))
        if old.get(key, default) != new.get(key, default)
    ]


def _first(
    differing: Sequence[dict[str, Any]], changed_checks: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The earliest disagreement: a step whose points differ, or a check answered
    differently (the step wins a tie: the check was asked on that state)."""
    candidates: list[tuple[datetime, int, dict[str, Any]]] = []
    if differing:
        candidates.append((datetime.fromisoformat(differing[0]["at"]), 0, differing[0]))
    if changed_checks:
        check = changed_checks[0]
        entry = {"at": check["at"], "differences": [{"what": "order_check", **check}]}
        candidates.append((datetime.fromisoformat(check["at"]), 1, entry))
    return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None
