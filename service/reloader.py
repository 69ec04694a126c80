"""The one mutable holder of the live policy set: load, lint, compile aside, then swap.

A reload reads the whole directory, lints it exactly as `bastion lint` does and
compiles it into new rulesets while evaluations go on with the current set; only
then is one reference replaced. An evaluation reads `current` once and keeps that
object: it sees the old set or the new one, never a mix. Compiled rulesets are freed
by garbage collection once the last evaluation holding them drops them: never
`close()` a set here.

A reload that fails for any reason (lint errors, an unreadable file, a rules-engine
compile error, an empty directory, a bug) keeps the last good set and is reported
as a `ReloadRejected` event: the service never runs on a set that did not lint clean,
and never runs on none.

A reload whose files have the same content as the current set (same
`PolicySet.version`: comments and formatting do not count) is reported as
`PolicyReloaded` with `changed=()` and skips the compile and the swap: `current`
stays the very same object, with its original `loaded_at`.

Triggers name what asked for a reload, for logs and metrics: "watch" (the
directory watcher), and by convention "manual", "sighup", "http".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog

from bastion.engine.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.errors import BastionError, PolicyError
from bastion.engine.lint.runner import PolicySetError, load_policy_set
from bastion.engine.policy.loader import discover
from bastion.engine.policy.model import PolicySet
from bastion.service.policy_watch import DirectoryWatcher

log = structlog.get_logger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...] | None


@dataclass(frozen=True, slots=True)
class LoadedPolicies:
    """One policy set and its compiled rulesets, loaded together at `loaded_at`."""

    policy_set: PolicySet
    compiled: CompiledPolicySet
    loaded_at: datetime

    @property
    def version(self) -> str:
        return self.policy_set.version

    def versions(self) -> dict[str, str]:
        """Each policy's version (sha256 of its resolved content) by "Kind/name"."""
        return {f"{p.kind}/{p.name}": p.version for p in self.policy_set.policies}


@dataclass(frozen=True, slots=True)
class PolicyReloaded:
    """A reload succeeded; `changed` lists the "Kind/name" added, removed or edited."""

    version: str
    previous_version: str
    changed: tuple[str, ...]
    took_s: float
    at: datetime
    trigger: str


@dataclass(frozen=True, slots=True)
class ReloadRejected:
    """A reload failed; `kept_version` is still serving. `errors` are
    "file:line:col: CODE message" lines (or "DIR: Error: message" without a place)."""

    kept_version: str
    errors: tuple[str, ...]
    took_s: float
    at: datetime
    trigger: str


ReloadEvent = PolicyReloaded | ReloadRejected


@dataclass(frozen=True, slots=True)
class ReloadStats:
    """Counts reloads (not the initial load). `last_errors` are the last rejection's;
    `last_attempt_failed` is True while the most recent reload was rejected."""

    succeeded: int = 0
    failed: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_errors: tuple[str, ...] = ()
    last_attempt_failed: bool = False


