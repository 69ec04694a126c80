"""AuditTrail: canonical chained lines, rotation, resuming, crash recovery, failed writes."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest

from bastion.engine.errors import BastionError
from bastion.service import audit as audit_module
from bastion.service.audit import (
    AuditTrail,
    AuditWriteFailed,
    key_from_env,
    read_records,
    verify,
)
from bastion.service.audit_format import GENESIS_PREV, content_hash, record_hmac
from bastion.service.audit_plain import MAX_STRING_CHARS, canonical
from tests.service.audit_support import KEY, T0, StepClock, files_of, lines_of


def open_trail(directory: Path, **kw: object) -> AuditTrail:
    kw.setdefault("clock", StepClock())
    return AuditTrail.open(directory, fsync=False, **kw)  # type: ignore[arg-type]


def test_append_when_first_record_then_genesis_line_canonical_and_hashed(tmp_path: Path) -> None:
    """The first record is the genesis: seq 1, prev 64 zeros, its own hash over the rest."""
    with open_trail(tmp_path) as trail:
        record = trail.append("service_started", principal="local", subject=None, pid=1)
    (path,) = files_of(tmp_path)
    raw = lines_of(path)[0]
    obj = json.loads(raw)
    assert record.seq == 1 and record.prev == GENESIS_PREV and record.hmac is None
    assert obj["prev"] == GENESIS_PREV and obj["file_seq"] == 1 and obj["hash"] == record.hash
    assert canonical(obj) == raw and content_hash(obj) == obj["hash"]
    assert path.name == "audit-20261201T213001Z-000001.jsonl"


def test_append_when_keyed_then_hmac_over_canonical_bytes_and_hash(tmp_path: Path) -> None:
    """With a key each line carries HMAC-SHA256(key, canonical-without-hash + hash)."""
    with open_trail(tmp_path, key=KEY) as trail:
        record = trail.append("order_checked", principal="t", outcome="approved")
    obj = json.loads(lines_of(files_of(tmp_path)[0])[0])
    assert obj["hmac"] == record.hmac == record_hmac(KEY, obj, obj["hash"])


def test_append_when_values_not_json_then_made_plain(tmp_path: Path) -> None:
    """Decimal, times, enums, sets, paths and dataclasses become exact JSON text."""

    class Side(Enum):
        BUY = "buy"

    @dataclasses.dataclass(frozen=True)
    class Leg:
        qty: Decimal

    with open_trail(tmp_path) as trail:
        record = trail.append(
            "order_checked",
            qty=Decimal("1.50"),
            at=T0,
            side=Side.BUY,
            tags={"b", "a"},
            file=Path("/x/y"),
            leg=Leg(Decimal("2")),
            ratio=float("nan"),
        )
    assert record.data == {
        "qty": "1.50",
        "at": "2026-12-01T21:30:00.000000Z",
        "side": "buy",
        "tags": ["a", "b"],
        "file": "/x/y",
        "leg": {"qty": "2"},
        "ratio": "nan",
    }


def test_append_when_client_string_long_then_cut_and_said_so(tmp_path: Path) -> None:
    """A long client string is cut to the bound; `_truncated` names the field."""
    with open_trail(tmp_path) as trail:
        record = trail.append("auth_refused", principal="p" * 500, path="/" + "x" * 10_000)
    assert len(record.data["path"]) < MAX_STRING_CHARS + 40
    assert record.principal is not None and len(record.principal) == 201
    assert any("data.path" in cut for cut in record.data["_truncated"])
    assert any("principal" in cut for cut in record.data["_truncated"])
    assert verify(tmp_path).ok


def test_append_when_data_over_record_limit_then_digest_kept(tmp_path: Path) -> None:
    """Data that stays over 64 KiB after cutting strings keeps its keys and SHA-256 only."""
    with open_trail(tmp_path) as trail:
        record = trail.append("decision_made", rows=[{"n": "y" * 1500} for _ in range(100)])
    oversize = record.data["_oversize"]
    assert oversize["keys"] == ["rows"] and len(oversize["sha256"]) == 64
    assert oversize["bytes"] > oversize["limit"]


def test_append_when_file_would_pass_max_bytes_then_rotates_with_chain_carried(
    tmp_path: Path,
) -> None:
    """Rotation by size: the new file's first record links to the old file's last one."""
    with open_trail(tmp_path, max_bytes=1500) as trail:
        for index in range(20):
            trail.append("order_checked", n=index)
    files = files_of(tmp_path)
    assert len(files) > 2 and all(f.stat().st_size <= 1500 for f in files)
    last_of_first = json.loads(lines_of(files[0])[-1])
    first_of_second = json.loads(lines_of(files[1])[0])
    assert first_of_second["prev"] == last_of_first["hash"]
    assert first_of_second["file_seq"] == 2 and first_of_second["seq"] == last_of_first["seq"] + 1
    assert verify(tmp_path).ok


def test_append_when_utc_day_changes_then_new_file(tmp_path: Path) -> None:
    """Rotation by day: a record on a new UTC day opens a new file named for its time."""
    clock = StepClock(T0, timedelta(hours=1))
    with open_trail(tmp_path, clock=clock) as trail:
        for _ in range(4):  # 22:30, 23:30, 00:30, 01:30
            trail.append("decision_made")
    names = [f.name for f in files_of(tmp_path)]
    assert names == ["audit-20261201T223000Z-000001.jsonl", "audit-20261202T003000Z-000002.jsonl"]


def test_append_when_clock_goes_back_then_file_names_still_sort_in_chain_order(
    tmp_path: Path,
) -> None:
    """A file is never named before the one it follows, so `ls` order is chain order."""
    clock = StepClock(T0, timedelta(seconds=-10))
    with open_trail(tmp_path, clock=clock, max_bytes=600) as trail:
        for _ in range(6):
            trail.append("order_checked", note="clock stepping back")
    files = files_of(tmp_path)
    assert len(files) > 2
    assert [int(f.stem[-6:]) for f in files] == list(range(1, len(files) + 1))
    assert verify(tmp_path).ok


def test_open_when_trail_exists_then_chain_resumes_in_newest_file(tmp_path: Path) -> None:
    """A restart continues the chain: seq and prev carry on, verify stays intact."""
    with open_trail(tmp_path, key=KEY) as trail:
        first = [trail.append("order_checked", n=n) for n in range(3)]
    with open_trail(tmp_path, key=KEY, clock=StepClock(T0 + timedelta(minutes=1))) as trail:
        assert trail.head == (3, first[-1].hash)
        again = trail.append("service_started")
    assert again.seq == 4 and again.prev == first[-1].hash
    assert len(files_of(tmp_path)) == 1
    assert verify(tmp_path, key=KEY).records == 4


def test_open_when_last_line_torn_then_new_file_records_the_truncation(tmp_path: Path) -> None:
    """After a crash mid-write the torn line is kept; a new file starts with
    `audit_truncation_detected` naming file:line, and verify accepts it as a note."""
    with open_trail(tmp_path) as trail:
        for n in range(3):
            trail.append("order_checked", n=n)
    (path,) = files_of(tmp_path)
    path.write_bytes(path.read_bytes() + b'{"at":"2026-12-01T21:3')  # kill -9 mid-write
    with open_trail(tmp_path, clock=StepClock(T0 + timedelta(minutes=1))) as trail:
        record = trail.append("service_started")
    files = files_of(tmp_path)
    acknowledgement = json.loads(lines_of(files[1])[0])
    assert acknowledgement["kind"] == "audit_truncation_detected"
    assert acknowledgement["data"]["location"] == f"{path.name}:4"
    assert acknowledgement["seq"] == 4 and record.seq == 5
    result = verify(tmp_path)
    assert result.ok and result.records == 5
    assert [n.location for n in result.notes] == [f"{path.name}:4"]


def test_open_when_last_line_edited_then_refuses_naming_it(tmp_path: Path) -> None:
    """A complete last line that fails its hash is not continued: open raises with file:line."""
    with open_trail(tmp_path) as trail:
        trail.append("order_checked", outcome="denied")
    (path,) = files_of(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"denied", b"approv"))
    with pytest.raises(AuditWriteFailed, match=rf"{path.name}:1: .*does not match its hash"):
        open_trail(tmp_path)


@pytest.mark.parametrize(
    ("written_with", "opened_with", "message"),
    [
        (KEY, b"another-key-0123456789abcdef", "does not match BASTION_AUDIT_KEY"),
        (None, KEY, "not keyed but BASTION_AUDIT_KEY is set"),
        (KEY, None, "keyed but BASTION_AUDIT_KEY is not set"),
    ],
)
def test_open_when_key_does_not_fit_the_trail_then_refuses(
    tmp_path: Path, written_with: bytes | None, opened_with: bytes | None, message: str
) -> None:
    """A wrong, missing or new key would break the chain's HMACs: open refuses."""
    with open_trail(tmp_path, key=written_with) as trail:
        trail.append("service_started")
    with pytest.raises(AuditWriteFailed, match=message):
        open_trail(tmp_path, key=opened_with)


