"""Reading an audit trail: its files in chain order and its records, filtered.

Reading does not judge the chain (that is `audit_verify.verify`): unreadable lines are
skipped and reported to a callback, so `bastion audit show` works on damaged trails.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from pathlib import Path

from bastion.service.audit_format import (
    FILE_GLOB,
    AuditReadError,
    AuditRecord,
    name_file_seq,
    parse_line,
    record_from,
)


def audit_files(directory: Path) -> list[tuple[int, Path]]:
    """(file_seq, path) of every `audit-*.jsonl`, in chain order. Raises AuditReadError."""
    if not directory.is_dir():
        raise AuditReadError(f"{directory}: not a directory (give the --audit directory)")
    try:
        paths = list(directory.glob(FILE_GLOB))
    except OSError as error:
        raise AuditReadError(f"{directory}: cannot list: {error.strerror or error}") from error
    named = [(name_file_seq(p.name), p) for p in paths]
    return sorted(
        ((seq, p) for seq, p in named if seq is not None), key=lambda f: (f[0], f[1].name)
    )


def read_records(
    directory: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Collection[str] = (),
    subject: str | None = None,
    principal: str | None = None,
    on_unreadable: Callable[[str, str], None] | None = None,
) -> Iterator[AuditRecord]:
    """Records in chain order, filtered: since <= at < until, kind in kinds, subject and
    principal exact or shell patterns (`account:*`). Unreadable lines are skipped and
    passed to `on_unreadable(location, why)`; use `verify` to judge the chain."""
    for _, path in audit_files(Path(directory)):
        for line_no, raw in _lines(path, on_unreadable):
            location = f"{path.name}:{line_no}"
            obj, why = parse_line(raw)
            if obj is None:
                if on_unreadable is not None:
                    on_unreadable(location, why or "unreadable")
                continue
            record = record_from(obj, location)
            if (
                (since is None or record.at >= since)
                and (until is None or record.at < until)
                and (not kinds or record.kind in kinds)
                and _matches(subject, record.subject)
                and _matches(principal, record.principal)
            ):
                yield record


def _matches(pattern: str | None, value: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value, pattern))


def _lines(
    path: Path, on_unreadable: Callable[[str, str], None] | None
) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if raw.endswith(b"\n"):
                yield line_no, raw[:-1]
            elif on_unreadable is not None:
                on_unreadable(f"{path.name}:{line_no}", "cut mid-way (no line end)")
