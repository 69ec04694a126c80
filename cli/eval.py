"""Evaluate the policies on one snapshot and print the decisions.

The policies are linted first (a set with errors is refused, exit 2). Time is the
snapshot's `as_of` unless --now says otherwise: the same inputs always give the
same decisions. Pass the state of the previous run with --state to continue
(escalation dwell times, breaker cooldowns, history-protection locks), and keep the new
one with --state-out (written atomically). The closed trades of the snapshot make the
history locks (`protection` decisions; `bastion locks list` shows them).

examples:
  bastion eval --snapshot examples/snapshots/atr-breach.json --explain
  bastion eval --snapshot examples/snapshots/trade-history.json   # closed trades, sectors
  bastion eval --snapshot examples/snapshots/option-chain.json --explain   # roll, listed chain
  bastion eval --snapshot snap.json --state state.json --state-out state.json
  bastion eval --snapshot snap.json --state state.json --state-out state.json \\
      --reset drawdown@account:gen-01 --by alice --reason "loss booked, limits reviewed"
  bastion eval --snapshot snap.json --format json | jq '.decisions[].reasons'

--reset BREAKER@SCOPE:ID takes only a breaker that is tripped or cooling down for that
subject in the --state given (as POST /api/v1/breakers/reset answers 409): a misspelt
id, an unknown breaker or one that is armed is exit 2, naming every breaker not armed
with the exact --reset argument for it. The "breakers not armed" lines of the output
list them too.

Exit 0 on success (whatever the decisions), 2 when an input cannot be read (the
file and field are named) or a --reset names nothing to reset.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from bastion.cli.files import read_json, write_json_atomic
from bastion.engine.decision import Decision
from bastion.engine.errors import UsageError
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate, polling_interval_s
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.model import PolicySet
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.state import State

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        default="policies",
        metavar="DIR",
        help="policy directory or files (default: policies)",
    )
    parser.add_argument(
        "--snapshot",
        required=True,
        metavar="FILE",
        help="snapshot JSON (schemas/snapshot.schema.json); optional `trades` and "
        "`instruments` sections feed the history protections and sector limits, "
        "`option_chains` the roll candidates (listed contracts only)",
    )
    parser.add_argument("--state", metavar="FILE", help="state from a previous run")
    parser.add_argument("--state-out", metavar="FILE", help="write the new state here")
    parser.add_argument(
        "--now", metavar="ISO8601", help="evaluation time (default: the snapshot's as_of)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print every decision's trace and inputs"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--reset",
        action="append",
        default=[],
        metavar="BREAKER@SUBJECT",
        help="manually reset a tripped breaker, e.g. drawdown@account:gen-01 (as the "
        "output's `breakers not armed:` lines spell it); one not tripped or cooling down "
        "in the --state given is exit 2, naming what is",
    )
    parser.add_argument("--by", help="who resets (required with --reset)")
    parser.add_argument("--reason", help="why (required with --reset)")


def parse_now(text: str | None, snapshot: Snapshot) -> datetime:
    if text is None:
        return snapshot.as_of
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time like 2026-11-20T15:30:00Z"
        ) from error
    if value.tzinfo is None:
        raise UsageError(f"--now {text!r} has no timezone; add Z or +00:00")
    return value


def parse_resets(args: argparse.Namespace) -> list[ManualReset]:
    if not args.reset:
        return []
    if not args.by or not args.reason:
        raise UsageError("--reset needs --by NAME and --reason TEXT (they go into the record)")
    resets = []
    for item in args.reset:
        breaker, _, subject = item.partition("@")
        if not breaker or ":" not in subject:
            raise UsageError(
                f"--reset {item!r} must look like BREAKER@SCOPE:ID, "
                "e.g. drawdown@account:gen-01 or portfolio_loss@portfolio:all"
            )
        resets.append(ManualReset(breaker, subject, args.by, args.reason))
    return resets


def check_resets(resets: list[ManualReset], state: State, policy_set: PolicySet) -> None:
    """Every reset must name a breaker tripped or cooling down for its subject in
    `state` — else UsageError (exit 2), as the HTTP endpoint's 409: what is not armed,
    each with the --reset argument that names it, and the known breaker ids when the
    id itself is unknown."""
    not_armed = {
        key.partition(":")[2]: breaker.status
        for key, breaker in sorted(state.breakers.items())
        if breaker.status != "armed"
    }
    for reset in resets:
        label = f"{reset.breaker_id}@{reset.subject}"
        if label in not_armed:
            continue
        listed = ", ".join(f"--reset {key} ({status})" for key, status in not_armed.items())
        known = sorted(
            {b.id for p in policy_set.of_kind("BreakerPolicy") if p.spec for b in p.spec.breakers}
        )
        unknown = (
            f"; no breaker is named {reset.breaker_id!r} in the policies (known: "
            f"{', '.join(known)})"
            if reset.breaker_id not in known
            else ""
        )
        where = "in the --state given" if state.evaluated_at else "(no --state given: all armed)"
        raise UsageError(
            f"--reset {label}: {reset.breaker_id} is not tripped or cooling down for "
            f"{reset.subject} {where}: nothing to reset{unknown}; not armed now: "
            f"{listed or 'none'}"
        )


def render_text(decisions: tuple[Decision, ...], state: State, interval: Any, explain: bool) -> str:
    lines = []
    for decision in decisions:
        if explain:
            lines.append(decision.explain())
            lines += [f"    {name} = {value}" for name, value in decision.inputs]
            lines.append("")
        else:
            # Not `HALTED -> halted` nor `roll -> roll`: an action that only repeats the
            # outcome says nothing more.
            repeats = [a.lower() for a in decision.actions] == [decision.outcome.lower()]
            actions = (
                f" -> {', '.join(decision.actions)}" if decision.actions and not repeats else ""
            )
            shadow = " [shadow]" if decision.mode == "shadow" else ""
            reason = decision.reasons[0] if decision.reasons else ""
            lines.append(
                f"{decision.kind:<13} {decision.subject.label():<26} "
                f"{decision.outcome}{actions}{shadow}: {reason}"
            )
    if not decisions:
        lines.append("no decisions: nothing crossed a threshold")
    states = ", ".join(f"{k} {v}" for k, v in sorted(state.trading_states.items()))
    lines.append(f"trading states: {states or 'none'}; next evaluation in {interval} s")
    lines += _tripped(state)
    return "\n".join(lines) + "\n"


def _tripped(state: State) -> list[str]:
    """Tripped breakers, each with the --reset argument that resets it."""
    lines = []
    for key, breaker in sorted(state.breakers.items()):
        if breaker.status == "armed":
            continue
        policy, _, rest = key.partition(":")
        until = breaker.until.isoformat() if breaker.until else "?"
        wait = "awaiting a manual reset" if breaker.awaiting_manual_reset else f"until {until}"
        lines.append(f"  {breaker.status}: {rest} ({policy}; {wait}) -> --reset {rest}")
    if lines:
        lines.insert(0, "breakers not armed:")
    return lines


def run(args: argparse.Namespace) -> int:
    resets = parse_resets(args)
    policy_set = load_policy_set([args.policies])
    snapshot = load_snapshot(args.snapshot)
    state = State.from_dict(read_json(args.state, "state")) if args.state else State()
    now = parse_now(args.now, snapshot)
    if state.evaluated_at is not None and now < state.evaluated_at:
        raise UsageError(
            f"evaluation time {now.isoformat()} is before the state's last evaluation "
            f"({state.evaluated_at.isoformat()}); time only moves forward — pass a later "
            "--now or a newer snapshot"
        )
    check_resets(resets, state, policy_set)
    compiled = compile_policy_set(policy_set)
    try:
        decisions, new_state = evaluate(compiled, snapshot, state, now, resets=resets)
        interval = polling_interval_s(compiled, new_state)
    finally:
        compiled.close()
    if args.state_out:
        write_json_atomic(args.state_out, new_state.to_dict())
    if args.format == "json":
        payload = {
            "decisions": [d.to_dict() for d in decisions],
            "state": new_state.to_dict(),
            "polling_interval_s": str(interval),
            "policy_set_version": policy_set.version,
        }
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(decisions, new_state, interval, args.explain))
    return 0
