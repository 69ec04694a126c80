"""The order-list and modify cases of bench/check: a bracket (entry, stop-loss,
take-profit) and a modify, each timed against a single order measured in the same run.

The single order is the bracket's entry alone (an open of S100 in acc-0, within every
limit); the bracket is that entry with a stop-loss and a take-profit closing it; the
modify raises an order in S000 by one unit. Each is checked from the same starting state
(a question: nothing fed forward), so the figures compare like with like. Target (issue):
a bracket's cost per leg, and a modify's, within 1.2x of the single order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from bastion.engine.authority.check import can_execute
from bastion.engine.authority.order_list import OrderLeg, OrderList
from bastion.engine.authority.order_list_check import check_list
from bastion.engine.authority.request import OrderRequest
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

RATIO_TARGET = 1.2
ROUNDS = 7
ACCOUNT, SYMBOL, HELD_SYMBOL = "acc-0", "S100", "S000"


def cases(snapshot: Snapshot) -> tuple[OrderRequest, OrderList, OrderRequest]:
    """The single order, the bracket built on it, and the modify."""
    price = snapshot.market[SYMBOL].price_usd
    units = (Decimal(20_000) / price).quantize(Decimal(1))
    entry = OrderRequest(
        symbol=SYMBOL,
        action="open",
        account_id=ACCOUNT,
        target_size=units,
        strategy_id="trend_following_v1",
        size_increment=Decimal(1),
        order_type="limit",
        price=price,
    )
    exit_ = replace(entry, action="close", target_size=None, price=None, order_type="market")
    stop = replace(
        exit_, order_type="stop", trigger_price=(price * Decimal("0.95")).quantize(Decimal("0.01"))
    )
    profit = replace(
        exit_, order_type="limit", price=(price * Decimal("1.1")).quantize(Decimal("0.01"))
    )
    bracket = OrderList(
        "bench-bracket",
        "bracket",
        (OrderLeg("entry", entry), OrderLeg("stop_loss", stop), OrderLeg("take_profit", profit)),
    )
    held = next(
        p for p in snapshot.positions if p.account_id == ACCOUNT and p.symbol == HELD_SYMBOL
    )
    modify = OrderRequest(
        symbol=HELD_SYMBOL,
        action="modify",
        account_id=ACCOUNT,
        modified_order_id="bench-order",
        current_size=held.quantity,
        target_size=held.quantity + 1,
        strategy_id=held.strategy_id,
        size_increment=Decimal(1),
    )
    return entry, bracket, modify


def _per_call(runs: Sequence[Callable[[], object]], rounds: int, count: int) -> list[float]:
    """For each case, the best of `rounds` of the mean CPU seconds (this thread) per call
    over `count` calls: a cost, which another process on a shared machine barely moves
    (wall time does). The cases take turns within each round, so a machine that slows
    down or speeds up during the run moves all of them alike, not one."""
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for index, run in enumerate(runs):
            started = time.thread_time()
            for _ in range(count):
                run()
            best[index] = min(best[index], (time.thread_time() - started) / count)
    return best


def report(
    policies: CompiledPolicySet, snapshot: Snapshot, state: State, now: datetime, count: int
) -> bool:
    """Print the three costs and the ratios; True when both are within the target."""
    single, bracket, modify = cases(snapshot)
    answer = check_list(policies, bracket, snapshot, state, now)
    outcomes = "/".join(leg.outcome for leg in answer.legs)
    one = can_execute(policies, modify, snapshot, state, now)
    for _ in range(200):  # warm-up: the pending view, the rules per action
        check_list(policies, bracket, snapshot, state, now)
        can_execute(policies, modify, snapshot, state, now)
        can_execute(policies, single, snapshot, state, now)
    count = max(count // 20, 200)
    single_s, bracket_s, modify_s = _per_call(
        (
            lambda: can_execute(policies, single, snapshot, state, now),
            lambda: check_list(policies, bracket, snapshot, state, now),
            lambda: can_execute(policies, modify, snapshot, state, now),
        ),
        ROUNDS,
        count,
    )
    per_leg = bracket_s / len(bracket.legs)
    print(
        f"  order lists and modify ({count:,} of each, best of {ROUNDS} rounds taking turns, "
        "thread CPU time, same starting state): "
        f"bracket {answer.outcome} ({outcomes}), modify {one.outcome}"
    )
    print(f"    single order   {single_s * 1e6:8.1f} µs")
    print(
        f"    bracket        {bracket_s * 1e6:8.1f} µs for 3 legs, {per_leg * 1e6:.1f} µs per "
        f"leg = {per_leg / single_s:.2f}x the single order"
    )
    print(
        f"    modify         {modify_s * 1e6:8.1f} µs = {modify_s / single_s:.2f}x the single order"
    )
    ok = per_leg / single_s <= RATIO_TARGET and modify_s / single_s <= RATIO_TARGET
    verdict = "PASS" if ok else "FAIL"
    print(f"  {verdict}  per leg and per modify <= {RATIO_TARGET}x a single order (issue)")
    return ok
