"""The tamper-evident audit trail: one hash-chained JSON line per event, fsynced.

`AuditTrail.open(directory, clock=..., key=key_from_env(os.environ))` resumes the chain
from the newest file's last line (checked first) and `append(kind, principal=...,
subject=..., **data)` writes one record, flushed and fsynced before it returns. A write
that fails raises `AuditWriteFailed` and leaves `healthy` False until a later append
succeeds; that append first writes an `audit_write_failed` record saying how many
appends were lost and why. Nothing fails silently.

Kinds are snake_case, past tense, and open-ended (the writer accepts any). The service
writes: `service_started`, `service_stopped`, `decision_made`, `order_checked`,
`order_reported`, `override_applied`, `breaker_reset_requested`, `policy_reloaded`,
`reload_rejected`, `auth_refused`, `state_edit_accepted`; the trail itself writes
`audit_truncation_detected` and `audit_write_failed`.

Files: `audit-<UTC time of the first record>-<file_seq>.jsonl`, rotated when the next
line would pass `max_bytes` or the UTC day changes; names sort in chain order.

Crash safety: a line is written with one `write` and fsynced, so a crash can leave at
most a torn (newline-less) last line, whose record the caller never saw acknowledged.

Concurrency: lines are built and written under one lock, in chain order; the fsync that
makes a synced record durable runs after that lock is released (on a duplicate of the
file's descriptor, so a rotation may close the file meanwhile). A writer that only
appends a record of a question (`sync=False`, the order checks answered on the HTTP
event loop) therefore never waits for a disk flush another thread started: a cycle's
records and its `sync()` no longer stall the checks behind them. A failed fsync takes
its line back when no later line follows it; otherwise the line stays in the chain
(its caller was told it failed) and the next append records the failure.
`open` keeps that evidence: it starts a new file whose first record is
`audit_truncation_detected` naming the torn `file:line`, and `bastion audit verify`
accepts a torn line only when that record acknowledges it. Any other damage to the
last line (a complete line that fails its hash or HMAC) makes `open` refuse.

One writer per directory: `audit.lock` is held (flock) while a trail is open.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.engine.errors import BastionError
from bastion.service.audit_format import (
    AuditReadError,
    AuditRecord,
    AuditWriteFailed,
    file_name,
    name_time,
    new_body,
    record_from,
    seal,
)
from bastion.service.audit_read import read_records
from bastion.service.audit_resume import Head, fsync_directory, resume, take_lock
from bastion.service.audit_verify import Problem, VerifyResult, verify

__all__ = [
    "AuditReadError",
    "AuditRecord",
    "AuditTrail",
    "AuditWriteFailed",
    "Problem",
    "VerifyResult",
    "key_from_env",
    "read_records",
    "verify",
]

KEY_ENV = "BASTION_AUDIT_KEY"
MIN_KEY_CHARS = 16


def key_from_env(environ: Mapping[str, str]) -> bytes | None:
    """The HMAC key from BASTION_AUDIT_KEY (its UTF-8 bytes), or None when unset."""
    value = environ.get(KEY_ENV)
    if value is None:
        return None
    if len(value.strip()) < MIN_KEY_CHARS:
        raise BastionError(
            f"{KEY_ENV} is set but has {len(value.strip())} characters; use at least "
            f"{MIN_KEY_CHARS} random ones (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`), or unset it to write an unkeyed trail"
        )
    return value.encode("utf-8")


class AuditTrail:
    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], datetime],
        key: bytes | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        rotate_daily: bool = True,
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.clock = clock
        self.key = key
        self.max_bytes = max_bytes
        self.rotate_daily = rotate_daily
        self.fsync = fsync
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._path: Path | None = None  # the file being written, None: start a new one
        self._newest_name: str | None = None
        self._size = 0
        self._head = Head()
        self._resume_needed = True
        self._torn: tuple[str, int, int] | None = None  # (file, line, bytes) to acknowledge
        self._failed_appends = 0
        self._first_failure: str | None = None
        self._last_error: str | None = None
        self._closed = False
        # fsyncs run outside `_lock`, one at a time under `_sync_lock`; `_synced_seq` is
        # the last record known durable (records of the current file after it are not).
        self._sync_lock = threading.Lock()
        self._synced_seq = 0

    @classmethod
    def open(
        cls,
        directory: Path | str,
        *,
        clock: Callable[[], datetime],
        key: bytes | None = None,
        **kw: Any,
    ) -> AuditTrail:
        """Create the directory if needed, take its lock, resume the chain (checked)."""
        trail = cls(Path(directory), clock=clock, key=key, **kw)
        with trail._lock:
            trail._lock_fd = take_lock(trail.directory)
            try:
                trail._resume()
            except OSError as error:
                trail._release()
                raise AuditWriteFailed(trail.directory, error.strerror or str(error)) from error
            except AuditWriteFailed:
                trail._release()
                raise
        return trail

    @property
    def healthy(self) -> bool:
        """False from a failed append until an append succeeds again."""
        return self._failed_appends == 0 and not self._closed

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written: an anchor for `verify --anchor`."""
        return self._head.seq, self._head.hash

    @property
    def current_file(self) -> Path | None:
        return self._path

    def append(
        self,
        kind: str,
        *,
        principal: str | None = None,
        subject: str | None = None,
        sync: bool = True,
        **data: Any,
    ) -> AuditRecord:
        """Write one record, fsynced. Any failure (I/O, a clock or a value that cannot be
        written) raises AuditWriteFailed and turns the trail unhealthy.

        `sync=False` (records of questions, such as order checks): written to the file
        (the OS holds it: a kill -9 loses nothing) but fsynced only with the next synced
        record, `sync()` or the file's close — a power cut can lose the latest of them."""
        durable: tuple[int, int, Path | None] | None = None  # (dup fd, line start, file)
        with self._lock:
            if self._closed:
                raise AuditWriteFailed(self.directory, "the audit trail is closed")
            try:
                at = self.clock()
                if self._lock_fd is None:
                    self._lock_fd = take_lock(self.directory)
                if self._resume_needed:
                    self._resume()
                self._write_pending(at)
                start = self._size
                record = self._write(kind, principal, subject, data, at)
                if sync and self.fsync and self._fd is not None:
                    durable = (os.dup(self._fd), start, self._path)
            except OSError as error:
                raise self._failed(error) from error
            except AuditWriteFailed as error:
                self._note_failure(str(error))
                raise
            except Exception as error:  # a record that cannot be built is lost all the same
                reason = f"record {kind!r} not written: {type(error).__name__}: {error}"
                self._note_failure(f"{self.directory}: {reason}")
                raise AuditWriteFailed(self.directory, reason) from error
            if durable is None:
                self._failed_appends = 0
                self._first_failure = None
                return record
        fd, start, path = durable
        self._sync_through(fd, record.seq, take_back=(start, path))
        with self._lock:
            self._failed_appends = 0
            self._first_failure = None
        return record

    def _sync_through(
        self, fd: int, seq: int, *, take_back: tuple[int, Path | None] | None = None
    ) -> None:
        """fsync `fd` (a duplicate, closed here) unless record `seq` is durable already
        (another thread's fsync covered it): outside `_lock`, so appends go on meanwhile.
        A failure marks the trail unhealthy and raises AuditWriteFailed; with `take_back`
        (the line's start and file) the line is cut off again when it is still the last."""
        try:
            with self._sync_lock:
                if self._synced_seq < seq:
                    os.fsync(fd)
                    self._synced_seq = max(self._synced_seq, seq)
        except OSError as error:
            with self._lock:
                if take_back is not None and self._head.seq == seq and self._path == take_back[1]:
                    self._size = take_back[0]  # `_failed` truncates the file back to it
                raise self._failed(error) from error
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the file and release the directory lock. Idempotent."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        """Release the lock without taking `_lock` (held by the caller)."""
        self._closed = True
        self._close_file()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------

    def _write_pending(self, at: datetime) -> None:
        """Evidence first: a torn line found at resume, appends that failed before."""
        if self._torn is not None:
            torn_file, torn_line, torn_bytes = self._torn
            self._path = None  # never append after a torn line: a new file
            self._write(
                "audit_truncation_detected",
                None,
                None,
                {
                    "location": f"{torn_file}:{torn_line}",
                    "torn_bytes": torn_bytes,
                    "note": "the last line was cut mid-way (crash or full disk); it is kept "
                    "as evidence and this file continues the chain",
                },
                at,
            )
            self._torn = None
        if self._failed_appends:
            self._write(
                "audit_write_failed",
                None,
                None,
                {
                    "failed_appends": self._failed_appends,
                    "first_error": self._first_failure,
                    "last_error": self._last_error,
                },
                at,
            )

    def _write(
        self,
        kind: str,
        principal: str | None,
        subject: str | None,
        data: Mapping[str, Any],
        at: datetime,
    ) -> AuditRecord:
        """Build, seal and write one record (not fsynced: see `append`)."""
        head = self._head
        if self._path is None or self._must_rotate(at):
            file_seq = head.file_seq + 1
        else:
            file_seq = head.file_seq

        def sealed(file_seq: int) -> tuple[dict[str, Any], bytes]:
            body = new_body(
                seq=head.seq + 1,
                file_seq=file_seq,
                at=at,
                kind=kind,
                principal=principal,
                subject=subject,
                data=data,
                prev=head.hash,
            )
            return body, seal(body, self.key)

        body, line = sealed(file_seq)
        if file_seq == head.file_seq and self._size and self._size + len(line) > self.max_bytes:
            file_seq += 1
            body, line = sealed(file_seq)
        if file_seq != head.file_seq or self._path is None:
            self._start_file(at, file_seq)
        self._write_line(line)
        self._head = Head(seq=body["seq"], hash=body["hash"], file_seq=file_seq, at=at)
        return record_from(body)

    def _must_rotate(self, at: datetime) -> bool:
        if not self.rotate_daily or self._path is None:
            return False
        started = name_time(self._path.name)
        return started is not None and at.astimezone(started.tzinfo).date() != started.date()

    def _start_file(self, at: datetime, file_seq: int) -> None:
        self._close_file()
        previous = name_time(self._newest_name) if self._newest_name else None
        named_at = max(at, previous) if previous is not None else at  # names keep chain order
        path = self.directory / file_name(named_at, file_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        self._path, self._size, self._newest_name = path, 0, path.name
        if self.fsync:
            fsync_directory(self.directory)

    def _write_line(self, line: bytes) -> None:
        assert self._path is not None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(line)  # after the whole line: a failed write takes it back

    def sync(self) -> None:
        """fsync records written with `sync=False` (the service calls it every cycle),
        outside the append lock. Raises AuditWriteFailed when the disk refuses."""
        with self._lock:
            if not (self.fsync and self._fd is not None and self._head.seq > self._synced_seq):
                return
            try:
                fd, seq = os.dup(self._fd), self._head.seq
            except OSError as error:
                raise self._failed(error) from error
        self._sync_through(fd, seq)

    def _failed(self, error: OSError) -> AuditWriteFailed:
        path = error.filename or self._path or self.directory  # os.open names its file
        reason = error.strerror or str(error)
        if self._fd is not None and self._path is not None:
            # Take back a partial line so the file stays a clean chain; if that fails too,
            # the resume before the next append finds the torn line and records it.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
        with contextlib.suppress(OSError):
            self._close_file()
        self._resume_needed = True
        self._note_failure(f"{path}: {reason}")
        return AuditWriteFailed(path, reason)

    def _note_failure(self, message: str) -> None:
        self._failed_appends += 1
        self._first_failure = self._first_failure or message
        self._last_error = message

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                with self._sync_lock:
                    if self.fsync and self._head.seq > self._synced_seq:
                        os.fsync(fd)  # a file is never left with unsynced records
                    self._synced_seq = max(self._synced_seq, self._head.seq)
            finally:
                os.close(fd)

    def _resume(self) -> None:
        """Re-read where the trail stands (at open, after a failed write)."""
        self._close_file()
        resumed = resume(self.directory, self.key)
        self._head, self._path, self._size = resumed.head, resumed.path, resumed.size
        self._newest_name, self._torn = resumed.newest_name, resumed.torn
        self._resume_needed = False
