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

An order list checks every leg and answers for the list as a whole: the request file
holds {"id", "contingency": bracket | oco | oto | none, "orders": [order request + "role"]}
(see README "Order lists and brackets"). A bracket's stop_loss and take_profit are checked
against the position after its entry, downsized with it, and refused on the wrong side
of the entry price; if any leg is denied, send none of the list:
  bastion check --snapshot examples/check/bracket/snapshot.json \\
      --request examples/check/bracket/request.json
A modify (action modify, with modified_order_id and the order's new target_size) runs
the exposure limits on the units it adds and counts against orders.modify_rate:
  bastion check --snapshot examples/check/modify/snapshot.json \\
      --request examples/check/modify/request.json
The instrument's rules (the snapshot's instruments.SYMBOL: tick_size, lot_size,
min/max_quantity, min/max_notional; stricter ones in the LimitPolicy's `instruments:`)
and the order's shape (order_type, price, trigger_price, reduce_only, time_in_force gtd
with expire_at) are checked too: off the lot is rounded down, off the tick, below a
minimum, a reduce-only order larger than the position or an expired gtd are denied:
  bastion check --snapshot examples/check/instrument-lot/snapshot.json \\
      --request examples/check/instrument-lot/request.json

Exit 0 approved (or downsized: the order may be sent at the approved size), 1 denied
(for a list: any leg denied), 2 when an input cannot be read (the file and field are named).
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
from bastion.engine.authority.order_list import OrderList, load_document
from bastion.engine.authority.order_list_check import ListDecision, check_list
from bastion.engine.authority.request import OrderRequest, RequestError
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
        help="order request JSON (schemas/request.schema.json), or an order list "
        '{"id", "contingency", "orders": [...]}: one decision per leg and one for the list',
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
    document = load_document(args.request)
    requests = (
        [leg.request for leg in document.legs] if isinstance(document, OrderList) else [document]
    )
    for request in requests:
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
        if isinstance(document, OrderList):
            listed = check_list(compiled, document, snapshot, state, now)
            return _list_out(args, listed)
        decision = can_execute(compiled, document, snapshot, state, now)
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


def _list_out(args: argparse.Namespace, listed: ListDecision) -> int:
    """An order list's answer: the list's headline, then each leg as a single check's."""
    if args.state_out:
        write_json_atomic(args.state_out, listed.state.to_dict())
    if args.format == "json":
        payload = {"order_list": listed.to_dict(), "state": listed.state.to_dict()}
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_list(listed, args.explain))
    return EXIT_APPROVED if listed.approved else EXIT_DENIED


def render_list(listed: ListDecision, explain: bool) -> str:
    order_list = listed.order_list
    what = f"{order_list.contingency} {order_list.id} ({len(listed.legs)} orders)"
    if listed.outcome == DENIED:
        head = f"DENIED: {what} — denied as a whole: send none of its orders"
    elif listed.outcome == DOWNSIZED:
        head = f"DOWNSIZED: {what} — send every order at its approved size"
    else:
        head = f"APPROVED: {what}"
    lines = [head]
    lines += [f"  because {reason}" for reason in listed.reasons]
    for leg in listed.legs:
        lines.append(f"leg {leg.index} {leg.role}: {_leg_line(leg)}")
        lines += [f"    because {reason}" for reason in leg.reasons]
        if explain:
            lines += [
                "    " + line
                for line in render_text(leg.result, True).splitlines()
                if line.startswith(("  ✓", "  ✗", "trace:"))
            ]
    lines.append(f"blocking: {', '.join(listed.blocking) or 'none'}")
    if explain:
        record = listed.decision
        lines.append(f"decision {record.id}: list of {len(listed.legs)} leg decisions")
    return "\n".join(lines) + "\n"


def _leg_line(leg: Any) -> str:
    request = leg.result.request
    target = leg.approved_size if leg.outcome != DENIED else leg.result.requested_size
    sizes = f"{_size(request.current_size)} → {_size(target)} units"
    return f"{leg.outcome.upper()} {request.action} {request.symbol} ({sizes})"
