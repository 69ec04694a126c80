"""The --state file of `bastion serve`: versioned, digested, written atomically.

    {"version": 2, "digest": "sha256:<hex>", "saved_at": "...", "engine": {...},
     "builder": {...}, "pending_resets": [...], "orders": {...}}

The digest is the SHA-256 of the document without it, in canonical JSON (sorted keys,
no spaces, UTF-8): a file changed by hand (a breaker re-armed, HALTED turned ACTIVE)
no longer matches, and `load` refuses it unless the operator says so
(`accept_edited`, the CLI's --accept-edited-state; `LoadedState.edited` tells the
caller to log and audit it). It detects edits, not forgery: anyone who can write the
file can recompute the digest, so the file is written mode 0600. A file without
`version` (written before 2) is legacy: accepted once (`LoadedState.legacy`) and
rewritten in this format at the first save.

`save` writes a temporary file beside the target, fsyncs it, renames it over the
target and fsyncs the directory: a crash (kill -9, power loss) leaves the previous
file or the new one, never a mix. Every failure (disk full, read-only, a file size
limit, text that cannot be encoded) raises `StateSaveFailed`; the service counts it,
turns /readyz 503 and keeps running on its memory (`Service.save_state`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.engine.errors import BastionError

FORMAT_VERSION = 2
DIGEST_PREFIX = "sha256:"
ACCEPT_EDITED_FLAG = "--accept-edited-state"


class StateStoreError(BastionError):
    """The state file or its directory cannot be used at start. The CLI exits 2."""


class StateEdited(StateStoreError):
    """The state file's digest does not match its content: edited by hand."""


class StateSaveFailed(BastionError):
    """One save failed; the previous file is intact. Caught by `Service.save_state`."""


@dataclass(frozen=True, slots=True)
class LoadedState:
    """What `load` read: the document's content (digest and version removed)."""

    body: Mapping[str, Any]
    edited: bool = False  # the digest did not match and accept_edited let it in
    legacy: bool = False  # no version: written before format 2, accepted once


def digest_of(body: Mapping[str, Any]) -> str:
    """The digest of a state document (without its `digest` field)."""
    return DIGEST_PREFIX + hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class StateStore:
    path: Path
    accept_edited: bool = False

    def check_directory(self) -> None:
        """Fail at start, not at the first save: the directory must exist and take a new
        file (a real write: root ignores permission bits, not a read-only mount)."""
        directory = self.path.parent
        if not directory.is_dir():
            raise StateStoreError(
                f"{self.path}: the state directory {directory} does not exist; "
                "create it, or pass another --state"
            )
        try:
            handle, probe = tempfile.mkstemp(prefix=f".{self.path.name}.probe.", dir=directory)
            os.close(handle)
            os.unlink(probe)
        except OSError as error:
            raise StateStoreError(
                f"{self.path}: cannot write in the state directory {directory} "
                f"({error.strerror or error}); make it writable, or pass another --state"
            ) from error

    def load(self) -> LoadedState | None:
        """The saved document, None when there is no file yet. Raises StateStoreError
        (unreadable, another format) and StateEdited (digest mismatch, not accepted)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise StateStoreError(f"{self.path}: cannot read the state file ({reason})") from error
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise StateStoreError(
                f"{self.path}:{error.lineno}:{error.colno}: the state file is not valid JSON "
                f"({error.msg}); restore a backup, or move it away to start empty"
            ) from error
        if not isinstance(document, dict):
            raise StateStoreError(f"{self.path}: a state file is a JSON object")
        version = document.pop("version", None)
        if version is None and "engine" in document:
            return LoadedState(document, legacy=True)
        if version != FORMAT_VERSION:
            raise StateStoreError(
                f"{self.path}: state format {version!r} is not {FORMAT_VERSION}; written by "
                "another bastion version? start from an empty state (move the file away)"
            )
        saved_digest = document.pop("digest", None)
        body = {"version": version, **document}
        if saved_digest == digest_of(body):
            return LoadedState(document)
        if not self.accept_edited:
            raise StateEdited(
                f"{self.path}: the state file was edited by hand (its digest "
                f"{str(saved_digest)[:19]}... does not match the content): refused; restore "
                f"the saved file, or start with {ACCEPT_EDITED_FLAG} to take it as it is "
                "(logged and audited)"
            )
        return LoadedState(document, edited=True)

    def save(self, body: Mapping[str, Any]) -> None:
        """Write `body` (the content, without version and digest) atomically and durably.
        Raises StateSaveFailed; the file on disk is then the previous one."""
        document = {"version": FORMAT_VERSION, **body}
        try:
            document["digest"] = digest_of(document)
            # One line, sorted keys: the C encoder (an indented dump costs 5x, at every
            # report); `python -m json.tool FILE` shows it indented.
            encoded = (_canonical(document) + "\n").encode("utf-8")
        except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
            raise StateSaveFailed(f"{self.path}: state not serialisable: {error}") from error
        try:
            write_durably(self.path, encoded)
        except OSError as error:
            raise StateSaveFailed(
                f"{self.path}: {error.strerror or error} (errno {error.errno})"
            ) from error


def write_durably(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `target` (mode 0600), fsync it, rename it
    over `target` and fsync the directory: a crash leaves the previous file or the new
    one, never half of one, and the rename survives a power loss. The one atomic writer
    of the state file, the recorded snapshots and the CLI's --state / --out files."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), 0o600)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)
