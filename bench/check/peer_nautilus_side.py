"""The NautilusTrader side of bench/check's peer comparison (peer_nautilus.py).

Runs in the peer's own virtual environment (bench/.peer/nautilus-<python>), never in
Bastion's: it imports only NautilusTrader and the standard library. Reads the workload
as JSON (argv[1]), writes the results as JSON (argv[2]); stdout is left to
NautilusTrader's own logging.

The set-up is the one NautilusTrader's tests use for `RiskEngine`
(tests/unit_tests/risk/test_engine.py at the installed version's tag): TestClock,
MessageBus, the test Cache, Portfolio, ExecutionEngine, a MockExecutionClient with a
cash account, RiskEngineConfig(max_notional_per_order=..., max_order_submit_rate=...),
and a long position opened by a filled market order before the run (so that REDUCING
denies a BUY, as in `test_submit_order_when_reducing_and_buy_order_adds_then_denies`).
Each order is a LIMIT order, built before the timed loop; the loop advances the
TestClock to the order's time, handling the timers that fall due (the submit-rate
throttler's resume, as a backtest kernel does), and calls
`RiskEngine.execute(SubmitOrder)`; the trading state is set at the workload's change
points, inside the loop, as Bastion's state is fed there.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import nautilus_trader
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.config import ExecEngineConfig, RiskEngineConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.engine import ExecutionEngine
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OrderSide, OrderStatus, TradingState
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.identifiers import ClientId, Venue
from nautilus_trader.model.objects import AccountBalance, Money, Price, Quantity
from nautilus_trader.portfolio.portfolio import Portfolio
from nautilus_trader.risk.engine import RiskEngine
from nautilus_trader.test_kit.mocks.exec_clients import MockExecutionClient
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.component import TestComponentStubs
from nautilus_trader.test_kit.stubs.data import TestDataStubs
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.identifiers import TestIdStubs
from nautilus_trader.trading.strategy import Strategy

OPENING_LONG = 100_000  # units; its notional is within the max (the size itself never matters)
STATES = {
    "ACTIVE": TradingState.ACTIVE,
    "REDUCING": TradingState.REDUCING,
    "HALTED": TradingState.HALTED,
}


class Bench:
    """One fresh engine with the workload's orders built, ready for the timed loop."""

    def __init__(self, work: dict[str, Any]) -> None:
        self.clock = TestClock()
        self.trader_id = TestIdStubs.trader_id()
        venue = Venue("SIM")
        self.msgbus = MessageBus(trader_id=self.trader_id, clock=self.clock)
        self.cache = TestComponentStubs.cache()
        self.portfolio = Portfolio(msgbus=self.msgbus, cache=self.cache, clock=self.clock)
        self.exec_engine = ExecutionEngine(
            msgbus=self.msgbus,
            cache=self.cache,
            clock=self.clock,
            config=ExecEngineConfig(debug=False),
        )
        self.instrument = TestInstrumentProvider.default_fx_ccy(work["symbol"])
        self.risk_engine = RiskEngine(
            portfolio=self.portfolio,
            msgbus=self.msgbus,
            cache=self.cache,
            clock=self.clock,
            config=RiskEngineConfig(
                max_notional_per_order={str(self.instrument.id): work["max_notional"]},
                max_order_submit_rate=work["submit_rate"],
            ),
        )
        self.exec_client = MockExecutionClient(
            client_id=ClientId(venue.value),
            venue=venue,
            account_type=AccountType.CASH,
            base_currency=USD,
            msgbus=self.msgbus,
            cache=self.cache,
            clock=self.clock,
        )
        cash = Money(work["cash"], USD)
        self.portfolio.update_account(
            AccountState(
                account_id=TestIdStubs.account_id(),
                account_type=AccountType.CASH,
                base_currency=USD,
                reported=True,
                balances=[AccountBalance(cash, Money(0, USD), cash)],
                margins=[],
                info={},
                event_id=UUID4(),
                ts_event=0,
                ts_init=0,
            )
        )
        self.exec_engine.register_client(self.exec_client)
        self.cache.add_instrument(self.instrument)
        self.cache.add_quote_tick(TestDataStubs.quote_tick(self.instrument))
        self.exec_engine.start()
        self.strategy = Strategy()
        self.strategy.register(
            trader_id=self.trader_id,
            portfolio=self.portfolio,
            msgbus=self.msgbus,
            cache=self.cache,
            clock=self.clock,
        )
        self._open_long(OPENING_LONG)
        price = Price.from_str(work["price"])
        factory = self.strategy.order_factory
        self.commands = []
        self.orders = []
        for side, quantity in work["orders"]:
            order = factory.limit(
                self.instrument.id,
                OrderSide.BUY if side == "buy" else OrderSide.SELL,
                Quantity.from_int(quantity),
                price,
            )
            self.orders.append(order)
            self.commands.append(
                SubmitOrder(
                    trader_id=self.trader_id,
                    strategy_id=self.strategy.id,
                    position_id=None,
                    order=order,
                    command_id=UUID4(),
                    ts_init=0,
                )
            )
        self.times = work["times_ns"]
        self.changes = {int(index): STATES[state] for index, state in work["states"]}

    def _open_long(self, quantity: int) -> None:
        """The long the orders buy into (REDUCING denies a BUY while net long): filled
        before the run, at fake time 0, far outside the first order's submit-rate
        window. Its size does not change any decision (SELLs never fill here)."""
        order = self.strategy.order_factory.market(
            self.instrument.id, OrderSide.BUY, Quantity.from_int(quantity)
        )
        self.risk_engine.execute(
            SubmitOrder(
                trader_id=self.trader_id,
                strategy_id=self.strategy.id,
                position_id=None,
                order=order,
                command_id=UUID4(),
                ts_init=self.clock.timestamp_ns(),
            )
        )
        self.exec_engine.process(TestEventStubs.order_submitted(order))
        self.exec_engine.process(TestEventStubs.order_accepted(order))
        self.exec_engine.process(TestEventStubs.order_filled(order, self.instrument))
        assert order.status == OrderStatus.FILLED, order.status
        assert self.portfolio.is_net_long(self.instrument.id)

    def run(self, timed: bool) -> tuple[float, list[int]]:
        """The loop: thread CPU seconds for all of it; with `timed`, each order's thread
        CPU nanoseconds (the clock's advance, with the timers it fires, and the
        trading-state changes are outside them, inside the loop's total)."""
        execute, advance = self.risk_engine.execute, self.clock.advance_time
        changes, set_state = self.changes, self.risk_engine.set_trading_state
        samples: list[int] = []
        cpu = time.thread_time_ns
        started = time.thread_time()
        if timed:
            for index, (command, at) in enumerate(zip(self.commands, self.times, strict=True)):
                state = changes.get(index)
                if state is not None:
                    set_state(state)
                for event in advance(at):  # the throttler's resume timer, when due
                    event.handle()
                began = cpu()
                execute(command)
                samples.append(cpu() - began)
        else:
            for index, (command, at) in enumerate(zip(self.commands, self.times, strict=True)):
                state = changes.get(index)
                if state is not None:
                    set_state(state)
                for event in advance(at):  # the throttler's resume timer, when due
                    event.handle()
                execute(command)
        return time.thread_time() - started, samples

    def outcomes(self) -> list[list[Any]]:
        """Per order: [approved, reason] (the OrderDenied reason; "" when approved)."""
        result = []
        for order in self.orders:
            if order.status == OrderStatus.DENIED:
                result.append([False, order.last_event.reason])
            else:
                result.append([True, ""])
        return result


def _percentiles(samples: list[int]) -> list[int]:
    ordered = sorted(samples)
    return [ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]]


def main() -> int:
    with open(sys.argv[1]) as source:
        work = json.load(source)
    rounds = int(work["rounds"])
    best = float("inf")
    first = Bench(work)
    _, samples = first.run(timed=True)
    outcomes = first.outcomes()
    latencies = [_percentiles(samples)]
    for _ in range(rounds):
        bench = Bench(work)  # a fresh engine and fresh orders: a denied order stays denied
        seconds, _ = bench.run(timed=False)
        best = min(best, seconds)
        assert bench.outcomes() == outcomes, "the peer is not deterministic"
        timed = Bench(work)
        latencies.append(_percentiles(timed.run(timed=True)[1]))
    result = {
        "version": nautilus_trader.__version__,
        "python": sys.version.split()[0],
        "outcomes": outcomes,
        "latency_ns": latencies,  # [p50, p99] per timed round
        "best_loop_s": best,
    }
    with open(sys.argv[2], "w") as sink:
        json.dump(result, sink)
    return 0


if __name__ == "__main__":
    sys.exit(main())
