"""The audit trail's on-disk format: one canonical JSON object per line, hash-chained.

A line is the canonical JSON (sorted keys, compact separators, ASCII only) of

    {"at", "data", "file_seq", "hash", ["hmac",] "kind", "prev", "principal", "seq",
     "subject", "v"}

- `hash` is the SHA-256 of the canonical JSON of the record *without* `hash` and `hmac`;
- `prev` is the `hash` of the record before it, across files; the genesis record
  (seq 1, in file_seq 1) has `prev` = 64 zeros;
- `hmac`, present when the trail is keyed (`BASTION_AUDIT_KEY`), is HMAC-SHA256 over the
  same canonical bytes followed by the hex `hash`: without the key nobody can rewrite a
  record and re-chain the rest.

The writer is `bastion.service.audit`, the reader and checker `bastion.service.audit_verify`.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_lib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from bastion.engine.errors import BastionError
from bastion.service.audit_plain import bounded, canonical, format_time, label

FORMAT_VERSION = 1
GENESIS_PREV = "0" * 64
FILE_GLOB = "audit-*.jsonl"
FILE_NAME = re.compile(r"^audit-(\d{8}T\d{6}Z)-(\d{6})\.jsonl$")
NAME_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "seq": int,
    "file_seq": int,
    "at": str,
    "kind": str,
    "principal": (str, type(None)),
    "subject": (str, type(None)),
    "data": dict,
    "prev": str,
    "hash": str,
}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuditWriteFailed(BastionError):
    """An audit record could not be written. The service turns not ready and alerts."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: audit write failed: {reason}")


class AuditReadError(BastionError):
    """An audit directory cannot be read at all (missing, unreadable, no audit files)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    kind: str
    principal: str | None
    subject: str | None
    data: dict[str, Any]
    prev: str
    hash: str
    hmac: str | None
    file_seq: int = 1
    location: str | None = field(default=None, compare=False)  # "file:line" when read back

    def to_dict(self) -> dict[str, Any]:
        """The record as written (the JSON line's object)."""
        body = _body(
            self.seq, self.file_seq, self.at, self.kind, self.principal, self.subject, self.data
        )
        body |= {"prev": self.prev, "hash": self.hash}
        if self.hmac is not None:
            body["hmac"] = self.hmac
        return body

    def summary(self, width: int = 100) -> str:
        """`key=value` pairs of the data's scalars, cut to `width` characters."""
        parts = []
        for key, value in self.data.items():
            shown = (
                "{…}" if isinstance(value, dict) else "[…]" if isinstance(value, list) else value
            )
            parts.append(f"{key}={shown}")
        text = " ".join(parts)
        return text if len(text) <= width else text[: width - 1] + "…"


def content_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical record without its own `hash` / `hmac`."""
    return hashlib.sha256(canonical(_unsealed(body))).hexdigest()


def record_hmac(key: bytes, body: Mapping[str, Any], digest: str) -> str:
    message = canonical(_unsealed(body)) + digest.encode("ascii")
    return hmac_lib.new(key, message, hashlib.sha256).hexdigest()


def seal(body: dict[str, Any], key: bytes | None) -> bytes:
    """Add `hash` (and `hmac`) to an unsealed body; return the line, newline included.

    The record is serialised once: the line is the unsealed bytes with the seal's keys
    spliced in where the sorted keys put them, just before the top-level `"kind"` (the
    last `,"kind":` of the line: the keys after it hold plain strings and numbers, in
    which JSON escapes every quote). Equal to `canonical(body)` byte for byte."""
    unsealed = canonical(_unsealed(body))
    digest = hashlib.sha256(unsealed).hexdigest()
    body["hash"] = digest
    seal_text = f',"hash":"{digest}"'
    if key is not None:
        mac = hmac_lib.new(key, unsealed + digest.encode("ascii"), hashlib.sha256).hexdigest()
        body["hmac"] = mac
        seal_text += f',"hmac":"{mac}"'
    at = unsealed.rindex(b',"kind":')
    return unsealed[:at] + seal_text.encode("ascii") + unsealed[at:] + b"\n"


def new_body(
    *,
    seq: int,
    file_seq: int,
    at: datetime,
    kind: str,
    principal: str | None,
    subject: str | None,
    data: Mapping[str, Any],
    prev: str,
) -> dict[str, Any]:
    """An unsealed record: labels cut, data made JSON-plain and bounded."""
    cuts: list[str] = []
    body = _body(
        seq,
        file_seq,
        at,
        label(kind, "kind", cuts),
        None if principal is None else label(principal, "principal", cuts),
        None if subject is None else label(subject, "subject", cuts),
        bounded(data, cuts),
    )
    body["prev"] = prev
    return body


def parse_time(text: str) -> datetime:
    """An ISO time; `Z` accepted; a naive time is taken as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def file_name(at: datetime, file_seq: int) -> str:
    return f"audit-{at.astimezone(UTC).strftime(NAME_TIME_FORMAT)}-{file_seq:06d}.jsonl"


@lru_cache(maxsize=256)  # asked at every append (daily rotation): strptime is slow
def name_time(name: str) -> datetime | None:
    match = FILE_NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), NAME_TIME_FORMAT).replace(tzinfo=UTC)


