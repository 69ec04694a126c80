"""A debounced watch on the policy *directory*, on one background thread.

Why the directory (DESIGN.md, measured): an editor saves by writing a temporary file
and renaming it over the original. A watch on the file follows the old inode and
misses every save after the first; a watch on the directory sees each rename.

Why our own debounce: watchfiles groups changes until the *set* of (change, path)
pairs stops growing, so a burst of writes to one file comes back as several batches.
Here a reload fires once no policy file has changed for `debounce_s` (a continuous
stream of writes still reloads every `max_delay_s`). `Debouncer` is that rule alone,
with the time passed in, so it is tested without a file system.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from watchfiles import Change, DefaultFilter, watch

from bastion.engine.policy.loader import POLICY_SUFFIXES, is_test_file
from bastion.engine.policy.sources import DATA_LINK, is_hidden

STEP_MS = 50  # how often watchfiles looks for changes and for the stop event
READY_TIMEOUT_S = 2.0  # how long start() waits for the watch to be in place
RETRY_S = 1.0  # after a watch ends (directory removed or replaced), watch again this often
MAX_DELAY_FACTOR = 10  # continuous writes still reload every 10 × debounce_s

log = structlog.get_logger(__name__)


class PolicyFileFilter(DefaultFilter):
    """Policy files only: *.yaml / *.yml, never an editor's swap, backup or lock file.

    DefaultFilter already drops `.swp`, `~`, `.#*`, JetBrains temporaries and VCS
    folders; the suffix test drops every other temporary (`x.yaml.tmp`, vim's `4913`).
    A rename-replace still counts: its last step names the policy file itself.
    A policy test (kind: PolicyTest, `bastion test`) is not a policy: writing one never
    reloads (a deleted file cannot be read, so its deletion still does, harmlessly).

    Hidden entries below `root` (dot-files, dot-folders) never count, with one
    exception: a Kubernetes ConfigMap (engine.policy.sources) changes when the kubelet
    renames `..data_tmp` over `..data`, and that rename alone is its change. What the
    kubelet does around it (the new `..2026_…` folder, top-level symlinks added or
    removed, the old folder removed) is part of the same swap and never counts, so a
    swap reloads once, after `..data` was replaced.
    """

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        # The watched directory as given, absolute and resolved: how events may name it.
        names = () if root is None else (str(root), os.path.abspath(root), os.path.realpath(root))
        self._roots = tuple(dict.fromkeys(name.rstrip(os.sep) + os.sep for name in names))

    def __call__(self, change: Change, path: str) -> bool:
        name = Path(path).name
        if name == DATA_LINK:
            return change != Change.deleted  # the swap's rename: `..data` replaced
        return (
            super().__call__(change, path)
            and Path(name).suffix in POLICY_SUFFIXES
            and not name.startswith((".#", "#"))
            and not self._hidden(path)
            and not _configmap_key(change, path)
            and not (change != Change.deleted and is_test_file(path))
        )

    def _hidden(self, path: str) -> bool:
        """A hidden entry, or an entry inside a hidden folder below the root (without a
        known root: inside a kubelet `..` folder)."""
        for root in self._roots:
            if path.startswith(root):
                return any(is_hidden(part) for part in Path(path[len(root) :]).parts)
        *_, parent, name = ("", *Path(path).parts)
        return is_hidden(name) or (parent.startswith("..") and parent != "..")


def _configmap_key(change: Change, path: str) -> bool:
    """A top-level ConfigMap symlink the kubelet added or removed with a `..data` swap."""
    if not os.path.islink(os.path.join(os.path.dirname(path), DATA_LINK)):
        return False
    return change == Change.deleted or os.path.islink(path)


class Debouncer:
    """Fires once changes have stopped for `quiet_s`, or have gone on for `max_delay_s`."""

    def __init__(self, quiet_s: float, max_delay_s: float) -> None:
        self.quiet_s = quiet_s
        self.max_delay_s = max_delay_s
        self._first: float | None = None
        self._last = 0.0

    @property
    def pending(self) -> bool:
        return self._first is not None

    def observe(self, changed: bool, now: float) -> bool:
        """Record a tick (`changed` when files changed, at monotonic time `now`);
        True when the caller should reload now."""
        if changed:
            self._last = now
            if self._first is None:
                self._first = now
        if self._first is None:
            return False
        if now - self._last >= self.quiet_s or now - self._first >= self.max_delay_s:
            self._first = None
            return True
        return False


class DirectoryWatcher:
    """Calls `on_change` (debounced) on its own thread whenever a policy file changes.

    `on_ready` runs on that thread each time the watch is (re-)established: the
    caller uses it to catch up with anything that changed while nothing watched. Neither
    callback may raise (the reloader turns every failure into an event); if one does,
    it is logged and the watch goes on.
    """

    def __init__(
        self,
        directory: Path,
        *,
        on_change: Callable[[], object],
        on_ready: Callable[[], object] = lambda: None,
        debounce_s: float = 0.2,
    ) -> None:
        self.directory = directory
        self.debounce_s = debounce_s
        self._on_change = on_change
        self._on_ready = on_ready
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bastion-policy-watch", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; return once the watch is in place (or READY_TIMEOUT_S)."""
        self._thread.start()
        self._ready.wait(READY_TIMEOUT_S)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait for it: watchfiles checks every STEP_MS."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self._watch()  # returns when stopped or when the directory was replaced
                failing = False
            except Exception:  # the directory is gone, inotify limits, ...: keep trying
                if not failing:  # once per outage, not once per retry
                    log.exception("policy_watch_failed", directory=str(self.directory))
                failing = True
                self._ready.set()  # never keep start() waiting for a watch that failed
                self._stop.wait(RETRY_S)

    def _watch(self) -> None:
        """Watch until stopped, or until the directory is removed or replaced (a
        deployment that renames a new directory into place): the caller re-watches."""
        identity = _identity(self.directory)
        debouncer = Debouncer(self.debounce_s, max(1.0, MAX_DELAY_FACTOR * self.debounce_s))
        changes_seen = watch(
            self.directory,
            watch_filter=PolicyFileFilter(self.directory),
            step=STEP_MS,
            debounce=max(STEP_MS, int(self.debounce_s * 1000)),
            rust_timeout=STEP_MS,  # an empty batch every step: the debounce clock ticks
            yield_on_timeout=True,
            stop_event=self._stop,
            raise_interrupt=False,
        )
        established = False
        for changes in changes_seen:
            if not established:  # also after a re-watch: catch up with what was missed
                established = True
                self._call(self._on_ready, "policy_watch_ready_failed")
                self._ready.set()  # after the catch-up: start() returns on a settled set
            # A batch comes back only after one quiet step: the last write is that old.
            now = time.monotonic() - (STEP_MS / 1000 if changes else 0.0)
            if debouncer.observe(bool(changes), now):
                self._call(self._on_change, "policy_watch_callback_failed")
            if not changes and _identity(self.directory) != identity:
                # inotify follows the old inode, which no longer gets any event.
                log.warning("policy_directory_replaced", directory=str(self.directory))
                return

    def _call(self, callback: Callable[[], object], event: str) -> None:
        try:
            callback()
        except Exception:  # the watcher thread must outlive any one failed callback
            log.exception(event, directory=str(self.directory))


def _identity(directory: Path) -> tuple[int, int] | None:
    """Which directory the path names now (device, inode); None when there is none."""
    try:
        stat = directory.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)
