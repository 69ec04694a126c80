"""The policy reloader: atomic swaps, rejected reloads, the directory watcher."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from watchfiles import Change

from bastion.engine.errors import RuleEngineError
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import PolicySetError
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from bastion.service import reloader as reloader_module
from bastion.service.policy_watch import Debouncer, PolicyFileFilter
from bastion.service.reloader import (
    LoadedPolicies,
    PolicyReloaded,
    PolicyReloader,
    ReloadEvent,
    ReloadRejected,
)
from tests.conftest import POLICIES, ROOT

ESCALATION = "EscalationPolicy/default-escalation"
START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
DEADLINE_S = 5.0


class Clock:
    """A test clock: each call is one second after the previous one."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    return directory


@pytest.fixture
def events() -> list[ReloadEvent]:
    return []


@pytest.fixture
def make_reloader(
    policies: Path, events: list[ReloadEvent]
) -> Iterator[Callable[..., PolicyReloader]]:
    made: list[PolicyReloader] = []

    def make(debounce_s: float = 0.05) -> PolicyReloader:
        reloader = PolicyReloader(
            policies, now=Clock(), on_event=events.append, debounce_s=debounce_s
        )
        reloader.load_initial()
        made.append(reloader)
        return reloader

    yield make
    for reloader in made:
        reloader.stop()


def edit_escalation(policies: Path, interval_s: int) -> None:
    """Rewrite the enhanced level's interval in place (same inode)."""
    path = policies / "escalation.yaml"
    text = (POLICIES / "escalation.yaml").read_text()
    path.write_text(text.replace("interval_s: 60 ", f"interval_s: {interval_s} "))


def rename_replace_escalation(policies: Path, interval_s: int) -> None:
    """What editors do: write a temporary file beside it, then rename it over it."""
    text = (POLICIES / "escalation.yaml").read_text()
    temporary = policies / ".escalation.yaml.tmp"
    temporary.write_text(text.replace("interval_s: 60 ", f"interval_s: {interval_s} "))
    os.replace(temporary, policies / "escalation.yaml")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_S} s waiting for {what}")
        time.sleep(0.01)


def escalation_version(reloader: PolicyReloader) -> str:
    return reloader.current.versions()[ESCALATION]


# --- loading and reloading on demand -----------------------------------------------------


def test_load_initial_when_policies_valid_then_current_names_every_policy(
    make_reloader: Callable[..., PolicyReloader],
) -> None:
    """The first load is current, compiled from the same set, stamped with injected time."""
    reloader = make_reloader()
    loaded = reloader.current
    assert loaded.compiled.policy_set is loaded.policy_set
    assert loaded.version == loaded.policy_set.version
    assert loaded.loaded_at == START + timedelta(seconds=1)
    assert set(loaded.versions()) == {
        "BreakerPolicy/com-breakers",
        "BreakerPolicy/default-breakers",
        ESCALATION,
        "LimitPolicy/default-limits",
        "ProtectionPolicy/default-protection",
        "RollPolicy/default-roll",
        "PolicySet/bastion",
    }
    assert reloader.stats.succeeded == reloader.stats.failed == 0


def test_load_initial_when_a_policy_has_lint_errors_then_raises_policy_set_error(
    policies: Path,
) -> None:
    """A bad set at start is refused: there is nothing good to keep serving."""
    (policies / "escalation.yaml").write_text("kind: [unclosed\n")
    reloader = PolicyReloader(policies, now=Clock())
    with pytest.raises(PolicySetError, match="BST001"):
        reloader.load_initial()
    with pytest.raises(RuntimeError, match="load_initial"):
        _ = reloader.current


def test_reload_when_policy_edited_in_place_then_new_version_current(
    policies: Path, make_reloader: Callable[..., PolicyReloader], events: list[ReloadEvent]
) -> None:
    """An edit becomes current; the event names the one policy that changed."""
    reloader = make_reloader()
    before = reloader.current
    edit_escalation(policies, 45)
    event = reloader.reload()
    assert isinstance(event, PolicyReloaded)
    assert events == [event]
    assert event.previous_version == before.version
    assert event.version == reloader.current.version != before.version
    assert event.changed == (ESCALATION,)
    assert event.trigger == "manual"
    assert event.at == reloader.current.loaded_at
    assert reloader.stats.succeeded == 1
    assert reloader.stats.last_success_at == event.at