class PolicyReloader:
    """Owns the live policy set of one directory; reloads it on demand or on change.

    `on_event` runs on the reloading thread, under the reload lock, after the swap:
    events arrive in order and `current` already shows the outcome. Keep it short
    and never call `reload()` from it. An exception it raises is logged, not raised.
    """

    def __init__(
        self,
        directory: Path,
        *,
        now: Callable[[], datetime],
        on_event: Callable[[PolicyReloaded | ReloadRejected], None] | None = None,
        debounce_s: float = 0.2,
    ) -> None:
        self.directory = Path(directory)
        self.debounce_s = debounce_s
        self._now = now
        self._on_event = on_event
        self._lock = threading.Lock()  # one load at a time; guards the fields below
        self._current: LoadedPolicies | None = None
        self._stats = ReloadStats()
        self._fingerprint: Fingerprint = None  # the files as the last load attempt saw them
        self._watcher: DirectoryWatcher | None = None

    def load_initial(self) -> LoadedPolicies:
        """Load the set to start with. Raises PolicySetError (lint errors), PolicyError
        (no policy file at all) or UsageError (no such directory): nothing to serve."""
        with self._lock:
            self._fingerprint = self._file_fingerprint()
            self._current = self._load(None)
            return self._current

    @property
    def current(self) -> LoadedPolicies:
        """The live set: one reference read, so a caller holds one consistent set."""
        loaded = self._current
        if loaded is None:
            raise RuntimeError("PolicyReloader.load_initial() must be called first")
        return loaded

    @property
    def stats(self) -> ReloadStats:
        return self._stats

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.alive

    def reload(self, trigger: str = "manual") -> PolicyReloaded | ReloadRejected:
        """Load, lint and compile aside, then swap; never raises for a bad set.

        Thread-safe: concurrent calls run one after the other, each reading the files
        as they are when it starts.
        """
        with self._lock:
            previous = self.current
            started = time.perf_counter()
            self._fingerprint = self._file_fingerprint()
            event: ReloadEvent
            try:
                loaded = self._load(previous)
            except Exception as error:  # any failure keeps the good set; the watcher lives on
                event = ReloadRejected(
                    kept_version=previous.version,
                    errors=self._describe(error),
                    took_s=time.perf_counter() - started,
                    at=self._now(),
                    trigger=trigger,
                )
                self._stats = replace(
                    self._stats,
                    failed=self._stats.failed + 1,
                    last_failure_at=event.at,
                    last_errors=event.errors,
                    last_attempt_failed=True,
                )
            else:
                self._current = loaded  # the swap: one reference assignment
                event = PolicyReloaded(
                    version=loaded.version,
                    previous_version=previous.version,
                    changed=_changed(previous.versions(), loaded.versions()),
                    took_s=time.perf_counter() - started,
                    at=self._now() if loaded is previous else loaded.loaded_at,
                    trigger=trigger,
                )
                self._stats = replace(
                    self._stats,
                    succeeded=self._stats.succeeded + 1,
                    last_success_at=event.at,
                    last_attempt_failed=False,
                )
            self._emit(event)
            return event

    def start_watching(self) -> None:
        """Reload on every change under the directory (debounced), on a daemon thread.

        Returns once the watch is in place; a change made between `load_initial()` and
        then is caught up at once. Editor temporaries (.swp, ~, .#*) are ignored; a
        rename-replace is seen every time. Idempotent while watching.
        """
        if self._current is None:  # fail here, not on the watcher thread
            raise RuntimeError("PolicyReloader.load_initial() must be called first")
        if self.watching:
            return
        self._watcher = DirectoryWatcher(
            self.directory,
            on_change=lambda: self.reload("watch"),
            on_ready=self._catch_up,
            debounce_s=self.debounce_s,
        )
        self._watcher.start()

    def stop(self) -> None:
        """Stop the watcher thread (within about 50 ms). Idempotent."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _load(self, previous: LoadedPolicies | None) -> LoadedPolicies:
        policy_set = load_policy_set([self.directory])
        if not policy_set.policies:
            raise PolicyError(
                "no policy file (*.yaml, *.yml) here; refusing to run without policies",
                file=str(self.directory),
            )
        if previous is not None and policy_set.version == previous.version:
            return previous  # same content: the compiled set already in use is it
        return LoadedPolicies(policy_set, compile_policy_set(policy_set), self._now())

    def _describe(self, error: Exception) -> tuple[str, ...]:
        if isinstance(error, PolicySetError):
            return tuple(
                f"{f.file}:{f.line}:{f.column}: {f.code} {f.message}"
                for f in error.result.findings
                if f.severity == "error"
            )
        if isinstance(error, PolicyError) and error.file and error.line:
            return (f"{error.file}:{error.line}:{error.column}: {error.code} {error.message}",)
        if isinstance(error, PolicyError):
            return (f"{error.file or self.directory}: {error.code} {error.message}",)
        if not isinstance(error, BastionError):  # a bug, not a bad file: keep the traceback
            log.exception("policy_reload_crashed", directory=str(self.directory))
        return (f"{self.directory}: {type(error).__name__}: {error}",)

    def _emit(self, event: ReloadEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a failing listener must not undo a reload that succeeded
            log.exception("reload_event_handler_failed", reload_event=type(event).__name__)

    def _catch_up(self) -> None:
        """On the watcher thread once the watch is in place: reload if any file changed
        since the last load attempt (nothing was watching then)."""
        if self._file_fingerprint() != self._fingerprint:
            self.reload("watch")

    def _file_fingerprint(self) -> Fingerprint:
        """Which policy files exist and their inode, mtime and size (None: no directory)."""
        try:
            files = discover([self.directory])
            return tuple(
                (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
                for path in files
                for stat in (path.stat(),)
            )
        except (BastionError, OSError):
            return None


def _changed(before: dict[str, str], after: dict[str, str]) -> tuple[str, ...]:
    return tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))
