"""Checking an audit trail: the chain, the HMACs, and where it breaks (format: `audit_format`).

`verify` walks every file in chain order and reports, at `file:line`, the first and
every further problem: a line edited (hash, canonical bytes or HMAC), records removed
(a gap in `seq`), reordered (a gap filled later), a rotated file removed (a gap in
`file_seq`), the first file removed (no genesis record), a line cut mid-way. A torn last
line left by a crash is accepted only when the next record is the
`audit_truncation_detected` record naming it; it is then reported as a note.

Whole lines cut from the end of the newest file leave no trace inside the trail: pass
`anchor=(seq, hash)`, a head recorded elsewhere (logs, `/api/v1/status`), to catch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.service.audit_format import (
    FILE_GLOB,
    GENESIS_PREV,
    AuditReadError,
    hmac_matches,
    name_file_seq,
    parse_line,
    parse_time,
    seal_problem,
)
from bastion.service.audit_read import audit_files

TRUNCATION_KIND = "audit_truncation_detected"


@dataclass(frozen=True, slots=True)
class Problem:
    location: str  # "file:line", or the file name
    what: str
    code: str  # edited | unreadable | removed | reordered | file_removed | first_removed |
    #            truncated | hmac_missing | hmac_mismatch | misplaced | anchor


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    files: int
    first_bad: str | None
    reason: str
    problems: tuple[Problem, ...] = ()
    notes: tuple[Problem, ...] = ()
    first_at: datetime | None = None
    last_at: datetime | None = None
    hmac: str = "not keyed"  # checked | not checked (no key given) | not keyed
    last_seq: int = 0
    last_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "files": self.files,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "problems": [
                {"location": p.location, "what": p.what, "code": p.code} for p in self.problems
            ],
            "notes": [{"location": p.location, "what": p.what, "code": p.code} for p in self.notes],
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "hmac": self.hmac,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
        }


def verify(
    directory: Path, *, key: bytes | None = None, anchor: tuple[int, str] | None = None
) -> VerifyResult:
    """Check the whole chain; raises AuditReadError when there is nothing to check."""
    directory = Path(directory)
    files = audit_files(directory)
    if not files:
        raise AuditReadError(f"{directory}: no audit files ({FILE_GLOB}): wrong directory?")
    checker = _Checker(key, anchor)
    strays = sorted(p.name for p in directory.glob(FILE_GLOB) if name_file_seq(p.name) is None)
    for name in strays:
        checker.problem(name, "unexpected file name: renamed by hand?", "misplaced")
    for file_seq, path in files:
        checker.check_file(file_seq, path)
    return checker.result(len(files))


class _Checker:
    """The walk over the chain: one record at a time, constant memory."""

    def __init__(self, key: bytes | None, anchor: tuple[int, str] | None) -> None:
        self.key = key
        self.anchor = anchor
        self.anchor_seen = False
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.records = 0
        self.expected_seq = 1
        self.last_hash = GENESIS_PREV
        self.last_location: str | None = None
        self.expected_file_seq = 1
        self.resync = False  # the previous line was bad: do not blame this one for the link
        # A seq gap: (its problem's index, lowest and highest seq missing, the seq found).
        self.gap: tuple[int, int, int, int] | None = None
        self.torn: str | None = None  # "file:line" waiting for its acknowledgement
        self.file_gap: int | None = None  # the missing-file problem, to say which seqs
        self.keyed_seen = False
        self.hmac_counts = {"hmac_missing": 0, "hmac_mismatch": 0}
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None

    def problem(self, location: str, what: str, code: str) -> None:
        self.problems.append(Problem(location, what, code))

    def check_file(self, file_seq: int, path: Path) -> None:
        if file_seq > self.expected_file_seq:
            missing = _span(self.expected_file_seq, file_seq - 1)
            if self.expected_file_seq == 1:
                what = f"the first file(s) (file_seq {missing}) are missing: no genesis record"
                self.problem(f"{path.name}:1", what, "first_removed")
            else:
                what = f"rotated file(s) with file_seq {missing} are missing (removed)"
                self.problem(f"{path.name}:1", what, "file_removed")
                self.file_gap = len(self.problems) - 1
            self.resync = True
        elif file_seq < self.expected_file_seq:
            self.problem(path.name, f"file_seq {file_seq} appears twice", "misplaced")
        self.expected_file_seq = file_seq + 1
        try:
            data = path.read_bytes()
        except OSError as error:
            self.problem(path.name, f"unreadable: {error.strerror or error}", "unreadable")
            self.resync = True
            return
        lines = data.split(b"\n")
        fragment = lines.pop()
        for line_no, raw in enumerate(lines, start=1):
            self.check_line(f"{path.name}:{line_no}", file_seq, raw)
        if fragment:
            self._close_torn()
            self.torn = f"{path.name}:{len(lines) + 1}"

    def check_line(self, location: str, file_seq: int, raw: bytes) -> None:
        obj, why = parse_line(raw)
        if obj is None:
            self._close_torn()
            self.problem(location, f"unreadable record ({why}): edited or corrupted", "unreadable")
            self.expected_seq += 1
            self.resync = True
            return
        if self.torn is not None:
            acknowledged = (
                obj["kind"] == TRUNCATION_KIND and obj["data"].get("location") == self.torn
            )
            if acknowledged:
                self.notes.append(
                    Problem(self.torn, f"cut mid-way by a crash; recorded at {location}", "torn")
                )
                self.torn = None
            else:
                self._close_torn()
        if self.file_gap is not None:
            if obj["seq"] > self.expected_seq:
                lost = _span(self.expected_seq, obj["seq"] - 1)
                earlier = self.problems[self.file_gap]
                self.problems[self.file_gap] = Problem(
                    earlier.location, f"{earlier.what}: records seq {lost} lost", earlier.code
                )
            self.file_gap = None
        bad = self._seal_problems(location, raw, obj)
        self._link(location, file_seq, obj)
        self.resync = bad
        self.expected_seq = max(self.expected_seq, obj["seq"] + 1)
        if obj["seq"] + 1 >= self.expected_seq:
            self.last_hash, self.last_location = obj["hash"], location
        self.records += 1
        at = parse_time(obj["at"])
        self.first_at = self.first_at or at
        self.last_at = at
        if self.anchor is not None and obj["seq"] == self.anchor[0]:
            self.anchor_seen = True
            if obj["hash"] != self.anchor[1]:
                self.problem(location, "hash differs from the anchor: rewritten", "anchor")

    def _seal_problems(self, location: str, raw: bytes, obj: dict[str, Any]) -> bool:
        bad = False
        sealed = seal_problem(raw, obj)
        if sealed is not None:
            self.problem(location, sealed, "edited")
            bad = True
        has_hmac = "hmac" in obj
        if self.key is not None:
            if not has_hmac:
                self._hmac_problem(
                    location,
                    "no HMAC: added or rewritten without BASTION_AUDIT_KEY",
                    "hmac_missing",
                )
                bad = True
            elif not hmac_matches(self.key, obj):
                self._hmac_problem(
                    location,
                    "HMAC does not match: wrong BASTION_AUDIT_KEY, or edited and re-hashed",
                    "hmac_mismatch",
                )
                bad = True
        elif self.keyed_seen and not has_hmac:
            self._hmac_problem(
                location, "no HMAC after keyed records: added without the key", "hmac_missing"
            )
            bad = True
        self.keyed_seen = self.keyed_seen or has_hmac
        return bad

    def _hmac_problem(self, location: str, what: str, code: str) -> None:
        self.hmac_counts[code] += 1
        if self.hmac_counts[code] == 1:
            self.problem(location, what, code)

    def _link(self, location: str, file_seq: int, obj: dict[str, Any]) -> None:
        seq, prev = obj["seq"], obj["prev"]
        if obj["file_seq"] != file_seq:
            self.problem(location, f"record says file_seq {obj['file_seq']}: moved", "misplaced")
        if self.resync:
            return
        if self.records == 0 and (seq != 1 or prev != GENESIS_PREV):
            what = f"the chain does not begin with a genesis record (seq 1, prev 0…0) but seq {seq}"
            self.problem(location, f"{what}: earlier records removed", "first_removed")
            self.gap = (len(self.problems) - 1, 1, seq - 1, seq)
        elif seq > self.expected_seq:
            span = _span(self.expected_seq, seq - 1)
            what = f"record(s) seq {span} missing before this line: removed"
            self.problem(location, what, "removed")
            self.gap = (len(self.problems) - 1, self.expected_seq, seq - 1, seq)
        elif seq < self.expected_seq:
            self._back_step(location, seq)
        elif prev != self.last_hash:
            where = self.last_location or "the chain start"
            what = f"prev does not match the hash of the record at {where}: replaced or re-chained"
            self.problem(location, what, "edited")

    def _back_step(self, location: str, seq: int) -> None:
        if self.gap is not None and self.gap[1] <= seq <= self.gap[2]:
            index = self.gap[0]
            earlier = self.problems[index]
            what = f"lines reordered: seq {self.gap[3]} here comes before seq {seq} at {location}"
            self.problems[index] = Problem(earlier.location, what, "reordered")
            self.gap = None
            return
        what = f"seq {seq} after seq {self.expected_seq - 1}: reordered or duplicated"
        self.problem(location, what, "reordered")

    def _close_torn(self) -> None:
        if self.torn is not None:
            self.problem(self.torn, "truncated: the line is cut mid-way (no line end)", "truncated")
            self.torn = None

    def result(self, files: int) -> VerifyResult:
        self._close_torn()
        if self.anchor is not None and not self.anchor_seen:
            what = f"the chain ends at seq {self.expected_seq - 1}, before the anchor seq "
            self.problem(
                self.last_location or "end", f"{what}{self.anchor[0]}: truncated", "anchor"
            )
        for code, count in self.hmac_counts.items():
            if count > 1:
                self._amend(code, f" ({count} records)")
        problems = tuple(self.problems)
        if self.key is not None:
            hmac = "checked"
        else:
            hmac = "not checked (no key given)" if self.keyed_seen else "not keyed"
        return VerifyResult(
            ok=not problems,
            records=self.records,
            files=files,
            first_bad=problems[0].location if problems else None,
            reason=problems[0].what if problems else "intact",
            problems=problems,
            notes=tuple(self.notes),
            first_at=self.first_at,
            last_at=self.last_at,
            hmac=hmac,
            last_seq=self.expected_seq - 1,
            last_hash=self.last_hash if self.records else None,
        )

    def _amend(self, code: str, suffix: str) -> None:
        for index, problem in enumerate(self.problems):
            if problem.code == code:
                self.problems[index] = Problem(problem.location, problem.what + suffix, code)
                return


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}–{hi}"