def test_reload_when_only_comments_changed_then_reloaded_with_nothing_changed_and_same_set(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """Same content version: no recompile, no swap; reported with changed=()."""
    reloader = make_reloader()
    before = reloader.current
    path = policies / "escalation.yaml"
    path.write_text(path.read_text() + "# a comment only\n")
    event = reloader.reload()
    assert isinstance(event, PolicyReloaded)
    assert (event.changed, event.version) == ((), before.version)
    assert reloader.current is before


def test_reload_when_yaml_syntax_error_then_rejected_and_old_version_kept(
    policies: Path, make_reloader: Callable[..., PolicyReloader], events: list[ReloadEvent]
) -> None:
    """Broken YAML keeps the good set and reports file:line:col: BST001."""
    reloader = make_reloader()
    before = reloader.current
    (policies / "escalation.yaml").write_text("apiVersion: bastion/v1\nkind: [unclosed\n")
    event = reloader.reload("sighup")
    assert isinstance(event, ReloadRejected)
    assert events == [event]
    assert reloader.current is before
    assert event.kept_version == before.version
    assert event.trigger == "sighup"
    assert any(
        line.startswith(f"{policies / 'escalation.yaml'}:") and ": BST001 " in line
        for line in event.errors
    ), event.errors
    stats = reloader.stats
    assert (stats.failed, stats.succeeded, stats.last_attempt_failed) == (1, 0, True)
    assert (stats.last_failure_at, stats.last_errors) == (event.at, event.errors)


def test_reload_when_lint_error_fixed_then_rejected_first_and_reloaded_after(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """A lint error (thresholds out of order) is rejected; the fix is then loaded."""
    reloader = make_reloader()
    before = reloader.current
    path = policies / "escalation.yaml"
    path.write_text(path.read_text().replace("breach_atr: 2.0", "breach_atr: 0.5"))
    rejected = reloader.reload()
    assert isinstance(rejected, ReloadRejected)
    assert any(" BST101 " in line for line in rejected.errors), rejected.errors
    assert reloader.current is before

    edit_escalation(policies, 45)
    reloaded = reloader.reload()
    assert isinstance(reloaded, PolicyReloaded)
    assert reloaded.previous_version == before.version
    stats = reloader.stats
    assert (stats.failed, stats.succeeded, stats.last_attempt_failed) == (1, 1, False)
    assert stats.last_errors == rejected.errors  # kept for the record, with its time


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuleEngineError("cannot compile"), "RuleEngineError: cannot compile"),
        (RuntimeError("a bug"), "RuntimeError: a bug"),
    ],
)
def test_reload_when_compile_raises_then_rejected_and_old_version_kept(
    policies: Path,
    make_reloader: Callable[..., PolicyReloader],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    shown: str,
) -> None:
    """A compile failure, even an unexpected exception, is a rejection, never a raise."""
    reloader = make_reloader()
    before = reloader.current

    def fail(*_: object) -> None:
        raise error

    monkeypatch.setattr(reloader_module, "compile_policy_set", fail)
    edit_escalation(policies, 45)
    event = reloader.reload()
    assert isinstance(event, ReloadRejected)
    assert event.errors == (f"{policies}: {shown}",)
    assert reloader.current is before


