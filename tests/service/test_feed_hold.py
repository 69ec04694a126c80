"""Replayed and simulated bars are never stale against wall time: a cycle polls the sim
and replay feeds at one market moment (their `hold`), and a replay evaluates at the close
of its latest bar — so staleness is measured against the bar interval of the feed."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from bastion.adapters.sources.clock import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES, ROOT

EXAMPLE = ROOT / "examples" / "replay"
DAY_S = 86_400.0


class TickingClock(ManualClock):
    """Wall time that passes while a poll runs: every reading advances it by `tick_s`."""

    def __init__(self, tick_s: float) -> None:
        super().__init__()
        self.tick_s = tick_s

    def now(self) -> datetime:
        self.advance(self.tick_s)
        return super().now()

    def monotonic(self) -> float:  # what a ScaledClock (sim market time) reads
        self.advance(self.tick_s)
        return super().monotonic()


def _service(tmp_path: Path, name: str, wall: ManualClock, speed: float) -> Service:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies, dirs_exist_ok=True)
    config = (
        {"bars": {"SPY": str(EXAMPLE / "SPY.csv"), "AAPL": str(EXAMPLE / "AAPL.csv")}}
        | {"positions": str(EXAMPLE / "positions.json")}
        if name == "replay"
        else {}
    )
    feed = make_feed(name, config, wall=wall, speed=speed, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    return Service(feed, reloader, ServiceMetrics())


def test_replay_when_played_at_a_day_per_second_then_no_stale_data(tmp_path: Path) -> None:
    """Daily bars at 86,400x, cycles 0.37 s of wall time apart (mid-bar): every cycle
    evaluates at a bar close, the data age is 0 and stale_data never trips."""
    wall = ManualClock()
    service = _service(tmp_path, "replay", wall, DAY_S)
    ages, decisions = [], []
    for _ in range(40):
        cycle = service.cycle()
        assert cycle.fresh_data, service.last_adapter_error
        assert service.last_snapshot is not None
        ages.append(service.last_snapshot.system.data_age_s)
        decisions += cycle.decisions
        wall.advance(0.37)
    assert set(ages) == {0}
    assert not [d for d in decisions if d.rule == "stale_data"]
    assert service.ready()[0], service.ready()[1]


def test_replay_feed_when_asked_the_time_then_close_of_latest_bar(tmp_path: Path) -> None:
    """The service's clock on a replay (order checks, resets, /readyz) is the latest bar
    close, not the scaled clock running between two closes."""
    wall = ManualClock()
    service = _service(tmp_path, "replay", wall, DAY_S)
    first = service.cycle().at
    wall.advance(0.5)  # half a bar later
    assert service.feed.now() == first
    wall.advance(0.6)
    assert service.feed.now() == first + timedelta(days=1)


def test_sim_when_wall_time_passes_during_a_poll_then_no_clock_skew(tmp_path: Path) -> None:
    """At 20,000x, 2 ms of wall time per clock reading is 40 market seconds: without the
    hold, the poll's data would be stamped after the cycle's now (a clock-skew failure)
    or aged by it. With it every cycle polls and stale_data never trips."""
    wall = TickingClock(0.002)
    service = _service(tmp_path, "sim", wall, 20_000.0)
    for _ in range(15):
        cycle = service.cycle()
        assert cycle.fresh_data, service.last_adapter_error
        assert not [d for d in cycle.decisions if d.rule == "stale_data"]
        assert service.last_snapshot is not None
        assert service.last_snapshot.system.data_age_s <= 60  # one minute bar, at most
        wall.advance(0.05)


def test_sim_when_held_then_fetches_answer_at_that_moment_until_the_next_hold() -> None:
    """`hold` fixes the sim's market time for a whole poll; the next hold moves it on."""
    from bastion.adapters.sim import SimAdapter  # noqa: PLC0415

    wall = ManualClock()
    sim = SimAdapter(wall, speed=60.0)
    held = sim.hold()
    wall.advance(10)
    assert sim.now() == held
    assert sim.hold() == held + timedelta(seconds=600)
