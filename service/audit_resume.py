"""Where an audit trail stands on disk: its writer's lock, the last committed record,
a torn last line. Used by `AuditTrail` at open and after a failed write."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bastion.service.audit_format import (
    GENESIS_PREV,
    AuditReadError,
    AuditWriteFailed,
    hmac_matches,
    parse_line,
    parse_time,
    seal_problem,
)
from bastion.service.audit_read import audit_files

LOCK_NAME = "audit.lock"


@dataclass(frozen=True, slots=True)
class Head:
    """The last committed record (seq 0 and the genesis prev when there is none) and the
    file_seq of the newest file."""

    seq: int = 0
    hash: str = GENESIS_PREV
    file_seq: int = 0
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    head: Head
    path: Path | None  # the file to append to; None: the next record opens a new file
    size: int  # its size in bytes
    newest_name: str | None  # the newest file's name: new names never sort before it
    torn: tuple[str, int, int] | None  # (file name, line, bytes) of a torn last line


def take_lock(directory: Path) -> int:
    """Create the directory, take its writer lock (flock); the fd holds it."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as error:
        raise AuditWriteFailed(
            directory, f"{error.strerror or error}; the audit directory must be writable"
        ) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise AuditWriteFailed(
            directory / LOCK_NAME,
            f"another process (pid {holder}) is writing this audit trail; two writers "
            "would fork the chain: stop it or give this one another --audit directory",
        ) from error
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def resume(directory: Path, key: bytes | None) -> Resumed:
    """Find the last committed record, checked; note a torn last line.

    Raises AuditWriteFailed when the last complete record fails its hash or does not fit
    the key; OSError when a file cannot be read."""
    try:
        files = audit_files(directory)
    except AuditReadError:
        files = []
    if not files:
        return Resumed(Head(), None, 0, None, None)
    newest_seq, newest = files[-1]
    head, size, torn = Head(file_seq=newest_seq), 0, None
    for _, path in reversed(files):
        lines = path.read_bytes().split(b"\n")
        fragment = lines.pop()  # b"" when the file ends with a newline
        if path == newest:
            size = sum(len(line) + 1 for line in lines) + len(fragment)
            if fragment:
                torn = (path.name, len(lines) + 1, len(fragment))
        if lines:
            seq, digest, at = _checked_last(path, len(lines), lines[-1], key)
            head = Head(seq=seq, hash=digest, file_seq=newest_seq, at=at)
            break
    # Never append after a torn line: the next record opens a new file.
    return Resumed(head, None if torn else newest, size, newest.name, torn)


def _checked_last(
    path: Path, line_no: int, raw: bytes, key: bytes | None
) -> tuple[int, str, datetime]:
    obj, problem = parse_line(raw)
    if obj is not None:
        problem = seal_problem(raw, obj)
    if obj is not None and problem is None:
        if key is not None and "hmac" not in obj:
            problem = "the trail is not keyed but BASTION_AUDIT_KEY is set"
        elif key is not None and not hmac_matches(key, obj):
            problem = "its HMAC does not match BASTION_AUDIT_KEY (wrong key, or edited)"
        elif key is None and "hmac" in obj:
            problem = "the trail is keyed but BASTION_AUDIT_KEY is not set"
    if problem is not None or obj is None:
        raise AuditWriteFailed(
            f"{path}:{line_no}",
            f"cannot continue the chain: the last record: {problem}. Run `bastion audit "
            "verify` on the directory; to start afresh (a new key, or after an incident) "
            "move the directory aside and keep it as evidence",
        )
    return obj["seq"], obj["hash"], parse_time(obj["at"])


def fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