def test_open_when_directory_not_writable_then_audit_write_failed_with_path(
    tmp_path: Path,
) -> None:
    """A directory that cannot be created or written fails at open, naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(AuditWriteFailed, match=str(blocker / "audit")):
        open_trail(blocker / "audit")


def test_open_when_another_writer_holds_the_directory_then_refused(tmp_path: Path) -> None:
    """Two writers would fork the chain: the second open is refused until the first closes."""
    first = open_trail(tmp_path)
    with pytest.raises(AuditWriteFailed, match=r"another process \(pid \d+\)"):
        open_trail(tmp_path)
    first.close()
    open_trail(tmp_path).close()


def test_append_when_fsync_fails_then_raises_unhealthy_and_recovers_with_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed write raises AuditWriteFailed (path and OS reason), turns the trail
    unhealthy, and is taken back; the next good append first records the failure."""
    trail = AuditTrail.open(tmp_path, clock=StepClock(), fsync=True)
    trail.append("service_started")
    real_fsync = os.fsync

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(audit_module.os, "fsync", broken_fsync)
    with pytest.raises(AuditWriteFailed, match="Input/output error") as caught:
        trail.append("order_checked", outcome="approved")
    assert caught.value.path.endswith("-000001.jsonl")
    assert not trail.healthy and "Input/output error" in (trail.last_error or "")
    monkeypatch.setattr(audit_module.os, "fsync", real_fsync)
    record = trail.append("order_checked", outcome="denied")
    trail.close()
    assert trail.last_error is not None
    kinds = [r.kind for r in read_records(tmp_path)]
    assert kinds == ["service_started", "audit_write_failed", "order_checked"]
    assert record.seq == 3 and verify(tmp_path).ok


