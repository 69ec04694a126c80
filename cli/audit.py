"""`bastion audit verify|show`: check and read the tamper-evident audit trail."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bastion.service.audit import key_from_env
from bastion.service.audit_format import AuditRecord, parse_time
from bastion.service.audit_plain import canonical, format_time
from bastion.service.audit_read import read_records
from bastion.service.audit_verify import VerifyResult, verify
from bastion.service.ray.audit_chains import render_chains, verify_chains

EXIT_INTACT, EXIT_TAMPERED = 0, 1
DEFAULT_DIR = "audit"
SHOWN_PROBLEMS = 50

HELP = """The audit trail written by `bastion serve --audit DIR`.

  bastion audit verify [DIR]   check the hash chain (and HMACs with BASTION_AUDIT_KEY)
  bastion audit show [DIR]     print records, filtered by time, kind, subject, principal
"""

VERIFY_HELP = """Check an audit trail: every line's hash, the chain across lines and rotated
files, the genesis record, and (when BASTION_AUDIT_KEY is set) every HMAC.

Prints one line per problem, the first one first, as file:line and what happened
(edited, removed, reordered, truncated, a rotated or the first file removed, no or
wrong HMAC), then a summary. A line torn by a crash and recorded by the next file's
`audit_truncation_detected` record is shown as a note, not a problem.

Lines cut from the end of the newest file leave no trace in the trail itself; give
--anchor SEQ:HASH (a head the service logged or reported) to check them too.

examples:
  bastion audit verify                              # ./audit
  BASTION_AUDIT_KEY=... bastion audit verify /var/lib/bastion/audit
  bastion audit verify audit/ --format json
  bastion audit verify audit/ --anchor 10422:9c371d00a56f...
  bastion audit verify audit/                       # --ray: audit/head/, audit/partition-K/

A directory with no audit file but subdirectories that hold chains (`bastion serve
--ray`: head/ and partition-K/) has every chain verified; all must be intact.

Exit codes: 0 intact, 1 tampered or damaged (the first file:line is named),
2 unreadable directory, no audit files, or bad arguments.
"""

SHOW_HELP = """Print audit records in chain order, filtered. Times are ISO 8601 (UTC when
no offset is given); --since is inclusive, --until exclusive; --subject and --principal
take exact values or shell patterns; --kind may be repeated.

Text: one line per record (time, kind, principal, subject, short summary); json: the
records as JSON lines, as written. Lines that cannot be read are skipped with a warning
on stderr: `bastion audit verify` judges the chain, `show` only reads it.

examples:
  bastion audit show audit/ --kind order_checked --since 2026-12-01T09:00
  bastion audit show audit/ --subject 'account:acc-1*' --format json
  bastion audit show audit/ --principal alice --kind breaker_reset_requested

Exit codes: 0 (even when nothing matches), 2 unreadable directory or bad arguments.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "verify",
        help="check the hash chain and HMACs",
        description=VERIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("directory", nargs="?", default=DEFAULT_DIR, metavar="DIR")
    check.add_argument("--anchor", type=_anchor, metavar="SEQ:HASH", help="a known head record")
    check.add_argument("--format", choices=["text", "json"], default="text")
    show = sub.add_parser(
        "show",
        help="print records, filtered",
        description=SHOW_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("directory", nargs="?", default=DEFAULT_DIR, metavar="DIR")
    show.add_argument("--since", type=_time, metavar="TIME", help="from this time (inclusive)")
    show.add_argument("--until", type=_time, metavar="TIME", help="before this time")
    show.add_argument("--kind", action="append", default=[], help="a record kind (repeatable)")
    show.add_argument("--subject", help="subject, exact or a pattern (account:*)")
    show.add_argument("--principal", help="who, exact or a pattern")
    show.add_argument("--format", choices=["text", "json"], default="text")


def run(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "verify": _verify,
        "show": _show,
    }
    return handlers[args.audit_command](args)


def _verify(args: argparse.Namespace) -> int:
    key = key_from_env(os.environ)
    chains = [] if args.anchor else verify_chains(Path(args.directory), key=key)
    if chains:  # `bastion serve --ray`: DIR/head/ and DIR/partition-K/, checked together
        ok = all(chain.result.ok for chain in chains)
        if args.format == "json":
            body = {"ok": ok, "chains": {c.name: c.result.to_dict() for c in chains}}
            sys.stdout.write(json.dumps(body, indent=2) + "\n")
        else:
            sys.stdout.write(render_chains(chains, render_verify))
        return EXIT_INTACT if ok else EXIT_TAMPERED
    result = verify(Path(args.directory), key=key_from_env(os.environ), anchor=args.anchor)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_verify(result))
    return EXIT_INTACT if result.ok else EXIT_TAMPERED


def render_verify(result: VerifyResult) -> str:
    lines = [f"{p.location}: {p.what}" for p in result.problems[:SHOWN_PROBLEMS]]
    if len(result.problems) > SHOWN_PROBLEMS:
        more = len(result.problems) - SHOWN_PROBLEMS
        lines.append(f"... and {more} more problem(s) (--format json lists them all)")
    lines += [f"note: {n.location}: {n.what}" for n in result.notes]
    span = (
        f"chain from {_when(result.first_at)} to {_when(result.last_at)}"
        if result.records
        else "no records"
    )
    counts = f"{result.records} records in {result.files} files"
    if result.ok:
        lines.append(f"intact: {counts}, {span}, hmac: {result.hmac}")
    else:
        lines.append(
            f"TAMPERED: {len(result.problems)} problem(s), the first at {result.first_bad}; "
            f"{counts} read, {span}, hmac: {result.hmac}"
        )
    return "\n".join(lines) + "\n"


def _show(args: argparse.Namespace) -> int:
    def warn(location: str, why: str) -> None:
        print(f"warning: {location}: {why}; skipped (run `bastion audit verify`)", file=sys.stderr)

    records = read_records(
        Path(args.directory),
        since=args.since,
        until=args.until,
        kinds=args.kind,
        subject=args.subject,
        principal=args.principal,
        on_unreadable=warn,
    )
    render = _json_line if args.format == "json" else render_record
    for record in records:
        sys.stdout.write(render(record) + "\n")
    return 0


def render_record(record: AuditRecord) -> str:
    return "  ".join(
        [
            format_time(record.at),
            record.kind,
            record.principal or "-",
            record.subject or "-",
            record.summary(),
        ]
    ).rstrip()


def _json_line(record: AuditRecord) -> str:
    return canonical(record.to_dict()).decode("ascii")  # byte for byte the line as written


def _when(at: datetime | None) -> str:
    return format_time(at) if at is not None else "?"


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO time (e.g. 2026-12-01T09:00 or 2026-12-01T09:00:00Z)"
        ) from None


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not (seq.isdigit() and len(digest) == 64):
        raise argparse.ArgumentTypeError(f"{text!r}: want SEQ:HASH (a seq and 64 hex digits)")
    return int(seq), digest.lower()
