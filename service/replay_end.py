"""`bastion serve --adapter replay` ends at the end of the data, with the replay summary.

`ReplayEnd.after(cycle)` runs after every cycle. On a replay feed, a cycle with fresh
data is recorded on a `Track` (as `bastion replay` records each step); once a cycle has
seen the last bar (it polled at or after the adapter's `end_at`) — or a poll found the
replay finished — the summary `bastion replay` prints is handed to `report` (the
console: plain text in a terminal, one `replay_summary` JSON line otherwise; default:
stdout) and `on_end` is called (the service stops, exit 0). A replay's cycles between
two bar closes evaluate the same moment: one point is recorded per moment. On any
other feed it does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from bastion.engine.replay.impact import impact_of
from bastion.engine.replay.render import summary_text
from bastion.engine.replay.track import Track
from bastion.service.runner import Cycle, Service


class ReplayEnd:
    def __init__(
        self,
        service: Service,
        *,
        on_end: Callable[[], None],
        out: TextIO | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.on_end = on_end
        self.out = out
        self.report = report
        self.active = hasattr(service.feed.adapter, "end_at")  # only a replay ends
        self.ended = False
        self.track = Track("policies", service.reloader.current.version)

    def after(self, cycle: Cycle) -> None:
        """Record the cycle; at the end of the data, print the summary and stop."""
        if not self.active or self.ended:
            return
        service = self.service
        points = self.track.points
        fresh = cycle.fresh_data and service.last_snapshot is not None
        if fresh and points and points[-1].at >= cycle.at:  # the same bar close again
            fresh = bool(cycle.decisions)  # kept only when it decided something
        if fresh and service.last_snapshot is not None:
            self.track.record(cycle.at, service.last_snapshot, cycle.decisions, service.state)
        adapter: Any = service.feed.adapter
        # A fresh cycle polled at cycle.at: did it see the last bar? A failed poll: did
        # it fail because the replay is over (ReplayFinished), not for another reason?
        ended = cycle.at >= adapter.end_at if cycle.fresh_data else adapter.finished
        if ended:
            self.ended = True
            if self.report is not None:
                self.report(self.summary())
            else:
                (self.out or sys.stdout).write(self.summary())
            self.on_end()

    def summary(self) -> str:
        if not self.track.points:
            return "replay: no cycle had data to evaluate\n"
        interval = getattr(self.service.feed.adapter, "interval_s", None)
        tail_s = float(interval) if interval is not None else None
        return summary_text(impact_of([self.track], tail_s=tail_s))
