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

A reload that would remove protection the serving set has (a breaker, limit,
protection, core asset or escalation level; a whole policy or kind; enforce ->
shadow: see engine/policy/guard.py) is refused as `ReloadRejected(reason=
"removes_protection")` listing each `Removal`, unless every removal's key is in
`accept_removal`. Whether the caller may accept (a risk officer) is the caller's
check; the directory watcher and SIGHUP never accept anything.

Triggers name what asked for a reload, for logs and metrics: "watch" (the
directory watcher), and by convention "manual", "sighup", "http".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from bastion.engine.errors import BastionError, PolicyError
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.findings import Finding
from bastion.engine.lint.runner import PolicySetError, load_policy_set_with_warnings
from bastion.engine.policy.guard import Removal, removed_protection, unaccepted
from bastion.engine.policy.loader import is_test_file
from bastion.engine.policy.model import PolicySet
from bastion.engine.policy.sources import list_sources
from bastion.service.policy_watch import DirectoryWatcher

log = structlog.get_logger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...] | None


class NoPoliciesError(PolicyError):
    """The directory holds no policy at all (a declaration alone is not a set)."""


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
        """Each policy's version (sha256 of its resolved content) by "Kind/name", the
        PolicySet declaration (bastion.yaml) included."""
        return {f"{p.kind}/{p.name}": p.version for p in self.policy_set.members}


@dataclass(frozen=True, slots=True)
class PolicyReloaded:
    """A reload succeeded; `changed` lists the "Kind/name" added, removed or edited.
    `accepted_removals` is the protection an officer (`principal`) accepted to lose.
    `warnings` are the new set's lint warnings (a unit slip, shadow mode): it serves,
    and they are logged and audited."""

    version: str
    previous_version: str
    changed: tuple[str, ...]
    took_s: float
    at: datetime
    trigger: str
    principal: str | None = None
    accepted_removals: tuple[Removal, ...] = ()
    warnings: tuple[Finding, ...] = ()


# Why a reload was rejected: the label of bastion_reload_refusals_total.
REJECT_REASONS = ("lint", "no_policies", "removes_protection", "error")


