"""`impact_of` on hand-made tracks: time in each state, the last step's tail, and the
first disagreement (a step wins a tie with a check asked on it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.engine.replay.impact import impact_of
from bastion.engine.replay.track import CheckOutcome, Point, Track

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _point(hours: int, state: str, *, tripped: frozenset[str] = frozenset()) -> Point:
    return Point(
        at=T0 + timedelta(hours=hours),
        trading={"gen-01": state},
        equity={"gen-01": Decimal(100)},
        levels={},
        level_names={},
        tripped=tripped,
        rolls={},
    )


def _track(name: str, *points: Point) -> Track:
    track = Track(name, f"sha256:{name}")
    track.points.extend(points)
    return track


def test_impact_when_states_change_then_seconds_follow_the_gaps_and_the_tail() -> None:
    """Each state holds until the next step; the last holds for tail_s."""
    track = _track("policies", _point(0, "ACTIVE"), _point(2, "REDUCING"), _point(3, "HALTED"))
    row = impact_of([track], tail_s=600)["accounts"]["gen-01"]["policies"]
    assert row["seconds"] == {"ACTIVE": 7200.0, "REDUCING": 3600.0, "HALTED": 600.0}
    assert row["steps"] == {"ACTIVE": 1, "REDUCING": 1, "HALTED": 1}
    assert (
        row["final"] == "HALTED" and row["first_halted_at"] == (T0 + timedelta(hours=3)).isoformat()
    )


def test_impact_when_no_tail_given_then_the_last_step_repeats_the_gap_before_it() -> None:
    """Without tail_s the last step lasts as long as the step before it."""
    track = _track("policies", _point(0, "ACTIVE"), _point(5, "ACTIVE"))
    assert impact_of([track])["period"]["seconds"] == 36_000.0


def test_impact_when_a_check_changes_at_the_step_the_sets_part_then_the_step_is_first() -> None:
    """A differing step and a changed check at the same moment: the step is reported."""
    baseline = _track("baseline", _point(0, "ACTIVE"), _point(1, "ACTIVE"))
    candidate = _track(
        "candidate",
        _point(0, "ACTIVE"),
        _point(1, "REDUCING", tripped=frozenset({"dd@account:gen-01"})),
    )
    at = T0 + timedelta(hours=1)
    baseline.checks.append(CheckOutcome(at, "o-1", "approved", Decimal(5), (), "ok"))
    candidate.checks.append(CheckOutcome(at, "o-1", "denied", None, ("trading_state",), "no"))
    impact = impact_of([baseline, candidate])
    first = impact["first_disagreement"]
    assert first["at"] == at.isoformat()
    assert [d["what"] for d in first["differences"]] == ["trading_state", "breaker"]
    assert impact["checks"]["changed"][0]["label"] == "o-1"


def test_impact_when_three_tracks_then_value_error() -> None:
    """A report compares one set or two."""
    track = _track("x", _point(0, "ACTIVE"))
    with pytest.raises(ValueError, match="one or two"):
        impact_of([track, track, track])