def test_reload_when_every_policy_file_removed_then_rejected(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """An empty directory never replaces the set: running without policies is refused."""
    reloader = make_reloader()
    before = reloader.current
    for path in policies.glob("*.yaml"):
        path.unlink()
    event = reloader.reload()
    assert isinstance(event, ReloadRejected)
    assert event.reason == "lint"  # without bastion.yaml every kind is required (BST606)
    assert len(event.errors) == 5 and all(" BST606 " in line for line in event.errors)
    assert reloader.current is before


def test_reload_when_only_a_declaration_left_then_rejected_as_no_policies(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """A declaration requiring nothing is still not a set: running without policies is refused."""
    reloader = make_reloader()
    before = reloader.current
    for path in policies.glob("*.yaml"):
        path.unlink()
    (policies / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\nspec: {required_kinds: []}\n"
    )
    event = reloader.reload()
    assert isinstance(event, ReloadRejected)
    assert event.reason == "no_policies"
    assert event.errors == (f"{policies}: BST007 {_no_policy_message()}",)
    assert reloader.current is before


def _no_policy_message() -> str:
    return "no policy file (*.yaml, *.yml) here; refusing to run without policies"


def test_reload_when_event_handler_raises_then_event_still_returned(
    policies: Path,
) -> None:
    """A failing on_event never turns a good reload into an error."""

    def broken_handler(_: ReloadEvent) -> None:
        raise ValueError("handler bug")

    reloader = PolicyReloader(policies, now=Clock(), on_event=broken_handler)
    reloader.load_initial()
    edit_escalation(policies, 45)
    assert isinstance(reloader.reload(), PolicyReloaded)


def test_reload_when_called_from_two_threads_then_every_reload_counted(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """Concurrent reload() calls run one at a time and each is reported once."""
    reloader = make_reloader()
    failures: list[BaseException] = []

    def reload_many() -> None:
        try:
            for _ in range(10):
                reloader.reload()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=reload_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for interval_s in range(40, 50):
        edit_escalation(policies, interval_s)
    for thread in threads:
        thread.join(DEADLINE_S)
    assert failures == []
    assert reloader.stats.succeeded + reloader.stats.failed == 20


# --- consistency under concurrent evaluation ---------------------------------------------


def test_current_when_reloaded_50_times_during_evaluations_then_every_evaluation_consistent(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """Evaluations on another thread always see one whole set, and never fail."""
    reloader = make_reloader()
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    problems: list[str] = []
    seen_versions: set[str] = set()
    done = threading.Event()
    evaluations = 0

    def evaluate_continuously() -> None:
        nonlocal evaluations
        while not done.is_set():
            loaded = reloader.current
            try:
                decisions, _ = evaluate(loaded.compiled, snapshot, State(), snapshot.as_of)
            except Exception as error:  # evaluate never raises; record it if it does
                problems.append(f"raised {error!r}")
                continue
            evaluations += 1
            seen_versions.add(loaded.version)
            problems.extend(_inconsistencies(loaded, decisions))
            time.sleep(0.0005)  # hand the GIL over: the reloads are timed, not starved

    evaluator = threading.Thread(target=evaluate_continuously)
    evaluator.start()
    try:
        for round_ in range(50):
            edit_escalation(policies, 45 if round_ % 2 else 50)
            assert isinstance(reloader.reload(), PolicyReloaded)
            time.sleep(0.002)  # let the evaluator run on each version
    finally:
        done.set()
        evaluator.join(DEADLINE_S)
    assert problems == []
    assert evaluations > 0
    assert len(seen_versions) >= 2


def _inconsistencies(loaded: LoadedPolicies, decisions: tuple[object, ...]) -> list[str]:
    found: list[str] = []
    if loaded.compiled.version != loaded.policy_set.version:
        found.append(f"compiled {loaded.compiled.version} != set {loaded.policy_set.version}")
    known = {*loaded.versions().values(), loaded.version}
    for decision in decisions:
        version = getattr(decision, "policy_version", "")
        if getattr(decision, "outcome", "") == "error" or version not in known:
            found.append(f"decision {decision!r} is not from set {loaded.version}")
    return found


# --- the directory watcher ---------------------------------------------------------------


def test_watch_when_policy_edited_in_place_then_new_version_current(
    policies: Path, make_reloader: Callable[..., PolicyReloader], events: list[ReloadEvent]
) -> None:
    """An in-place write is seen by the watcher and swapped in."""
    reloader = make_reloader()
    before = escalation_version(reloader)
    reloader.start_watching()
    edit_escalation(policies, 45)
    wait_for(lambda: escalation_version(reloader) != before, "the edited version")
    wait_for(lambda: bool(events), "the event")  # emitted just after the swap
    assert isinstance(events[-1], PolicyReloaded)
    assert events[-1].trigger == "watch"


def test_watch_when_rename_replaced_repeatedly_then_every_version_current(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """Each editor-style save (temp file + rename) is seen, not only the first."""
    reloader = make_reloader()
    reloader.start_watching()
    versions = {escalation_version(reloader)}
    for interval_s in (45, 50, 55):
        rename_replace_escalation(policies, interval_s)
        wait_for(lambda: escalation_version(reloader) not in versions, f"save {interval_s}")
        versions.add(escalation_version(reloader))
    assert len(versions) == 4


def test_watch_when_broken_then_fixed_then_rejected_then_reloaded(
    policies: Path, make_reloader: Callable[..., PolicyReloader], events: list[ReloadEvent]
) -> None:
    """A broken save is rejected while the old set serves; saving the fix loads it."""
    reloader = make_reloader()
    before = reloader.current
    reloader.start_watching()
    (policies / "escalation.yaml").write_text("kind: [unclosed\n")
    wait_for(lambda: reloader.stats.failed >= 1, "the rejected reload")
    assert reloader.current is before
    rejected = events[-1]
    assert isinstance(rejected, ReloadRejected)

    rename_replace_escalation(policies, 45)
    wait_for(lambda: isinstance(events[-1], PolicyReloaded), "the fixed version")
    fixed = events[-1]
    assert isinstance(fixed, PolicyReloaded)
    assert fixed.changed == (ESCALATION,)
    assert reloader.current is not before


def test_start_watching_when_file_changed_before_start_then_caught_up(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """A save between load_initial() and start_watching() is not lost."""
    reloader = make_reloader()
    before = escalation_version(reloader)
    rename_replace_escalation(policies, 45)
    reloader.start_watching()
    wait_for(lambda: escalation_version(reloader) != before, "the catch-up reload")


def test_watch_when_burst_of_writes_then_one_reload(
    policies: Path, make_reloader: Callable[..., PolicyReloader], events: list[ReloadEvent]
) -> None:
    """Ten saves in quick succession are collapsed into one reload of the last one."""
    reloader = make_reloader(debounce_s=0.5)
    reloader.start_watching()
    for interval_s in range(41, 51):
        edit_escalation(policies, interval_s)
        time.sleep(0.01)
    wait_for(lambda: len(events) >= 1, "the debounced reload")
    policy = reloader.current.policy_set.get("EscalationPolicy", "default-escalation")
    assert policy is not None
    assert policy.spec.levels[1].interval_s == 50
    reloader.stop()
    assert [type(event) for event in events] == [PolicyReloaded]


def test_stop_when_watching_then_thread_ends_promptly(
    make_reloader: Callable[..., PolicyReloader],
) -> None:
    """stop() returns within a fraction of a second and leaves no watcher thread."""
    reloader = make_reloader()
    reloader.start_watching()
    was_watching = reloader.watching
    started = time.monotonic()
    reloader.stop()
    assert time.monotonic() - started < 0.5
    assert (was_watching, reloader.watching) == (True, False)
    assert "bastion-policy-watch" not in {thread.name for thread in threading.enumerate()}


@pytest.mark.parametrize(
    ("name", "reacts"),
    [
        ("escalation.yaml", True),
        ("roll.yml", True),
        ("nested/dir/limits.yaml", True),
        (".escalation.yaml.swp", False),
        ("escalation.yaml~", False),
        (".#escalation.yaml", False),
        ("#escalation.yaml#", False),
        (".escalation.yaml.tmp", False),
        ("4913", False),
        ("escalation.yaml___jb_tmp___", False),
        (".git/index", False),
    ],
)
def test_filter_when_file_named_then_only_policy_files_react(name: str, reacts: bool) -> None:
    """Editor swap, backup and lock files never trigger a reload; policy files do."""
    assert PolicyFileFilter()(Change.modified, f"/srv/policies/{name}") is reacts


def test_debouncer_when_changes_keep_coming_then_fires_once_quiet_or_at_max_delay() -> None:
    """Quiet for quiet_s fires once; an endless stream still fires at max_delay_s."""
    debouncer = Debouncer(quiet_s=0.2, max_delay_s=1.0)
    assert not debouncer.observe(False, 0.0)
    assert [debouncer.observe(True, t) for t in (0.0, 0.1, 0.25)] == [False, False, False]
    assert not debouncer.observe(False, 0.44)
    assert debouncer.observe(False, 0.46)
    assert not debouncer.pending
    assert not debouncer.observe(False, 0.9)
    fired = [t for t in (1.0, 1.15, 1.3, 1.45, 1.6, 1.75, 1.9, 2.05) if debouncer.observe(True, t)]
    assert fired == [2.05]


def test_watch_when_directory_replaced_by_rename_then_new_directory_watched(
    policies: Path, make_reloader: Callable[..., PolicyReloader]
) -> None:
    """A deployment that renames a new directory into place is seen, then later edits."""
    reloader = make_reloader()
    reloader.start_watching()
    before = escalation_version(reloader)
    staged = policies.with_name("policies.new")
    shutil.copytree(policies, staged)
    edit_escalation(staged, 45)
    policies.rename(policies.with_name("policies.old"))
    staged.rename(policies)
    wait_for(lambda: escalation_version(reloader) != before, "the replaced directory")
    replaced = escalation_version(reloader)
    edit_escalation(policies, 50)
    wait_for(lambda: escalation_version(reloader) not in {before, replaced}, "a later edit")