@dataclass(frozen=True, slots=True)
class ReloadRejected:
    """A reload failed; `kept_version` is still serving. `errors` are
    "file:line:col: CODE message" lines (or "DIR: Error: message" without a place).

    `reason` is one of REJECT_REASONS. For "removes_protection" (the guard refused a
    set that lints clean) `removals` lists what it would remove, `attempted_version`
    and `changed` describe the refused set; they are empty for the other reasons.
    """

    kept_version: str
    errors: tuple[str, ...]
    took_s: float
    at: datetime
    trigger: str
    reason: str = "error"
    removals: tuple[Removal, ...] = ()
    principal: str | None = None
    attempted_version: str | None = None
    changed: tuple[str, ...] = ()

    @property
    def refused_by_guard(self) -> bool:
        return self.reason == "removes_protection"


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
    refused: int = 0  # of `failed`, refused by the guard (they would remove protection)
    last_removals: tuple[Removal, ...] = ()


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
        baseline: Callable[[], PolicySet] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.debounce_s = debounce_s
        self._now = now
        self._on_event = on_event
        # The set the guard compares a new one with: this reloader's own by default; a
        # shadow candidate's reloader compares with the serving set (service.candidate).
        self._baseline = baseline
        # Called with each set swapped in and its trigger (service.versions keeps them).
        self.on_swap: Callable[[LoadedPolicies, str], None] | None = None
        self._lock = threading.Lock()  # one load at a time; guards the fields below
        self._current: LoadedPolicies | None = None
        self._warnings: tuple[Finding, ...] = ()  # the serving set's lint warnings
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
    def warnings(self) -> tuple[Finding, ...]:
        """The lint warnings of the set serving now (a unit slip, shadow mode)."""
        return self._warnings

    @property
    def stats(self) -> ReloadStats:
        return self._stats

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.alive

    def reload(
        self,
        trigger: str = "manual",
        *,
        principal: str | None = None,
        accept_removal: Collection[str] = (),
    ) -> PolicyReloaded | ReloadRejected:
        """Load, lint, guard and compile aside, then swap; never raises for a bad set.

        `accept_removal` holds the exact `Removal.key`s the caller accepts to lose (no
        wildcard); a removal not listed refuses the whole reload. `principal` names who
        asked, for the event (the caller checks that it may accept). Thread-safe:
        concurrent calls run one after the other, each reading the files as they are
        when it starts.
        """
        with self._lock:
            previous = self.current
            started = time.perf_counter()
            self._fingerprint = self._file_fingerprint()
            event: ReloadEvent
            try:
                policy_set, warnings = self._read()
                baseline = previous.policy_set if self._baseline is None else self._baseline()
                removals = removed_protection(baseline, policy_set)
                refused = unaccepted(removals, frozenset(accept_removal))
                if refused:
                    event = self._refused(previous, policy_set, refused, started, trigger)
                    event = replace(event, principal=principal)
                else:
                    event = self._swap(previous, policy_set, started, trigger)
                    self._warnings = warnings
                    event = replace(
                        event, principal=principal, accepted_removals=removals, warnings=warnings
                    )
            except Exception as error:  # any failure keeps the good set; the watcher lives on
                event = self._rejected(previous, started, trigger, principal, error)
            self._stats = _counted(self._stats, event)
            self._emit(event)
            return event

    def _rejected(
        self,
        previous: LoadedPolicies,
        started: float,
        trigger: str,
        principal: str | None,
        error: Exception,
    ) -> ReloadRejected:
        if isinstance(error, PolicySetError):
            reason = "lint"
        elif isinstance(error, NoPoliciesError):
            reason = "no_policies"
        else:
            reason = "error"
        return ReloadRejected(
            kept_version=previous.version,
            errors=self._describe(error),
            took_s=time.perf_counter() - started,
            at=self._now(),
            trigger=trigger,
            reason=reason,
            principal=principal,
        )

    def _refused(
        self,
        previous: LoadedPolicies,
        policy_set: PolicySet,
        removals: tuple[Removal, ...],
        started: float,
        trigger: str,
    ) -> ReloadRejected:
        return ReloadRejected(
            kept_version=previous.version,
            errors=tuple(f"{removal.key}: {removal.message}" for removal in removals),
            took_s=time.perf_counter() - started,
            at=self._now(),
            trigger=trigger,
            reason="removes_protection",
            removals=removals,
            attempted_version=policy_set.version,
            changed=_changed(previous.versions(), _versions(policy_set)),
        )

    def _swap(
        self, previous: LoadedPolicies, policy_set: PolicySet, started: float, trigger: str
    ) -> PolicyReloaded:
        """Compile aside (unless the content is the same) and swap one reference.
        A compile error raises: `reload` turns it into a ReloadRejected."""
        loaded = self._compiled(policy_set, previous)
        self._current = loaded  # the swap: one reference assignment
        self._swapped(previous, loaded, trigger)
        return PolicyReloaded(
            version=loaded.version,
            previous_version=previous.version,
            changed=_changed(previous.versions(), loaded.versions()),
            took_s=time.perf_counter() - started,
            at=self._now() if loaded is previous else loaded.loaded_at,
            trigger=trigger,
        )

    def install(
        self,
        loaded: LoadedPolicies,
        trigger: str,
        *,
        principal: str | None = None,
        accept_removal: Collection[str] = (),
        warnings: tuple[Finding, ...] = (),
    ) -> PolicyReloaded | ReloadRejected:
        """Swap in a set already loaded, linted and compiled (a shadow candidate promoted,
        a kept version rolled back to) through the same guard as `reload`, under the same
        lock, reported through the same events. Never raises for a refused set."""
        with self._lock:
            previous = self.current
            started = time.perf_counter()
            event: ReloadEvent
            removals = removed_protection(previous.policy_set, loaded.policy_set)
            refused = unaccepted(removals, frozenset(accept_removal))
            if refused:
                event = self._refused(previous, loaded.policy_set, refused, started, trigger)
                event = replace(event, principal=principal)
            else:
                if loaded.version != previous.version:
                    self._current = loaded  # the swap: one reference assignment
                    self._warnings = warnings
                    self._swapped(previous, loaded, trigger)
                event = PolicyReloaded(
                    version=self.current.version,
                    previous_version=previous.version,
                    changed=_changed(previous.versions(), self.current.versions()),
                    took_s=time.perf_counter() - started,
                    at=self._now(),
                    trigger=trigger,
                    principal=principal,
                    accepted_removals=removals,
                    warnings=warnings,
                )
            self._stats = _counted(self._stats, event)
            self._emit(event)
            return event

    def _swapped(self, previous: LoadedPolicies, loaded: LoadedPolicies, trigger: str) -> None:
        if loaded is previous or self.on_swap is None:
            return
        try:
            self.on_swap(loaded, trigger)
        except Exception:  # bookkeeping only: never undo a swap
            log.exception("policy_swap_listener_failed", trigger=trigger)

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
        policy_set, self._warnings = self._read()
        return self._compiled(policy_set, previous)

    def _read(self) -> tuple[PolicySet, tuple[Finding, ...]]:
        """The directory's set, linted exactly as `bastion lint DIR` (PolicySetError),
        and its lint warnings."""
        policy_set, warnings = load_policy_set_with_warnings([self.directory])
        if not policy_set.policies:
            raise NoPoliciesError(
                "no policy file (*.yaml, *.yml) here; refusing to run without policies",
                file=str(self.directory),
            )
        return policy_set, warnings

    def _compiled(self, policy_set: PolicySet, previous: LoadedPolicies | None) -> LoadedPolicies:
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
        """Which policy files exist and their inode, mtime and size (None: no directory).
        Policy tests (kind: PolicyTest) are not policy files: a changed test never reloads.
        A ConfigMap key is named by the version folder it is read from: a swap changes it."""
        try:
            files = [
                source.read_from
                for source in list_sources([self.directory]).files
                if not is_test_file(source.read_from)
            ]
            return tuple(
                (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
                for path in files
                for stat in (path.stat(),)
            )
        except (BastionError, OSError):
            return None


def _versions(policy_set: PolicySet) -> dict[str, str]:
    return {f"{p.kind}/{p.name}": p.version for p in policy_set.members}


def _counted(stats: ReloadStats, event: ReloadEvent) -> ReloadStats:
    if isinstance(event, PolicyReloaded):
        return replace(
            stats,
            succeeded=stats.succeeded + 1,
            last_success_at=event.at,
            last_attempt_failed=False,
        )
    return replace(
        stats,
        failed=stats.failed + 1,
        refused=stats.refused + (1 if event.refused_by_guard else 0),
        last_failure_at=event.at,
        last_errors=event.errors,
        last_removals=event.removals,
        last_attempt_failed=True,
    )


def accept_hint(event: ReloadRejected) -> str:
    """How an officer accepts a guard refusal: the exact request to send."""
    body = json.dumps({"accept_removal": [removal.key for removal in event.removals]})
    # A promotion or rollback (service.candidate) is accepted where it was asked for.
    path = f"/-/{event.trigger}" if event.trigger in ("promote", "rollback") else "/-/reload"
    return (
        "If the removal is intended, a risk officer accepts it with "
        f"POST {path} and the body {body} (exact keys; a new removal refuses again); "
        "otherwise restore the files (PLAYBOOKS.md: A reload was refused because it "
        "removes protection)"
    )


def audit_record(event: ReloadEvent) -> dict[str, Any]:
    """AUDIT HOOK: everything an audit record of a reload needs, as plain JSON data.

    service/audit.py writes this for every reload event (accepted removals and guard
    refusals above all): who asked, what ran before and after, which policies changed,
    and which protections were removed or would have been.
    """
    common: dict[str, Any] = {
        "at": event.at.isoformat(),
        "trigger": event.trigger,
        "principal": event.principal,
        "changed": list(event.changed),
    }
    if isinstance(event, PolicyReloaded):
        return {
            **common,
            "event": "policy_reloaded",
            "version_before": event.previous_version,
            "version_after": event.version,
            "accepted_removals": [removal.as_dict() for removal in event.accepted_removals],
            "warnings": [warning.as_dict() for warning in event.warnings],
        }
    return {
        **common,
        "event": "reload_rejected",
        "reason": event.reason,
        "version_before": event.kept_version,
        "version_after": event.kept_version,  # nothing changed: the old set still serves
        "version_refused": event.attempted_version,
        "removals": [removal.as_dict() for removal in event.removals],
        "errors": list(event.errors),
    }


def _changed(before: dict[str, str], after: dict[str, str]) -> tuple[str, ...]:
    return tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))


def policy_listing(policy_set: PolicySet) -> list[dict[str, Any]]:
    """The policies of a set as GET /api/v1/policies lists them (one process or Ray)."""
    return [
        {
            "kind": p.kind,
            "name": p.name,
            "version": p.version,
            "mode": p.mode,
            "source": str(p.source),
        }
        for p in policy_set.policies
    ]
