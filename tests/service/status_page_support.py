"""The real service for the status-page tests: the sim feed at 60x with market time moved
by the test, one manual daily-loss breaker that trips rev-01 about 34 market minutes in,
--auth with one principal per role, and its HTTP server on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bastion.adapters.sources import ManualClock
from bastion.engine.evaluation.facts import build_facts
from bastion.service.auth import Authenticator
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Cycle, Service
from tests.service.http_support import write_auth_file

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
THRESHOLD_PCT = 6
POLICY = f"""\
apiVersion: bastion/v1
kind: BreakerPolicy
metadata:
  name: desk-breakers
  owner: risk-office
  description: One manual breaker on the daily loss.
spec:
  breakers:
    - id: daily_loss_pct
      metric: account.daily_loss_pct
      comparison: ">="
      threshold: {THRESHOLD_PCT}
      action: halt_all
      severity: critical
      cooldown_s: 60
      reset: manual
"""
KEY = "desk-breakers:daily_loss_pct@account:rev-01"


@dataclass
class Desk:
    service: Service
    http: HttpServer
    wall: ManualClock
    policies: Path

    @property
    def url(self) -> str:
        return self.http.url

    def next_cycle(self) -> Cycle:
        """One market minute later, one cycle."""
        self.wall.advance(1)
        return self.service.cycle()

    def trip(self) -> None:
        """Cycle until the sell-off trips rev-01's breaker."""
        for _ in range(60):
            self.next_cycle()
            if KEY in self.service.breakers_not_armed():
                return
        raise AssertionError(f"{KEY} never tripped")

    def trip_then_clear(self) -> None:
        """Trip, then cycle until the loss is back under the threshold: the breaker stays
        tripped, awaiting a manual reset."""
        self.trip()
        for _ in range(60):
            self.next_cycle()
            assert self.service.last_snapshot is not None
            facts = build_facts(self.service.last_snapshot)
            (item,) = [f for f in facts.of("account") if f.subject.id == "rev-01"]
            value = item.value("account.daily_loss_pct")
            if value is not None and value < THRESHOLD_PCT:
                return
        raise AssertionError("rev-01's daily loss never fell back under the threshold")

    def apply_resets_at_once(self) -> None:
        """A queued reset runs the next cycle on a thread (as the scheduler's run_soon)."""
        self.service.on_reset_queued = lambda: threading.Thread(
            target=self.next_cycle, daemon=True
        ).start()


@contextmanager
def desk(tmp_path: Path, *, auth: bool = True) -> Iterator[Desk]:
    """The real service with the one-breaker policy (no cycle yet), served on loopback."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "breakers.yaml").write_text(POLICY)
    (policies / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\n"
        "spec: {required_kinds: [BreakerPolicy]}\n"
    )
    wall = ManualClock(START)
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(service, event)
    )
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    authenticator = Authenticator(write_auth_file(tmp_path / "principals.yaml")) if auth else None
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=authenticator)
    http.start()
    try:
        yield Desk(service, http, wall, policies)
    finally:
        http.stop()
