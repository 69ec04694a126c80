"""`bastion serve --record DIR`: every cycle's snapshot kept, for a later reproduction.

Each cycle that evaluated data writes two files to DIR, named by the cycle's time and
number (`cycle-20261202T031500.000000Z-000042`):

    <name>.snapshot.json   the snapshot it evaluated (`bastion eval --snapshot` reads it)
    <name>.state.json      the engine state it started from (`bastion eval --state`)

so that `bastion eval --snapshot <name>.snapshot.json --state <name>.state.json`, with
the policies of that version, makes the cycle's decisions again. Each file is written to
a temporary file beside it, fsynced and renamed: a reader never sees half a file. Only
the newest `keep` cycles are kept (the oldest pairs are deleted as new ones come).

A failed write never stops or delays a cycle beyond the write itself: it is counted
(`bastion_snapshot_record_failures_total`), logged (`snapshot_record_failed`, with the
file and the error) and the next cycle tries again. A directory that cannot be made or
written at start is refused (exit 2 from `bastion serve`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from bastion.engine.errors import UsageError
from bastion.service.state_store import write_durably

if TYPE_CHECKING:
    from bastion.service.runner import Cycle

log = structlog.get_logger("bastion.service")

DEFAULT_KEEP = 1000
PREFIX = "cycle-"
SNAPSHOT_SUFFIX = ".snapshot.json"
STATE_SUFFIX = ".state.json"


class SnapshotRecorder:
    """Writes each cycle's snapshot and starting state to a directory, the newest `keep`."""

    def __init__(self, directory: Path, keep: int) -> None:
        if keep < 1:
            raise UsageError("--record-keep must be 1 or more")
        self.directory, self.keep = directory, keep
        self._lock = threading.Lock()  # one write at a time (cycles never overlap anyway)
        self._written: deque[str] = deque(_existing(directory))  # names, oldest first
        self._recorded: Counter | None = None
        self._failures: Counter | None = None

    def register(self, registry: CollectorRegistry) -> None:
        """Count writes and failures in the service's metrics."""
        self._recorded = Counter(
            "bastion_snapshots_recorded",
            "Cycles whose snapshot and starting state --record wrote.",
            registry=registry,
        )
        self._failures = Counter(
            "bastion_snapshot_record_failures",
            "Cycles whose snapshot --record could not write (the cycle went on).",
            registry=registry,
        )

    @classmethod
    def open(cls, directory: Path, keep: int) -> SnapshotRecorder:
        """The recorder for DIR (made when missing); UsageError (exit 2) naming DIR when
        it cannot be made or written."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
            os.close(handle)
            os.unlink(probe)
        except OSError as error:
            raise UsageError(
                f"--record {directory}: cannot write there ({error.strerror or error}); "
                "give a writable directory"
            ) from error
        return cls(directory, keep)

    def record(self, cycle: Cycle) -> bool:
        """Write the cycle's files; True when written (False: counted and logged). A
        cycle without data (no snapshot) writes nothing. Never raises."""
        if cycle.snapshot is None:
            return True
        name = f"{PREFIX}{cycle.at.strftime('%Y%m%dT%H%M%S.%fZ')}-{cycle.number:06d}"
        try:
            with self._lock:
                _write(self.directory / (name + SNAPSHOT_SUFFIX), cycle.snapshot.to_dict())
                state = cycle.state_before.to_dict() if cycle.state_before is not None else {}
                _write(self.directory / (name + STATE_SUFFIX), state)
                self._written.append(name)
                self._prune()
        except Exception as error:  # a disk problem never stops a cycle
            if self._failures is not None:
                self._failures.inc()
            log.error(
                "snapshot_record_failed",
                directory=str(self.directory),
                file=name,
                cycle=cycle.number,
                error=f"{type(error).__name__}: {error}"[:500],
            )
            return False
        if self._recorded is not None:
            self._recorded.inc()
        log.debug("snapshot_recorded", file=name, cycle=cycle.number)
        return True

    def _prune(self) -> None:
        while len(self._written) > self.keep:
            old = self._written.popleft()
            for suffix in (SNAPSHOT_SUFFIX, STATE_SUFFIX):
                (self.directory / (old + suffix)).unlink(missing_ok=True)


def _existing(directory: Path) -> list[str]:
    """The cycles already in DIR (an earlier run's), oldest first: pruned with the rest."""
    names = {
        path.name.removesuffix(SNAPSHOT_SUFFIX)
        for path in directory.glob(f"{PREFIX}*{SNAPSHOT_SUFFIX}")
    }
    return sorted(names)


def _write(path: Path, data: Any) -> None:
    """All of it or nothing (`state_store.write_durably`)."""
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    write_durably(path, text.encode("utf-8"))
