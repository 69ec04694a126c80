"""Replay a history through one or two policy sets and say what changed.

Pure, like the rest of the engine: frames (a time and the snapshot of that moment) go in,
a track per policy set (trading states, equity, escalation levels, breaker trips, roll
recommendations, order-check outcomes at every step) comes out, and `impact` compares
them. Where the frames come from (CSV bars, recorded snapshots) is the adapters' business
(`bastion.adapters.replay_frames`); writing the report files is the service's
(`bastion.service.replay_report`).
"""

from __future__ import annotations

from bastion.engine.replay.impact import Impact, impact_of
from bastion.engine.replay.run import Frame, PolicySetRun, TimedCheck, replay
from bastion.engine.replay.track import Point, Track

__all__ = [
    "Frame",
    "Impact",
    "Point",
    "PolicySetRun",
    "TimedCheck",
    "Track",
    "impact_of",
    "replay",
]
