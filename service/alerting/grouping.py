"""Grouping: alerts become few messages. Pure: every call is given the time (monotonic
seconds), so that tests drive it with a fake clock.

A group is (route, receiver, the values of the route's group_by labels). Its first
message waits group_wait_s (critical_group_wait_s at most for critical and emergency:
1 s by default), gathering a burst into one message; later changes (new alerts,
resolved ones) wait until group_interval_s after the last message; an unchanged group
still firing is sent again after repeat_interval_s. An alert already in its group (same
fingerprint) is a duplicate: no new message. A resolved alert is announced once, then
forgotten; an event (not a condition: model.CONDITION_KINDS) is told once, then
forgotten too; a group with nothing firing and nothing to announce goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from bastion.service.alerting.config import URGENT, AlertPolicy, Route
from bastion.service.alerting.model import LabelledAlert, Notification

Silenced = Callable[[Mapping[str, str]], str | None]


@dataclass(slots=True)
class _Group:
    key: str
    route: Route
    receiver: str
    labels: dict[str, str]
    repeat_s: float
    firing: dict[str, LabelledAlert] = field(default_factory=dict)
    resolved: dict[str, LabelledAlert] = field(default_factory=dict)
    changed: dict[str, float] = field(default_factory=dict)  # fingerprint -> enqueued at
    next_flush_s: float | None = None
    last_sent_s: float | None = None

    def schedule_change(self, severity: str, now_s: float, *, resolved: bool = False) -> None:
        """A change to announce: at group_interval after the last message (group_wait
        for a new group), and within critical_group_wait_s when a critical alert fires
        (a resolved one waits its turn: good news is not urgent)."""
        timing = self.route.timing
        if self.last_sent_s is None:
            due = now_s + timing.first_wait_s("warning" if resolved else severity)
        else:
            due = max(now_s, self.last_sent_s + timing.group_interval_s)
            if severity in URGENT and not resolved:
                due = min(due, now_s + timing.critical_group_wait_s)
        if self.next_flush_s is None or due < self.next_flush_s:
            self.next_flush_s = due


@dataclass(slots=True)
class GroupingStats:
    deduplicated: int = 0


class Grouper:
    def __init__(self, policy: AlertPolicy, repeat_caps: Mapping[str, float | None]) -> None:
        self.policy = policy
        self.repeat_caps = dict(repeat_caps)
        self.groups: dict[str, _Group] = {}
        self.stats = GroupingStats()

    def add(self, alert: LabelledAlert, now_s: float) -> None:
        """A firing alert into the groups of every route and receiver that take it."""
        for route in self.policy.routes_for(alert):
            for receiver in route.receivers:
                group = self._group(route, receiver, alert)
                known = group.firing.get(alert.fingerprint)
                if known is not None and known.severity == alert.severity:
                    self.stats.deduplicated += 1
                    continue
                if known is not None:  # the same alert, more (or less) severe: say so
                    alert = replace(alert, starts_at=known.starts_at)
                group.firing[alert.fingerprint] = alert
                group.resolved.pop(alert.fingerprint, None)
                group.changed.setdefault(alert.fingerprint, now_s)
                group.schedule_change(alert.severity, now_s)

    def resolve(self, fingerprint: str, ends_at: datetime, now_s: float) -> None:
        """The alert's condition cleared: announced as resolved in each of its groups."""
        for group in self.groups.values():
            alert = group.firing.pop(fingerprint, None)
            if alert is None:
                continue
            group.changed.pop(fingerprint, None)
            group.resolved[fingerprint] = replace(alert, ends_at=ends_at)
            group.schedule_change(alert.severity, now_s, resolved=True)

    def next_due_s(self) -> float | None:
        due = [g.next_flush_s for g in self.groups.values() if g.next_flush_s is not None]
        return min(due, default=None)

    def due(
        self, now_s: float, silenced: Silenced | None = None, *, repeats: bool = True
    ) -> list[Notification]:
        """The messages due now, one per group at most; the groups move on. `repeats`
        False: changes only (the flush at stop, which cuts every wait short)."""
        out = []
        for key in list(self.groups):
            group = self.groups[key]
            if group.next_flush_s is None or group.next_flush_s > now_s:
                continue
            notification = self._flush(group, now_s, silenced, repeats)
            if notification is not None:
                out.append(notification)
            if not group.firing and not group.resolved:
                del self.groups[key]
        return out

    def _flush(
        self, group: _Group, now_s: float, silenced: Silenced | None, repeats: bool = True
    ) -> Notification | None:
        repeat = (
            repeats
            and group.last_sent_s is not None
            and now_s >= group.last_sent_s + group.repeat_s
        )
        if not group.changed and not group.resolved and not repeat:
            group.next_flush_s = (
                None if group.last_sent_s is None else group.last_sent_s + group.repeat_s
            )
            return None
        firing = tuple(
            a for a in group.firing.values() if silenced is None or silenced(a.labels) is None
        )
        resolved = tuple(group.resolved.values())
        enqueued = min(group.changed.values(), default=now_s)
        group.changed.clear()
        group.resolved.clear()
        for key in [k for k, alert in group.firing.items() if not alert.condition]:
            del group.firing[key]  # an event is told once
        group.last_sent_s = now_s
        group.next_flush_s = now_s + group.repeat_s if group.firing else None
        if not firing and not resolved:  # all of it silenced since it was raised
            return None
        return Notification(
            group.receiver, group.key, dict(group.labels), firing, resolved, enqueued
        )

    def _group(self, route: Route, receiver: str, alert: LabelledAlert) -> _Group:
        labels = route.group_labels(alert)
        key = f"{route.index}/{receiver}/" + json.dumps(labels, sort_keys=True)
        group = self.groups.get(key)
        if group is None:
            repeat = route.timing.repeat_interval_s
            cap = self.repeat_caps.get(receiver)
            group = _Group(
                key, route, receiver, labels, repeat if cap is None else min(repeat, cap)
            )
            self.groups[key] = group
        return group
