"""DecisionAuthority: the one object a trading system holds and asks before every order.

It wraps the pure `can_execute` with what a long-running caller needs: the current
compiled policy set (swapped atomically on reload), the state carried from one
request to the next, and running statistics (processed, approved, downsized, denied,
overrides, errors). Thread-safe: one lock around check + state update, so two
threads never both spend the same submit-rate slot or override cooldown.

    authority = DecisionAuthority(compiled, state=State())
    result = authority.can_execute(request, snapshot, now)   # decide and remember
    answer = authority.check(request, snapshot, now)         # a question: remembers nothing
    authority.record_sent(request, snapshot, now)            # sent (reported): remembered
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from bastion.engine.authority.check import DENIED, DOWNSIZED, ExecutionDecision, can_execute
from bastion.engine.authority.order_list import OrderList
from bastion.engine.authority.order_list_check import ListDecision, check_list
from bastion.engine.authority.plan import ExecutionPlan, StrategyIntent, plan_intents
from bastion.engine.authority.request import OrderRequest
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State


@dataclass(frozen=True, slots=True)
class Statistics:
    processed: int = 0
    approved: int = 0  # approved outright or downsized
    downsized: int = 0
    denied: int = 0
    overrides: int = 0
    errors: int = 0

    @property
    def approval_rate(self) -> float:
        return self.approved / self.processed if self.processed else 0.0

    @property
    def override_rate(self) -> float:
        return self.overrides / self.processed if self.processed else 0.0

    def counted(self, result: ExecutionDecision) -> Statistics:
        denied = result.outcome == DENIED
        return Statistics(
            processed=self.processed + 1,
            approved=self.approved + (not denied),
            downsized=self.downsized + (result.outcome == DOWNSIZED),
            denied=self.denied + denied,
            overrides=self.overrides + result.override_applied,
            errors=self.errors + ("error" in result.blocking),
        )


class DecisionAuthority:
    def __init__(
        self,
        policies: CompiledPolicySet,
        *,
        state: State | None = None,
        clock_ns: Callable[[], int] | None = None,
    ) -> None:
        self._policies = policies
        self._state = state if state is not None else State()
        self._clock_ns = clock_ns
        self._statistics = Statistics()
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    @property
    def statistics(self) -> Statistics:
        return self._statistics

    @property
    def policies(self) -> CompiledPolicySet:
        return self._policies

    def use_policies(self, policies: CompiledPolicySet) -> CompiledPolicySet:
        """Swap in a new compiled policy set (after a reload); returns the old one. A
        request may still be deciding on it: do not close it — dropping the last
        reference frees its rulesets (as the service's reloader does)."""
        with self._lock:
            old, self._policies = self._policies, policies
        return old

    def adopt(self, evaluated: State) -> None:
        """Take the evaluator's newest state (trading states, halted symbols) while
        keeping this authority's own memory (submits, overrides, grace, trades), which
        requests updated since that evaluation started."""
        with self._lock:
            self._state = replace(evaluated, authority=self._state.authority)

    def can_execute(
        self, request: OrderRequest, snapshot: Snapshot, now: datetime
    ) -> ExecutionDecision:
        with self._lock:
            result = can_execute(
                self._policies, request, snapshot, self._state, now, clock_ns=self._clock_ns
            )
            self._state = result.state
            self._statistics = self._statistics.counted(result)
        return result

    def check(
        self, request: OrderRequest, snapshot: Snapshot, now: datetime, *, explain: bool = False
    ) -> ExecutionDecision:
        """The answer, remembering nothing: a question about an order that may never be
        sent (the service's POST /api/v1/check). Only `record_sent` changes the memory.
        `explain`: the decision's record will be read (see `can_execute`)."""
        result = can_execute(
            self._policies,
            request,
            snapshot,
            self._state,
            now,
            clock_ns=self._clock_ns,
            explain=explain,
        )
        with self._lock:
            self._statistics = self._statistics.counted(result)
        return result

    def record_sent(
        self, request: OrderRequest, snapshot: Snapshot, now: datetime
    ) -> ExecutionDecision:
        """An order the caller reports sent: decided as `can_execute` would, and remembered
        (its submit, open / close, override) whatever the answer, since it was sent."""
        with self._lock:
            result = can_execute(
                self._policies,
                request,
                snapshot,
                self._state,
                now,
                clock_ns=self._clock_ns,
                sent=True,
            )
            self._state = result.state
            self._statistics = self._statistics.counted(result)
        return result

    def check_list(self, order_list: OrderList, snapshot: Snapshot, now: datetime) -> ListDecision:
        """An order list, as a question: every leg's answer and the list's; remembers
        nothing (`record_list_sent` does)."""
        result = check_list(
            self._policies, order_list, snapshot, self._state, now, clock_ns=self._clock_ns
        )
        with self._lock:
            for leg in result.legs:
                self._statistics = self._statistics.counted(leg.result)
        return result

    def record_list_sent(
        self, order_list: OrderList, snapshot: Snapshot, now: datetime
    ) -> ListDecision:
        """An order list the caller reports sent: decided, and every leg remembered
        whatever the answer (as `record_sent` for one order)."""
        with self._lock:
            result = check_list(
                self._policies,
                order_list,
                snapshot,
                self._state,
                now,
                clock_ns=self._clock_ns,
                sent=True,
            )
            self._state = result.state
            for leg in result.legs:
                self._statistics = self._statistics.counted(leg.result)
        return result

    def plan(
        self,
        intents: list[StrategyIntent],
        snapshot: Snapshot,
        now: datetime,
        *,
        account_id: str | None = None,
        size_increments: Mapping[str, Decimal] | None = None,
    ) -> ExecutionPlan:
        with self._lock:
            plan = plan_intents(
                self._policies,
                intents,
                snapshot,
                self._state,
                now,
                account_id=account_id,
                size_increments=size_increments,
            )
            self._state = plan.state
            for result in plan.decisions:
                self._statistics = self._statistics.counted(result)
        return plan
