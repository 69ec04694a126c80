"""`bastion serve` end to end on the sim feed: hot reload, rejected edits, cadence."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES

DEADLINE_S = 15.0


def _bastion() -> str:
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    return script


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    return json.loads(body) if body.startswith("{") else body


def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real `bastion serve` process on the sim feed, with its own copy of the policies."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    process = subprocess.Popen(
        [
            _bastion(),
            "serve",
            "--policies",
            str(policies),
            "--port",
            "0",
            "--speed",
            "600",
            "--log-format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        url = ""
        deadline = time.monotonic() + DEADLINE_S
        while not url and time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
            url = match.group(1) if match else ""
        assert url, "the service did not start"
        yield url, policies
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_S) == 0  # graceful shutdown on SIGTERM


def _roll_version(url: str) -> str:
    found = _get(f"{url}/api/v1/policies")
    return next(p["version"] for p in found["policies"] if p["name"] == "default-roll")


def test_serve_when_policy_edited_in_place_then_new_version_serves(
    served: tuple[str, Path],
) -> None:
    """An in-place edit is picked up by the watcher and becomes the serving version."""
    url, policies = served
    before = _roll_version(url)
    roll = policies / "roll.yaml"
    roll.write_text(
        roll.read_text().replace("min_net_credit_usd: 0.10", "min_net_credit_usd: 0.15")
    )
    _until(lambda: _roll_version(url) != before, "the edited version to serve")


def test_serve_when_policy_renamed_over_twice_then_each_version_serves(
    served: tuple[str, Path],
) -> None:
    """Editors save by writing a temp file and renaming it over: seen every time."""
    url, policies = served
    roll = policies / "roll.yaml"
    for credit in ("0.11", "0.12"):
        before = _roll_version(url)
        temporary = policies / ".roll.yaml.tmp"
        temporary.write_text(
            roll.read_text().replace("min_net_credit_usd: 0.10", f"min_net_credit_usd: {credit}")
            if "0.10" in roll.read_text()
            else re.sub(
                r"min_net_credit_usd: [0-9.]+", f"min_net_credit_usd: {credit}", roll.read_text()
            )
        )
        os.replace(temporary, roll)
        _until(lambda before=before: _roll_version(url) != before, f"version with {credit}")


def test_serve_when_edit_is_broken_then_old_version_keeps_serving_and_failure_counted(
    served: tuple[str, Path],
) -> None:
    """A broken file never replaces the good set; the rejection is counted and visible."""
    url, policies = served
    before = _get(f"{url}/api/v1/policies")["version"]
    (policies / "breakers.yaml").write_text("spec: [unclosed\n")

    def failures() -> float:
        text = _get(f"{url}/metrics")
        match = re.search(r'bastion_policy_reloads_total\{result="failure"\} ([0-9.]+)', text)
        return float(match.group(1)) if match else 0.0

    _until(lambda: failures() >= 1, "the rejected reload to be counted")
    assert _get(f"{url}/api/v1/policies")["version"] == before
    request = urllib.request.Request(f"{url}/-/reload", method="POST")
    with pytest.raises(urllib.error.HTTPError) as rejected:
        urllib.request.urlopen(request, timeout=5)
    assert rejected.value.code == 422


def test_serve_once_when_sim_then_one_cycle_printed_and_exit_0(tmp_path: Path) -> None:
    """--once runs one full cycle and exits: for cron and tests."""
    state = tmp_path / "state.json"
    done = subprocess.run(
        [_bastion(), "serve", "--once", "--policies", str(POLICIES), "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # piped: JSON only
    (evaluated,) = [line for line in lines if line["event"] == "cycle_evaluated"]
    assert set(evaluated["trading_states"]) == {"com-01", "gen-01", "rev-01"}
    assert json.loads(state.read_text())["engine"]["version"] == 1


def _service(tmp_path: Path) -> tuple[Service, ManualClock]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    wall = ManualClock()
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    return Service(feed, reloader, ServiceMetrics()), wall


def test_cycle_when_sim_sells_off_then_polling_interval_shortens(tmp_path: Path) -> None:
    """An escalation shortens the polling interval (300 s -> 60 s -> 30 s market time)."""
    service, wall = _service(tmp_path)
    intervals = []
    for _ in range(120):
        cycle = service.cycle()
        intervals.append(cycle.interval_s)
        wall.advance(service.wall_interval_s(cycle))
        if min(intervals) <= 30:
            break
    assert intervals[0] == 300
    assert min(intervals) <= 60
    assert service.state.escalations, "the sell-off escalated no position"


def test_cycle_when_adapter_fails_then_last_snapshot_ages_and_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing poll re-evaluates the last snapshot with its true age: staleness trips."""
    from bastion.engine.errors import TransientAdapterError  # noqa: PLC0415

    service, wall = _service(tmp_path)
    service.cycle()
    assert service.ready()[0]

    def down(*_: object, **__: object) -> None:
        raise TransientAdapterError("HTTP 503 from sim", retry_after_s=None)

    monkeypatch.setattr(service.feed.adapter, "fetch_accounts", down)
    wall.advance(timedelta(minutes=11).total_seconds() / 60)  # 11 market minutes at 60x
    cycle = service.cycle()
    ready, reasons = service.ready()
    assert not cycle.fresh_data and not ready
    assert any("stale" in reason or "poll failed" in reason for reason in reasons)
    assert any(d.rule == "stale_data" and d.outcome == "trip" for d in cycle.decisions)


def test_ready_when_policy_sets_staleness_threshold_then_it_is_used(tmp_path: Path) -> None:
    """/readyz goes stale at the policy's stale_data threshold, not a constant."""
    service, _ = _service(tmp_path)
    assert service.stale_after_s() == 600  # policies/breakers.yaml: stale_data >= 600
    breakers = service.reloader.directory / "breakers.yaml"
    breakers.write_text(breakers.read_text().replace("threshold: 600", "threshold: 120"))
    service.reloader.reload("test")
    assert service.stale_after_s() == 120
