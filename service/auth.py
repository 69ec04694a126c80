"""Who is asking: principals, roles, and bearer tokens checked against their SHA-256.

Roles are ordered, each including the one before:

    viewer    GET status, policies (and metrics with --auth-metrics)
    trader    POST /api/v1/check, POST /api/v1/orders
    operator  breaker resets, manual escalation (POST/DELETE /api/v1/escalations),
              POST /-/reload, silences
    officer   accepting a policy change that removes protection

Without `--auth` the service binds loopback only and every caller is `LOCAL`, an
officer named "local": anyone who can reach a loopback port on the host already
owns the process. The identity written into every record comes from here, never
from a request body.

With `--auth FILE` the callers are the file's principals:

    principals:
      - {name: alice, role: operator, token_sha256: 9f86d081884c7d65...}

A token is never stored in clear: `bastion auth token NAME --role ROLE` prints a new
one once, with the line to add. `Authenticator` re-reads the file when its mtime, size
or inode changes (checked on every request: one stat), so removing a line revokes the
token at the next request. A file that no longer reads fails closed: no token is
accepted until it is fixed (503 `auth_file_invalid`), never the old list.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import structlog

from bastion.engine.errors import BastionError, PolicyError
from bastion.engine.policy.yamlsource import load_documents, read_text

log = structlog.get_logger("bastion.service")

TOKEN_PREFIX = "bst_"  # recognisable in a leaked-secret scan
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_FIELDS = ("name", "role", "token_sha256")
_MAX_AUTH_FILE_BYTES = 1_048_576
_MAX_HEADER_CHARS = 512  # an Authorization header longer than this is no token of ours


class Role(IntEnum):
    VIEWER = 1
    TRADER = 2
    OPERATOR = 3
    OFFICER = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}; one of: {names}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller (or `LOCAL` when the service runs without --auth)."""

    name: str
    role: Role

    def allows(self, required: Role) -> bool:
        return self.role >= required


LOCAL = Principal("local", Role.OFFICER)


class AuthFileError(BastionError):
    """The --auth file cannot be used; the message starts with file:line. At start-up
    the CLI exits 2 with it; at a re-read the service refuses every token (fail closed)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One principal of the --auth file, as its token's hash."""

    principal: Principal
    token_sha256: str
    line: int


