"""Issue API tokens for `bastion serve --auth FILE`.

`bastion auth token NAME --role ROLE` prints a new random token once (256 bits from
the operating system) and the line to add under `principals:` in the --auth file,
which keeps only the token's SHA-256: the token itself is never stored, so print it
straight to the person or secret store that will use it. The running service re-reads
the file when it changes: the new token works at the next request.

Roles, each including the one before: viewer (GET status, policies; metrics with
--auth-metrics), trader (POST /api/v1/check, /api/v1/orders), operator (breaker resets,
POST /-/reload), officer (a reload that removes protection).

Revoke: delete the principal's line from the --auth file (or replace its hash with a
new token's); the next request with the old token gets 401.

examples:
  bastion auth token alice --role operator
  bastion auth token order-router --role trader --format json
  bastion auth token grafana --role viewer --add-to principals.yaml --format token > grafana.token
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bastion.engine.errors import UsageError
from bastion.service.auth import (
    AuthFileError,
    Role,
    check_name,
    entry_line,
    hash_token,
    load_auth_file,
    new_token,
)

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="auth_command", metavar="ACTION", required=True)
    token = sub.add_parser(
        "token",
        help="print a new token for NAME, and the --auth file line to add",
        description="Print a new random token for NAME once, and the line to add under "
        "`principals:` in the --auth file (which keeps only its SHA-256).",
    )
    token.add_argument("name", metavar="NAME", help="who will use the token (a person or system)")
    token.add_argument(
        "--role",
        required=True,
        choices=[role.label for role in Role],
        help="viewer < trader < operator < officer; each includes the one before",
    )
    token.add_argument(
        "--add-to",
        metavar="FILE",
        help="also append the line to this --auth file (created, mode 0600, when missing); "
        "refused, the file unchanged, when the result would not load (a duplicate name)",
    )
    token.add_argument(
        "--format",
        choices=("text", "json", "token"),
        default="text",
        help="token: the token alone, for a secret file or a pipe",
    )


def run(args: argparse.Namespace) -> int:
    problem = check_name(args.name)
    if problem is not None:
        raise UsageError(f"NAME {args.name!r}: {problem}")
    role = Role.parse(args.role)
    token = new_token()
    digest = hash_token(token)
    line = entry_line(args.name, role, digest)
    if args.add_to:
        add_line(Path(args.add_to), line)
    if args.format == "token":
        print(token)
        return 0
    if args.format == "json":
        payload = {"name": args.name, "role": role.label, "token": token, "token_sha256": digest}
        print(json.dumps({**payload, "line": line.strip()}))
        return 0
    print(f"token for {args.name} ({role.label}), shown once; it is not stored anywhere:")
    print(f"  {token}")
    if args.add_to:
        print(f"added to {args.add_to}:")
    else:
        print("add this line under `principals:` in the --auth file:")
    print(line)
    return 0


def add_line(path: Path, line: str) -> None:
    """Append a principal's line to an --auth file, keeping it loadable: the file is
    replaced atomically only when the result loads; else AuthFileError, unchanged."""
    before = path.read_text(encoding="utf-8") if path.exists() else "principals:\n"
    if before and not before.endswith("\n"):
        before += "\n"
    candidate = path.with_name(f".{path.name}.new")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(before + line + "\n")
    try:
        load_auth_file(candidate)
    except AuthFileError as error:
        candidate.unlink()
        where = str(error).replace(str(candidate), str(path), 1)
        raise AuthFileError(f"{where} (not added: {path} is unchanged)") from error
    if path.exists():
        os.chmod(candidate, path.stat().st_mode & 0o777)
    os.replace(candidate, path)
