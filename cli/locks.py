"""List or release the history-protection locks held in a state file.

A history protection (ProtectionPolicy `history:`: stop-loss guard, cooldown, low
profit, drawdown) that fires locks opens and increases for a symbol, side, strategy
or account until a time. The locks live in the state: the file `bastion eval` and
`bastion check` write with --state-out, or the --state file of `bastion serve` (both
are read). Time is the state's last evaluation unless --now says otherwise.

  list      the locks blocking at that time (--all: released ones too)
  release   end one lock now, with who and why (--by, --reason): it stops blocking and
            is kept, released, until its own end, so that the trades that fired it do
            not lock again at the next evaluation (a newer triggering trade does)

A running `bastion serve` keeps its state in memory: release there with
POST /api/v1/locks/release (officer), not with this command, or the service's next
save writes the lock back.

examples:
  bastion locks list --state state.json
  bastion locks list --state state.json --format json
  bastion locks release default-protection/stoploss-guard/gen-01/account \\
      --state state.json --by alice --reason "stops reviewed, strategy re-armed"

Exit 0 on success, 1 when release names no active lock (the active ones are listed),
2 when an input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.cli.files import read_json, write_json_atomic
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.authority.history.release import LockNotFound, release_lock
from bastion.engine.errors import UsageError
from bastion.engine.state import State
from bastion.service.state_store import StateStore

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "release"), help="list or release")
    parser.add_argument("lock", nargs="?", help="release: the lock's id, as `list` shows it")
    parser.add_argument("--state", required=True, metavar="FILE", help="the state file")
    parser.add_argument(
        "--state-out", metavar="FILE", help="release: write here (default: --state itself)"
    )
    parser.add_argument(
        "--now", metavar="ISO8601", help="the time (default: the state's last evaluation)"
    )
    parser.add_argument("--all", action="store_true", help="list: released locks too")
    parser.add_argument("--by", help="release: who releases (kept with the lock)")
    parser.add_argument("--reason", help="release: why (kept with the lock)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    document, state = _read(Path(args.state))
    now = _now(args.now, state)
    if args.action == "list":
        shown = [lock for _, lock in sorted(state.locks.items()) if args.all or lock.active(now)]
        _print_list(shown, now, args.format)
        return 0
    if not args.lock or not args.by or not args.reason:
        raise UsageError("release needs LOCK, --by NAME and --reason TEXT (kept with the lock)")
    try:
        locks, released = release_lock(state.locks, args.lock, args.by, args.reason, now)
    except LockNotFound as error:
        sys.stderr.write(f"bastion locks: {error}\n")
        return 1
    _write(Path(args.state_out or args.state), document, replace(state, locks=locks))
    if args.format == "json":
        sys.stdout.write(json.dumps({"released": _shown(released, now)}, indent=2) + "\n")
    else:
        sys.stdout.write(
            f"released {released.id} (was locked until {released.until.isoformat()}) "
            f"by {released.released_by}: {released.release_reason}\n"
        )
    return 0


def _read(path: Path) -> tuple[dict[str, Any] | None, State]:
    """The state, and the `bastion serve` document around it (None: a plain state file)."""
    data = read_json(path, "state")
    if isinstance(data, dict) and "engine" in data:
        loaded = StateStore(path).load()  # the digest is checked: no hand-edited file
        assert loaded is not None
        document = dict(loaded.body)
        return document, State.from_dict(document["engine"])
    return None, State.from_dict(data)


def _write(path: Path, document: dict[str, Any] | None, state: State) -> None:
    if document is None:
        write_json_atomic(path, state.to_dict())
    else:
        StateStore(path).save({**document, "engine": state.to_dict()})


def _now(text: str | None, state: State) -> datetime:
    if text is None:
        if state.evaluated_at is None:
            raise UsageError("the state has no evaluation time; pass --now ISO8601")
        return state.evaluated_at
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time like 2026-11-20T15:30:00Z"
        ) from error
    if value.tzinfo is None:
        raise UsageError(f"--now {text!r} has no timezone; add Z or +00:00")
    return value


def _shown(lock: HistoryLock, now: datetime) -> dict[str, Any]:
    return {"id": lock.id, "active": lock.active(now), **lock.to_dict()}


def _print_list(locks: list[HistoryLock], now: datetime, format: str) -> None:
    if format == "json":
        payload = {"now": now.isoformat(), "locks": [_shown(lock, now) for lock in locks]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    if not locks:
        sys.stdout.write(f"no history locks at {now.isoformat()}\n")
        return
    for lock in locks:
        state = "released" if lock.released_at is not None else "active"
        sys.stdout.write(
            f"{lock.id}  {state} until {lock.until.isoformat()}\n"
            f"    {lock.protection} ({lock.method}) on {lock.describe()}: {lock.reason}\n"
            f"    trades: {', '.join(lock.trade_ids)}\n"
        )
