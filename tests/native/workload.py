"""One deterministic stream of order checks, printed as JSON lines: run in this process
(the compiled order check when `make install` built it) and in a child running the same
modules as Python (test_native.py), the two outputs must be byte-identical.

The stream: bench/check's seeded mix (every action, four accounts, core assets, grace
floors, a kill-switched account, submit-rate bursts), each decision's `to_dict()` with
its reasons and audit record, the state fed forward; the bracket, its list and the
modify of bench/check/lists.py; and the NautilusTrader comparison's stream (notional
cap, submit rate, trading-state changes)."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "check"))

import lists  # noqa: E402
import peer_nautilus  # noqa: E402
from snapshots import make_requests, make_snapshot  # noqa: E402

from bastion.engine.authority.check import can_execute  # noqa: E402
from bastion.engine.authority.order_list_check import check_list  # noqa: E402
from bastion.engine.evaluation.compiled import compile_policy_set  # noqa: E402
from bastion.engine.lint.runner import load_policy_set  # noqa: E402
from bastion.engine.state import State  # noqa: E402


def _line(kind: str, value: Any) -> str:
    return kind + " " + json.dumps(value, sort_keys=True, default=str)


def _state(state: State) -> str:
    return hashlib.sha256(repr(state).encode()).hexdigest()


def lines(mix: int = 1_500, peer: int = 2_000) -> Iterator[str]:
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    try:
        work = make_requests(make_snapshot(), mix)
        state = work.state
        for request, now in zip(work.requests, work.times, strict=True):
            result = can_execute(policies, request, work.snapshot, state, now)
            yield _line("check", result.to_dict())
            state = result.state
        yield _line("state", _state(state))
        entry, bracket, modify = lists.cases(work.snapshot)
        now = work.times[-1]
        for order in (entry, modify):
            yield _line("single", can_execute(policies, order, work.snapshot, state, now).to_dict())
        listed = check_list(policies, bracket, work.snapshot, state, now)
        yield _line("list", listed.to_dict())
    finally:
        policies.close()
    yield from _peer(peer)


def _peer(count: int) -> Iterator[str]:
    work = peer_nautilus.make_workload(count)
    with tempfile.TemporaryDirectory() as folder:
        policies = peer_nautilus.bastion_policies(Path(folder))
    try:
        side = peer_nautilus.Bastion(policies, work)
        state = State()
        for index, (request, now) in enumerate(zip(side.requests, side.times, strict=True)):
            change = side.changes.get(index)
            if change is not None:
                state = replace(state, trading_states={peer_nautilus.ACCOUNT: change})
            result = can_execute(policies, request, side.snapshot, state, now)
            yield _line("peer", [result.approved, result.outcome, list(result.blocking)])
            state = result.state
        yield _line("state", _state(state))
    finally:
        policies.close()


if __name__ == "__main__":
    from bastion.engine.authority import check

    print(_line("module", Path(str(check.__file__)).suffix))
    for line in lines():
        print(line)
