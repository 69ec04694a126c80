"""Hot reload from a ConfigMap: a `..data` swap is one reload of the whole new set."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from watchfiles import Change

from bastion.adapters.sources import ManualClock
from bastion.cli.main import main
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service.candidate import Candidate
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.policy_watch import PolicyFileFilter
from bastion.service.reloader import PolicyReloaded, PolicyReloader, ReloadEvent, ReloadRejected
from bastion.service.runner import Service
from tests.conftest import ROOT
from tests.policy.configmap_layout import FIRST, SECOND, edited, mount, shipped, swap

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DEADLINE_S = 5.0
DEBOUNCE_S = 0.05
BREAKERS = "BreakerPolicy/default-breakers"
ROLL = "RollPolicy/default-roll"


class Clock:
    """A test clock: each call is one second after the previous one."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@pytest.fixture
def configmap(tmp_path: Path) -> Path:
    return mount(tmp_path / "policies", shipped())


@pytest.fixture
def events() -> list[ReloadEvent]:
    return []


@pytest.fixture
def reloader(configmap: Path, events: list[ReloadEvent]) -> Iterator[PolicyReloader]:
    made = PolicyReloader(configmap, now=Clock(), on_event=events.append, debounce_s=DEBOUNCE_S)
    made.load_initial()
    yield made
    made.stop()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_S} s waiting for {what}")
        time.sleep(0.01)


def test_load_initial_when_configmap_directory_then_every_policy_once(
    reloader: PolicyReloader,
) -> None:
    """The service starts on a ConfigMap mount: no BST605, one version per key."""
    assert len(reloader.current.versions()) == len(shipped())


def test_reload_at_every_step_of_a_swap_then_never_rejected_and_never_mixed(
    configmap: Path, reloader: PolicyReloader, events: list[ReloadEvent]
) -> None:
    """A reload between any two kubelet steps sees the old set or the new one, whole,
    and never a missing file the guard would count as a removal."""
    before = reloader.current.versions()
    swap(configmap, edited(shipped()), pause=lambda: reloader.reload("watch"))
    assert [type(event) for event in events] == [PolicyReloaded] * 5
    assert reloader.stats.refused == reloader.stats.failed == 0
    changed = [event.changed for event in events if isinstance(event, PolicyReloaded)]
    assert changed == [(), (), (BREAKERS, ROLL), (), ()]
    assert reloader.current.versions()[BREAKERS] != before[BREAKERS]


def test_watch_when_data_swapped_during_evaluations_then_one_reload_of_the_new_set(
    configmap: Path, reloader: PolicyReloader, events: list[ReloadEvent]
) -> None:
    """The kubelet's swap, with pauses between its steps, under continuous evaluation:
    exactly one reload, of the new version, and nothing refused or rejected."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    before = reloader.current
    problems: list[str] = []
    done = threading.Event()

    def evaluate_continuously() -> None:
        while not done.is_set():
            loaded = reloader.current
            try:
                evaluate(loaded.compiled, snapshot, State(), snapshot.as_of)
            except Exception as error:  # evaluate never raises; record it if it does
                problems.append(repr(error))
            time.sleep(0.0005)  # hand the GIL over

    evaluator = threading.Thread(target=evaluate_continuously)
    reloader.start_watching()
    evaluator.start()
    try:
        # Pauses longer than the debounce: each kubelet step is seen on its own.
        swap(configmap, edited(shipped()), pause=lambda: time.sleep(2 * DEBOUNCE_S))
        wait_for(lambda: reloader.current is not before, "the reload of the new set")
        time.sleep(4 * DEBOUNCE_S)  # room for a second (wrong) reload to show
    finally:
        done.set()
        evaluator.join(DEADLINE_S)
        reloader.stop()
    assert problems == []
    assert [type(event) for event in events] == [PolicyReloaded]
    reloaded = events[0]
    assert isinstance(reloaded, PolicyReloaded)
    assert reloaded.changed == (BREAKERS, ROLL)
    assert reloaded.trigger == "watch"
    assert reloader.stats.refused == reloader.stats.failed == 0


def test_watch_when_swap_removes_a_key_then_refused_by_the_guard(
    configmap: Path, reloader: PolicyReloader, events: list[ReloadEvent]
) -> None:
    """A new version without com-accounts.yaml really removes protection: fail closed."""
    before = reloader.current
    files = shipped()
    del files["com-accounts.yaml"]
    reloader.start_watching()
    swap(configmap, files)
    wait_for(lambda: bool(events), "the refused reload")
    refused = events[-1]
    assert isinstance(refused, ReloadRejected)
    assert refused.reason == "removes_protection"
    assert reloader.current is before
    assert not (configmap / "com-accounts.yaml").exists()


def test_start_watching_when_swapped_before_start_then_caught_up(
    configmap: Path, reloader: PolicyReloader, events: list[ReloadEvent]
) -> None:
    """A swap between load_initial() and start_watching() is not lost."""
    swap(configmap, edited(shipped()))
    reloader.start_watching()
    wait_for(lambda: bool(events), "the catch-up reload")
    assert isinstance(events[0], PolicyReloaded)
    assert events[0].changed == (BREAKERS, ROLL)


def test_filter_when_kubelet_swap_paths_then_only_the_data_rename_reacts(
    configmap: Path,
) -> None:
    """The new folder's files, `..data_tmp`, key symlinks and the old folder's removal
    are all part of the swap; only `..data` replaced counts as a change."""
    reacts = PolicyFileFilter(configmap)
    root = str(configmap)
    assert reacts(Change.added, f"{root}/..data")
    assert not reacts(Change.deleted, f"{root}/..data")
    assert not reacts(Change.added, f"{root}/..data_tmp")
    assert not reacts(Change.added, f"{root}/{SECOND}/limits.yaml")
    assert not reacts(Change.deleted, f"{root}/{FIRST}/limits.yaml")
    assert not reacts(Change.deleted, f"{root}/limits.yaml")  # a removed key's symlink
    assert not reacts(Change.added, f"{root}/limits.yaml")  # a symlink through ..data
    os.unlink(configmap / "roll.yaml")
    (configmap / "roll.yaml").write_text("kind: [unclosed\n")  # a plain file: it counts
    assert reacts(Change.modified, f"{root}/roll.yaml")


def test_serve_once_when_policies_are_a_configmap_mount_then_starts_and_exits_0(
    configmap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bastion serve --once --policies DIR` runs one cycle on a ConfigMap mount."""
    monkeypatch.chdir(tmp_path)
    argv = ["serve", "--policies", str(configmap), "--once", "--no-audit"]
    assert main([*argv, "--log-format", "json"]) == 0


def test_candidate_when_its_configmap_is_swapped_then_one_reload_of_the_new_set(
    tmp_path: Path,
) -> None:
    """`--candidate DIR` on a ConfigMap mount is watched the same way: one swap, one
    reload through the guard, nothing rejected."""
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    serving = PolicyReloader(mount(tmp_path / "serving", shipped()), now=feed.now)
    serving.load_initial()
    directory = mount(tmp_path / "candidate", shipped())
    candidate = Candidate.open(directory, Service(feed, serving, ServiceMetrics()), feed.now)
    first = candidate.version
    candidate.start()
    try:
        swap(directory, edited(shipped()), pause=lambda: time.sleep(0.01))
        wait_for(lambda: candidate.version != first, "the candidate's reload")
    finally:
        candidate.stop()
    stats = candidate.reloader.stats
    assert (stats.succeeded, stats.failed) == (1, 0)
