"""The service on the sim: auto breakers trip (alert) at most once per cooldown, a held
breaker is said once, and reloads reach the console as lines."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from bastion.adapters.sources.clock import ManualClock
from bastion.engine.decision import Decision
from bastion.service.console import Console, reload_line
from bastion.service.console_lines import ConsoleLine
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES


def _service(tmp_path: Path) -> tuple[Service, ManualClock, Path]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    wall = ManualClock()
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    holder: dict[str, Service] = {}
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder["service"], event)
    )
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics())
    holder["service"] = service
    return service, wall, policies


def _cooldowns(service: Service) -> dict[str, Decimal]:
    """breaker id -> cooldown_s, for every enforced auto breaker of the live set."""
    found = {}
    for policy in service.reloader.current.policy_set.of_kind("BreakerPolicy"):
        assert policy.spec is not None
        for breaker in policy.spec.breakers:
            if breaker.reset == "auto":
                found[f"{policy.name}:{breaker.id}"] = breaker.cooldown_s
    return found


def test_sim_when_run_two_market_hours_then_auto_breakers_trip_at_most_once_per_cooldown(
    tmp_path: Path,
) -> None:
    """The sell-off and the volatile regimes hold conditions across cooldowns: every
    auto breaker's trips (its alerts) are at least a cooldown apart, and each trip is
    followed by at most one `held` before it re-arms."""
    service, wall, _ = _service(tmp_path)
    cooldowns = _cooldowns(service)
    trips: dict[str, list[datetime]] = defaultdict(list)
    outcomes: dict[str, list[str]] = defaultdict(list)
    rearmed: dict[str, set[datetime]] = defaultdict(set)
    started = None
    while started is None or (
        service.last_cycle and (service.last_cycle.at - started).total_seconds() < 7200
    ):
        cycle = service.cycle()
        started = started or cycle.at
        for decision in cycle.decisions:
            if decision.kind != "breaker":
                continue
            key = f"{decision.policy}:{decision.rule}@{decision.subject.label()}"
            outcomes[key].append(decision.outcome)
            if decision.outcome == "trip":
                trips[key].append(decision.time)
            elif decision.outcome == "rearm":
                rearmed[key].add(decision.time)
        wall.advance(service.wall_interval_s(cycle))
    held = [key for key, seen in outcomes.items() if "held" in seen]
    assert held, "no auto breaker held its condition past a cooldown: the test saw nothing"
    for key, times in trips.items():
        cooldown = cooldowns.get(key.partition("@")[0])
        if cooldown is None:
            continue  # a manual breaker trips once until an operator resets it
        for first, second in pairwise(times):
            assert (second - first).total_seconds() >= float(cooldown), (key, first, second)
        # Re-armed only once the condition cleared: never a rearm and a trip in one cycle
        # (the old rearm/trip pair of a condition that held all along).
        assert not rearmed[key] & set(times), (key, sorted(rearmed[key] & set(times)))
    for key, seen in outcomes.items():
        between = "".join(o[0] for o in seen)  # t(rip) h(eld) r(earm)
        assert "hh" not in between and "tt" not in between, (key, seen)


def test_reload_when_a_policy_changes_then_the_console_gets_a_line_with_versions_and_file(
    tmp_path: Path,
) -> None:
    """A reload reaches the console (`Service.on_reload`): versions, the changed policy
    and its file; a broken file is a REFUSED line naming the version still serving."""
    service, _, policies = _service(tmp_path)
    seen: list[ConsoleLine] = []

    def on_reload(event: Any, files: Any) -> None:
        seen.append(reload_line(event, files))

    service.on_reload = on_reload
    breakers = policies / "breakers.yaml"
    before = service.reloader.current.version
    breakers.write_text(breakers.read_text().replace("cooldown_s: 3600", "cooldown_s: 3500", 1))
    service.reloader.reload("test")
    breakers.write_text("apiVersion: bastion/v1\nkind: BreakerPolicy\nspec: [broken\n")
    service.reloader.reload("test")
    assert [line.event for line in seen] == ["policy_reloaded", "reload_rejected"]
    assert f"{before[:19]} -> " in seen[0].text and "breakers.yaml" in seen[0].text
    assert "REFUSED policies" in seen[1].text and "still serving" in seen[1].text


def test_console_when_cycles_then_summary_counts_them(tmp_path: Path) -> None:
    """The console fed by real cycles: the summary counts them and their trips."""
    service, wall, _ = _service(tmp_path)
    written: list[tuple[str, list[str]]] = []

    class Sink:
        def line(self, line: ConsoleLine) -> None:
            written.append((line.event, [line.text]))

        def status(self, service: Service, cycle: Any) -> None:
            return None

        def block(self, event: str, lines: Any, fields: Any) -> None:
            written.append((event, list(lines)))

        def close(self) -> None:
            return None

    console = Console(Sink())
    decisions: list[Decision] = []
    for _ in range(30):
        cycle = service.cycle()
        console.cycle(service, cycle)
        decisions += cycle.decisions
        wall.advance(service.wall_interval_s(cycle))
    console.stop(service)
    (summary,) = [lines for event, lines in written if event == "run_summary"]
    assert summary[0].startswith("summary: 30 cycle(s)")
    trips = sum(1 for d in decisions if d.kind == "breaker" and d.outcome == "trip")
    assert f"  breaker trips: {trips}" in summary
    assert any(event == "regime_changed" for event, _ in written)