def test_append_when_write_fails_then_healthy_only_after_a_good_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC part-way through a line: no partial line stays, healthy flips back later."""
    trail = open_trail(tmp_path)
    trail.append("service_started")
    real_write = os.write
    calls = {"n": 0}

    def half_then_full(fd: int, data: memoryview) -> int:
        if fd != trail._fd:  # only the audit file's writes fail
            return real_write(fd, data)
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_module.os, "write", half_then_full)
    for _ in range(2):
        with pytest.raises(AuditWriteFailed, match="No space left"):
            trail.append("order_checked")
    assert not trail.healthy
    monkeypatch.setattr(audit_module.os, "write", real_write)
    trail.append("order_checked")
    assert trail.healthy
    trail.close()
    failed = [r for r in read_records(tmp_path) if r.kind == "audit_write_failed"]
    assert failed[0].data["failed_appends"] == 2
    assert verify(tmp_path).ok


def test_append_when_closed_then_audit_write_failed(tmp_path: Path) -> None:
    """Nothing is silently dropped after close: append raises."""
    trail = open_trail(tmp_path)
    trail.close()
    with pytest.raises(AuditWriteFailed, match="closed"):
        trail.append("service_stopped")


def test_append_when_many_threads_then_one_unbroken_chain(tmp_path: Path) -> None:
    """Appends from 8 threads interleave as whole lines with consecutive seqs."""
    trail = open_trail(tmp_path, max_bytes=20_000)

    def worker(name: str) -> None:
        for n in range(150):
            trail.append("order_checked", principal=name, n=n)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.close()
    result = verify(tmp_path)
    assert result.ok and result.records == 1200 and result.files > 1


def test_key_from_env_when_unset_short_or_set_then_none_error_or_bytes() -> None:
    """Unset: no HMAC; set but short: refused with the fix; set: its UTF-8 bytes."""
    assert key_from_env({}) is None
    with pytest.raises(BastionError, match="at least 16"):
        key_from_env({"BASTION_AUDIT_KEY": "short"})
    assert key_from_env({"BASTION_AUDIT_KEY": "k" * 32}) == b"k" * 32


def test_append_when_clock_naive_then_audit_write_failed_not_a_guess(tmp_path: Path) -> None:
    """Times must be aware: a naive clock fails the write (unhealthy), never guesses UTC."""
    with open_trail(tmp_path, clock=lambda: datetime(2026, 12, 1)) as trail:
        with pytest.raises(AuditWriteFailed, match="timezone-aware"):
            trail.append("service_started")
        assert not trail.healthy


def test_append_when_new_file_cannot_be_created_then_error_names_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation that cannot create its file names the new file, not the old one."""
    trail = open_trail(tmp_path, max_bytes=400)
    trail.append("service_started")
    real_open = os.open

    def refuse_new_files(path: str | Path, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_EXCL:
            raise OSError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(audit_module.os, "open", refuse_new_files)
    with pytest.raises(AuditWriteFailed, match=r"-000002\.jsonl: audit write failed: Permission"):
        trail.append("order_checked", note="x" * 400)
    monkeypatch.setattr(audit_module.os, "open", real_open)
    trail.append("order_checked")
    trail.close()
    assert verify(tmp_path).ok


def test_append_when_data_cannot_be_serialised_then_audit_write_failed(tmp_path: Path) -> None:
    """A value that cannot be written (a cycle) fails loudly as AuditWriteFailed."""
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with open_trail(tmp_path) as trail:
        with pytest.raises(AuditWriteFailed, match="RecursionError"):
            trail.append("decision_made", decision=cyclic)
        assert not trail.healthy and trail.head == (0, GENESIS_PREV)


class _HeldFsync:
    """os.fsync that waits until released (then fails with `error`, if given): a disk
    flush another thread is in the middle of."""

    def __init__(self, error: OSError | None = None) -> None:
        self.entered, self.release, self.error = threading.Event(), threading.Event(), error
        self.real = os.fsync

    def __call__(self, fd: int) -> None:
        self.entered.set()
        assert self.release.wait(10), "the test never released the fsync"
        if self.error is not None:
            raise self.error
        self.real(fd)


def _append_in_thread(trail: AuditTrail, outcome: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            outcome.append(trail.append("decision_made", subject="account:gen-01"))
        except AuditWriteFailed as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_append_when_another_thread_is_fsyncing_then_an_unsynced_append_does_not_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A synced record's fsync runs outside the append lock: a check's record (sync=False,
    on the HTTP event loop) is written while a cycle's record is still being flushed, and
    the chain keeps the order the lines were written in."""
    trail = AuditTrail.open(tmp_path, clock=StepClock(), fsync=True)
    trail.append("service_started")  # the file exists (its directory fsynced) before
    held = _HeldFsync()
    monkeypatch.setattr(audit_module.os, "fsync", held)
    outcome: list[object] = []
    thread = _append_in_thread(trail, outcome)
    assert held.entered.wait(10)
    trail.append("order_checked", principal="tom", sync=False, outcome="approved")
    assert thread.is_alive() and not outcome  # written while the other flush is held
    held.release.set()
    thread.join(10)
    assert [type(o).__name__ for o in outcome] == ["AuditRecord"] and trail.healthy
    trail.close()
    kinds = [r.kind for r in read_records(tmp_path)]
    assert kinds == ["service_started", "decision_made", "order_checked"]
    assert verify(tmp_path).ok


def test_append_when_fsync_fails_after_a_later_line_then_it_stays_and_the_failure_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed fsync cannot take its line back once another follows it (the chain would
    break): the line stays, its caller gets AuditWriteFailed, the trail turns unhealthy,
    and the next append records the failure first; the chain verifies."""
    trail = AuditTrail.open(tmp_path, clock=StepClock(), fsync=True)
    trail.append("service_started")
    held = _HeldFsync(OSError(errno.EIO, "Input/output error"))
    monkeypatch.setattr(audit_module.os, "fsync", held)
    outcome: list[object] = []
    thread = _append_in_thread(trail, outcome)
    assert held.entered.wait(10)
    trail.append("order_checked", principal="tom", sync=False, outcome="denied")
    held.release.set()
    thread.join(10)
    (failed,) = outcome
    assert isinstance(failed, AuditWriteFailed) and "Input/output error" in str(failed)
    assert not trail.healthy
    monkeypatch.setattr(audit_module.os, "fsync", held.real)
    trail.append("service_stopped")
    trail.close()
    kinds = [r.kind for r in read_records(tmp_path)]
    assert kinds == [
        "service_started",
        "decision_made",
        "order_checked",
        "audit_write_failed",
        "service_stopped",
    ]
    assert verify(tmp_path).ok and trail.healthy is False  # closed