def name_file_seq(name: str) -> int | None:
    match = FILE_NAME.match(name)
    return None if match is None else int(match.group(2))


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(record object, None) or (None, why it is not a record)."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"not JSON ({error})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    for name, kind in REQUIRED_FIELDS.items():
        if name not in obj:
            return None, f"field {name!r} missing"
        if not isinstance(obj[name], kind) or (kind is int and isinstance(obj[name], bool)):
            return None, f"field {name!r} has the wrong type"
    if obj["v"] != FORMAT_VERSION:
        return None, f"format version {obj['v']} (this Bastion reads {FORMAT_VERSION})"
    if not (_HEX64.match(obj["hash"]) and _HEX64.match(obj["prev"])):
        return None, "hash or prev is not 64 hex digits"
    if "hmac" in obj and not (isinstance(obj["hmac"], str) and _HEX64.match(obj["hmac"])):
        return None, "hmac is not 64 hex digits"
    try:
        parse_time(obj["at"])
    except ValueError:
        return None, f"time {obj['at']!r} is not ISO 8601"
    return obj, None


def seal_problem(raw: bytes, obj: Mapping[str, Any]) -> str | None:
    """Why a parsed line's own hash or bytes do not hold, or None."""
    if content_hash(obj) != obj["hash"]:
        return "edited: the content does not match its hash"
    if canonical(obj) != raw:
        return "edited: the bytes differ from the canonical form (the hash still matches)"
    return None


def hmac_matches(key: bytes, obj: Mapping[str, Any]) -> bool:
    expected = record_hmac(key, obj, obj["hash"])
    return hmac_lib.compare_digest(expected, str(obj.get("hmac", "")))


def record_from(obj: Mapping[str, Any], location: str | None = None) -> AuditRecord:
    return AuditRecord(
        seq=obj["seq"],
        at=parse_time(obj["at"]),
        kind=obj["kind"],
        principal=obj["principal"],
        subject=obj["subject"],
        data=obj["data"],
        prev=obj["prev"],
        hash=obj["hash"],
        hmac=obj.get("hmac"),
        file_seq=obj["file_seq"],
        location=location,
    )


def _body(
    seq: int,
    file_seq: int,
    at: datetime,
    kind: str,
    principal: str | None,
    subject: str | None,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "seq": seq,
        "file_seq": file_seq,
        "at": format_time(at),
        "kind": kind,
        "principal": principal,
        "subject": subject,
        "data": dict(data),
    }


def _unsealed(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("hash", "hmac")}
