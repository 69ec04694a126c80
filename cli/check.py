"""Check one order before it is sent: approve, downsize or deny, with every reason.

The policies are linted first (a set with errors is refused, exit 2). The order
request is checked against the protection hierarchy (core asset immunity, regime
override, grace period, holding period, whipsaw protection), the history locks an
open or increase falls under (made by `bastion eval` from the closed trades; see
`bastion locks`), and the pre-trade limits
(trading state, kill switch, region, liquidity, open positions, submit rate, risk,
exposure and notional limits, which may shrink the order); a tripped reduce_size breaker
shrinks the orders adding exposure in its subject too. Time is the snapshot's
`as_of` unless --now says otherwise: the same inputs always give the same decision.
Pass the state of the previous run with --state (submit times, override cooldowns,
grace clocks, trading states, tripped breakers and history locks set by `bastion eval`) and
keep the new one with
--state-out (written atomically). The request format is schemas/request.schema.json.

examples:
  bastion check --snapshot examples/check/approval/snapshot.json \\
      --request examples/check/approval/request.json
  bastion check --snapshot examples/check/downsize/snapshot.json \\
      --request examples/check/downsize/request.json --explain
  bastion check --snapshot snap.json --request order.json \\
      --state state.json --state-out state.json
  bastion check --snapshot snap.json --request order.json --format json | jq .decision.reasons

Exit 0 approved (or downsized: the order may be sent at the approved size), 1 denied,
2 when an input cannot be read (the file and field are named).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.cli.eval import parse_now
from bastion.cli.files import read_json, write_json_atomic
from bastion.engine.authority.check import (
    DENIED,
    DOWNSIZED,
    ExecutionDecision,
    can_execute,
    resolve_account,
)
from bastion.engine.authority.request import OrderRequest, RequestError, load_request
from bastion.engine.decision import render_value
from bastion.engine.errors import UsageError
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.state import State, StateError

HELP = __doc__ or ""
EXIT_APPROVED = 0
EXIT_DENIED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        default="policies",
        metavar="DIR",
        help="policy directory or files (default: policies)",
    )
    parser.add_argument("--snapshot", required=True, metavar="FILE", help="snapshot JSON")
    parser.add_argument(
        "--request",
        required=True,
        metavar="FILE",
        help="order request JSON (schemas/request.schema.json)",
    )
    parser.add_argument("--state", metavar="FILE", help="state from a previous run")
    parser.add_argument("--state-out", metavar="FILE", help="write the new state here")
    parser.add_argument(
        "--now", metavar="ISO8601", help="decision time (default: the snapshot's as_of)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the ordered trace of checks with values"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def read_state(path: str | None) -> State:
    """The state file, or an empty state; a malformed file names itself (exit 2)."""
    if path is None:
        return State()
    try:
        return State.from_dict(read_json(path, "state"))
    except StateError as error:
        raise StateError(f"{path}: {error}") from error


def check_account(request: OrderRequest, snapshot: Snapshot, request_path: str) -> None:
    """The request's account must be in the snapshot: a typo is unreadable input
    (exit 2), not a denial."""
    try:
        resolve_account(snapshot, request.account_id)
    except LookupError as error:
        raise RequestError(f"{request_path}: {error}") from error


def _size(value: Decimal | None) -> str:
    return "?" if value is None else render_value(value)


def _override_line(decision: ExecutionDecision) -> str:
    if decision.override_applied:
        return f"override: applied — {decision.override_reason}"
    trace = decision.decision.trace
    details = [check.detail for check in trace if check.name == "regime_override"]
    return "override: not applied" + (f" ({details[-1]})" if details else "")


def headline(decision: ExecutionDecision) -> str:
    request = decision.request
    inputs = dict(decision.decision.inputs)
    account = inputs.get("account_id") or request.account_id or "?"
    what = f"{request.action} {request.symbol} in {account}"
    if "current_size" in inputs:
        what += f" ({inputs['current_size']} → {_size(decision.requested_size)} units)"
    if decision.outcome == DENIED:
        return f"DENIED: {what} — do not send this order"
    if decision.outcome == DOWNSIZED:
        requested, approved = _size(decision.requested_size), _size(decision.approved_size)
        added = ""
        asked, allowed = decision.requested_size, decision.approved_size
        if "current_size" in inputs and asked is not None and allowed is not None:
            current = Decimal(inputs["current_size"])
            added = (
                f" (add {render_value(allowed - current)} units, "
                f"not {render_value(asked - current)})"
            )
        return (
            f"DOWNSIZED from {requested} to {approved} units: {request.action} {request.symbol} "
            f"in {account} — send it at the reduced size, a target of {approved} units{added}"
        )
    return f"APPROVED: {what}"


def render_text(decision: ExecutionDecision, explain: bool) -> str:
    lines = [headline(decision)]
    lines += [f"  because {reason}" for reason in decision.reasons]
    lines.append(f"blocking: {', '.join(decision.blocking) or 'none'}")
    lines.append(_override_line(decision))
    if explain:
        record = decision.decision
        lines.append(
            f"decision {record.id}: policy {record.policy} @ "
            f"{record.policy_version.removeprefix('sha256:')[:12]}, rule {record.rule}, "
            f"at {record.time.isoformat()}"
        )
        lines.append("trace:")
        for check in record.trace:
            mark = "✓" if check.passed else "✗"
            lines.append(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
            lines += [f"      {name} = {value}" for name, value in check.values]
        if record.inputs:
            lines.append("inputs:")
            lines += [f"    {name} = {value}" for name, value in record.inputs]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    policy_set = load_policy_set([args.policies])
    snapshot = load_snapshot(args.snapshot)
    request = load_request(args.request)
    check_account(request, snapshot, args.request)
    state = read_state(args.state)
    now: datetime = parse_now(args.now, snapshot)
    if state.evaluated_at is not None and now < state.evaluated_at:
        raise UsageError(
            f"decision time {now.isoformat()} is before the state's last evaluation "
            f"({state.evaluated_at.isoformat()}); time only moves forward — pass a later "
            "--now or a newer snapshot"
        )
    compiled = compile_policy_set(policy_set)
    try:
        decision = can_execute(compiled, request, snapshot, state, now)
    finally:
        compiled.close()
    if args.state_out:
        write_json_atomic(args.state_out, decision.state.to_dict())
    if args.format == "json":
        payload: dict[str, Any] = {
            "decision": decision.to_dict(),
            "state": decision.state.to_dict(),
        }
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(decision, args.explain))
    return EXIT_APPROVED if decision.approved else EXIT_DENIED
