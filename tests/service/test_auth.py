"""The --auth file, tokens, `bastion auth token`, and `bastion serve`'s refusals to start
(exit 2) when its exposure would be unsafe or its auth file is bad."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bastion.cli.main import main
from bastion.cli.serve_http import http_options, is_loopback
from bastion.service import auth as auth_module
from bastion.service.auth import (
    LOCAL,
    Authenticator,
    AuthFileError,
    Principal,
    Refusal,
    Role,
    hash_token,
    load_auth_file,
)
from tests.service.http_support import TOKENS, default_logging, write_auth_file  # noqa: F401

DIGEST = "a" * 64


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "principals.yaml"
    path.write_text(text)
    return path


def test_load_auth_file_when_valid_then_principals_with_roles(tmp_path: Path) -> None:
    """Each line: a principal, its role, the SHA-256 of its token."""
    path = write_auth_file(tmp_path / "principals.yaml")
    entries = load_auth_file(path)
    assert [(e.principal.name, e.principal.role) for e in entries] == [
        ("vera", Role.VIEWER),
        ("tom", Role.TRADER),
        ("olga", Role.OPERATOR),
        ("oscar", Role.OFFICER),
    ]
    assert entries[1].token_sha256 == hashlib.sha256(b"token-tom").hexdigest()
    assert [e.line for e in entries] == [2, 3, 4, 5]


BAD_FILES = {
    "unknown role": (
        f"principals:\n  - {{name: a, role: viewer, token_sha256: {DIGEST}}}\n"
        f"  - {{name: b, role: admin, token_sha256: {'b' * 64}}}\n",
        3,
        "unknown role 'admin'",
    ),
    "hash too short": ("principals:\n  - {name: a, role: viewer, token_sha256: abc}\n", 2, "64"),
    "hash upper case": (
        f"principals:\n  - {{name: a, role: viewer, token_sha256: {'A' * 64}}}\n",
        2,
        "lowercase hex",
    ),
    "duplicate name": (
        f"principals:\n  - {{name: a, role: viewer, token_sha256: {DIGEST}}}\n"
        f"  - {{name: a, role: trader, token_sha256: {'b' * 64}}}\n",
        3,
        "duplicate name 'a' (first on line 2)",
    ),
    "duplicate hash": (
        f"principals:\n  - {{name: a, role: viewer, token_sha256: {DIGEST}}}\n"
        f"  - {{name: b, role: trader, token_sha256: {DIGEST}}}\n",
        3,
        "duplicate token_sha256 (first on line 2)",
    ),
    "unknown field": (
        f"principals:\n  - {{name: a, role: viewer, token_sha256: {DIGEST}, token: x}}\n",
        2,
        "unknown field 'token'",
    ),
    "missing field": ("principals:\n  - {name: a, role: viewer}\n", 2, "missing token_sha256"),
    "bad name": (
        f"principals:\n  - {{name: 'a b', role: viewer, token_sha256: {DIGEST}}}\n",
        2,
        "name 'a b'",
    ),
    "yaml syntax": ("principals:\n  - {name: a\n", 3, "YAML syntax error"),
    "not a list": ("principals: alice\n", 1, "must be a list"),
    "unknown key": ("users: []\n", 1, "unknown key 'users'"),
    "empty file": ("", 1, "expected one mapping"),
}


@pytest.mark.parametrize(("text", "line", "named"), list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_load_auth_file_when_invalid_then_error_names_file_and_line(
    tmp_path: Path, text: str, line: int, named: str
) -> None:
    """Every problem names file:line and what is wrong."""
    path = _write(tmp_path, text)
    with pytest.raises(AuthFileError) as raised:
        load_auth_file(path)
    assert str(raised.value).startswith(f"{path}:{line}:")
    assert named in str(raised.value)


def test_authenticate_when_tokens_compared_then_every_entry_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sha256 hex of the token is compared with hmac.compare_digest against every
    entry, with no early exit (the first principal's token costs as much as the last's)."""
    authenticator = Authenticator(write_auth_file(tmp_path / "principals.yaml"))
    compared: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", counting)
    assert authenticator.authenticate(f"Bearer {TOKENS['vera']}") == Principal("vera", Role.VIEWER)
    assert len(compared) == 4
    assert all(a == hash_token(TOKENS["vera"]) for a, _ in compared)


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "missing_token"), ("", "missing_token"), ("Token x", "malformed_header")],
)
def test_authenticate_when_no_bearer_token_then_401_refusal(
    tmp_path: Path, header: str | None, reason: str
) -> None:
    """No header, or not a Bearer one: a 401 refusal with its reason."""
    authenticator = Authenticator(write_auth_file(tmp_path / "principals.yaml"))
    found = authenticator.authenticate(header)
    assert isinstance(found, Refusal) and (found.status, found.reason) == (401, reason)