def hash_token(token: str) -> str:
    """The SHA-256 hex of a token, as the --auth file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A new random bearer token: 256 bits from the OS, URL-safe text."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def entry_line(name: str, role: Role, token_sha256: str) -> str:
    """The line `bastion auth token` tells the operator to add under `principals:`."""
    return f"  - {{name: {name}, role: {role.label}, token_sha256: {token_sha256}}}"


def check_name(name: str) -> str | None:
    """Why `name` cannot name a principal, or None."""
    if _NAME.fullmatch(name):
        return None
    return "letters, digits and . _ @ - only, 1 to 64 characters, starting with a letter or digit"


def load_auth_file(path: Path) -> tuple[Entry, ...]:
    """The principals of an --auth file; AuthFileError naming file:line at the first
    problem (unknown role, bad hash, duplicate name or hash, unknown field...)."""
    file = str(path)
    try:
        text = read_text(path, max_bytes=_MAX_AUTH_FILE_BYTES)
        documents = load_documents(text, file)
    except PolicyError as error:
        raise AuthFileError(str(error).replace(" a policy;", " an auth file;")) from error
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise AuthFileError(f"{file}:1: expected one mapping with a `principals:` list")
    document = documents[0]
    data = document.data

    def fail(pointer: str, message: str) -> AuthFileError:
        return AuthFileError(f"{file}:{document.locate(pointer).line}: {message}")

    unknown = sorted(set(data) - {"principals"})
    if unknown:
        raise fail(f"/{unknown[0]}", f"unknown key {unknown[0]!r}; only `principals:` is read")
    principals = data.get("principals")
    if principals is None:  # `principals:` with no line under it: nobody may call
        principals = []
    if not isinstance(principals, list):
        raise fail("/principals", "`principals:` must be a list of {name, role, token_sha256}")
    entries: list[Entry] = []
    names: dict[str, int] = {}
    hashes: dict[str, int] = {}
    for index, item in enumerate(principals):
        pointer = f"/principals/{index}"
        line = document.locate(pointer).line

        def fail_in_entry(where: str, message: str, base: str = pointer) -> AuthFileError:
            return fail(base + where, message)

        entry = _entry(item, line, fail_in_entry)
        if entry.principal.name in names:
            raise fail(
                pointer,
                f"duplicate name {entry.principal.name!r} (first on line "
                f"{names[entry.principal.name]}); one line per principal",
            )
        if entry.token_sha256 in hashes:
            raise fail(
                pointer,
                f"duplicate token_sha256 (first on line {hashes[entry.token_sha256]}); "
                "issue each principal its own token with `bastion auth token`",
            )
        names[entry.principal.name] = hashes[entry.token_sha256] = line
        entries.append(entry)
    return tuple(entries)


def _entry(item: object, line: int, fail: Callable[[str, str], AuthFileError]) -> Entry:
    if not isinstance(item, dict):
        raise fail("", "each principal is a mapping {name, role, token_sha256}")
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise fail(f"/{unknown[0]}", f"unknown field {unknown[0]!r}; one of: {', '.join(_FIELDS)}")
    missing = [name for name in _FIELDS if name not in item]
    if missing:
        raise fail("", f"missing {', '.join(missing)}")
    name, role, digest = item["name"], item["role"], item["token_sha256"]
    if not isinstance(name, str) or check_name(name) is not None:
        raise fail("/name", f"name {name!r}: {check_name(str(name))}")
    try:
        parsed_role = Role.parse(role if isinstance(role, str) else "")
    except ValueError as error:
        raise fail("/role", f"{error} (got {role!r})") from None
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise fail(
            "/token_sha256",
            "token_sha256 must be 64 lowercase hex characters (the SHA-256 of the token, "
            "as `bastion auth token` prints it), never the token itself",
        )
    return Entry(Principal(name, parsed_role), digest, line)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request got no principal: 401 (no or unknown token) or 503 (file unusable)."""

    status: int
    reason: str  # missing_token | malformed_header | unknown_token | auth_file_invalid
    message: str


class Authenticator:
    """Bearer token → Principal, from an --auth file re-read whenever it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._entries: tuple[Entry, ...] | None = load_auth_file(path)  # AuthFileError: exit 2
        self._error: str | None = None

    @property
    def principals(self) -> tuple[Principal, ...]:
        return tuple(entry.principal for entry in self._current())

    def reload(self) -> None:
        """Re-read the file now (SIGHUP). A bad file fails closed until fixed."""
        with self._lock:
            self._signature = self._stat()
            self._read()

    def authenticate(self, authorization: str | None) -> Principal | Refusal:
        """The principal whose token the `Authorization: Bearer` header carries."""
        entries = self._current()
        if self._error is not None:
            message = "authentication unavailable: the --auth file is invalid; fix it"
            return Refusal(503, "auth_file_invalid", message)
        if not authorization:
            return Refusal(401, "missing_token", "send Authorization: Bearer <token>")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(authorization) > _MAX_HEADER_CHARS:
            return Refusal(401, "malformed_header", "send Authorization: Bearer <token>")
        digest = hash_token(token)
        found: Principal | None = None
        for entry in entries:  # every entry compared, in constant time each: no early exit
            if hmac.compare_digest(digest, entry.token_sha256):
                found = entry.principal
        if found is None:
            return Refusal(401, "unknown_token", "unknown or revoked token")
        return found

    def _current(self) -> tuple[Entry, ...]:
        signature = self._stat()
        if signature != self._signature:
            with self._lock:
                if signature != self._signature:
                    self._signature = signature
                    self._read()
        return self._entries or ()

    def _read(self) -> None:
        try:
            entries = load_auth_file(self.path)
        except AuthFileError as error:
            self._entries, self._error = None, str(error)
            log.error("auth_file_rejected", file=str(self.path), error=str(error)[:1000])
            return
        self._entries, self._error = entries, None
        log.info("auth_file_loaded", file=str(self.path), principals=len(entries))

    def _stat(self) -> tuple[int, int, int, int]:
        try:
            stat = os.stat(self.path)
        except OSError:
            return (0, 0, 0, 0)  # gone: the read that follows says so
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)