def test_authenticator_when_file_deleted_then_fails_closed(tmp_path: Path) -> None:
    """A deleted --auth file accepts no token (503), it does not fall back to the old list."""
    path = write_auth_file(tmp_path / "principals.yaml")
    authenticator = Authenticator(path)
    path.unlink()
    found = authenticator.authenticate(f"Bearer {TOKENS['oscar']}")
    assert isinstance(found, Refusal) and found.reason == "auth_file_invalid"


def test_local_when_no_auth_then_officer_named_local() -> None:
    """Without --auth every caller is the officer "local"."""
    assert (LOCAL.name, LOCAL.role) == ("local", Role.OFFICER)


def test_auth_token_when_run_then_token_once_and_its_hash_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`bastion auth token` prints a random token and the line with its SHA-256."""
    assert main(["auth", "token", "alice", "--role", "operator", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["token"].startswith("bst_") and len(printed["token"]) > 40
    assert printed["token_sha256"] == hash_token(printed["token"])
    assert printed["line"] == (
        f"- {{name: alice, role: operator, token_sha256: {printed['token_sha256']}}}"
    )
    assert main(["auth", "token", "alice", "--role", "operator", "--format", "token"]) == 0
    second = capsys.readouterr().out.strip()
    assert second != printed["token"]


def test_auth_token_when_added_to_file_then_it_loads_and_a_duplicate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--add-to appends the line (file created 0600); a second alice leaves it unchanged."""
    path = tmp_path / "principals.yaml"
    assert main(["auth", "token", "alice", "--role", "trader", "--add-to", str(path)]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    token = capsys.readouterr().out.splitlines()[1].strip()
    assert Authenticator(path).authenticate(f"Bearer {token}") == Principal("alice", Role.TRADER)
    before = path.read_text()
    assert main(["auth", "token", "alice", "--role", "viewer", "--add-to", str(path)]) == 2
    assert "duplicate name 'alice'" in capsys.readouterr().err
    assert path.read_text() == before


def test_auth_token_when_name_has_spaces_then_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A name the file could not hold is refused."""
    assert main(["auth", "token", "a b", "--role", "viewer"]) == 2
    assert "NAME 'a b'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("bastion.internal", False),
    ],
)
def test_is_loopback_when_host_given_then_only_loopback_addresses(
    host: str, loopback: bool
) -> None:
    """Only loopback addresses (and "localhost") count; a host name may resolve anywhere."""
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--host", "0.0.0.0"], "--host 0.0.0.0 is not a loopback address"),
        (["--host", "10.0.0.5", "--port", "0"], "pass --auth FILE"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--auth-metrics"], "--auth-metrics needs --auth FILE"),
    ],
)
def test_serve_when_exposure_unsafe_then_exit_2_saying_why(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-loopback --host without --auth (and other unsafe or half options) is
    refused before anything starts, exit 2, with the reason and the fix."""
    assert main(["serve", *argv]) == 2
    assert named in capsys.readouterr().err


def test_serve_when_auth_file_bad_then_exit_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --auth file stops `bastion serve` at start: exit 2, file:line."""
    path = _write(tmp_path, "principals:\n  - {name: a, role: root, token_sha256: x}\n")
    assert main(["serve", "--auth", str(path), "--port", "0"]) == 2
    assert f"{path}:2: unknown role 'root'" in capsys.readouterr().err


def test_serve_when_non_loopback_without_auth_then_exit_2_in_a_real_process() -> None:
    """The same through the console script: exit status 2 and the reason on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr


def test_http_options_when_auth_given_then_any_host_allowed(tmp_path: Path) -> None:
    """With --auth, a non-loopback host is allowed (the callers are authenticated)."""
    path = write_auth_file(tmp_path / "principals.yaml")
    args = argparse.Namespace(
        host="0.0.0.0", auth=str(path), auth_metrics=True, tls_cert=None, tls_key=None
    )
    options = http_options(args)
    assert options.authenticator is not None and options.auth_metrics
