"""Benchmark: can_execute on the default policies with 1,000 open positions.

Prints p50 / p99 / max latency (each decision timed alone) and decisions per second
(a tight loop in this thread's CPU time, best of 5: another process on a shared machine
barely moves it) for can_execute over a seeded mix of requests (snapshots.py): opens
with and without target_size, increases, decreases, closes and cancels, in four
accounts, some on core assets, below the grace floor, inside the holding period.

The state is fed forward (`state = result.state`) as a real caller does, with a fake
clock (20 ms per request, bursts at 1 ms: see snapshots.py), so the submit rate,
whipsaw round trips, grace clocks and override cooldowns behave as they would live;
throughput is also shown with the state held fixed (the starting state every time)
and with each result's audit record read (`result.decision`), as a caller that logs
every decision does. Latency is also given in thread CPU time, which tells a tail
caused by other processes taking the core from the engine's own.

Beside it, the floor: the same checks as plain Python `if`s over per-account
aggregates computed once, the same thresholds read from the compiled policies'
specs, its own in-place memory for submits / trades / overrides / grace, returning
the outcome and the names of what blocks (no rules engine, no reason texts, no
decision records). The ratio says how many times slower Bastion is; the two must
agree on every outcome of the request mix.

Targets (issue): p99 < 1 ms and >= 20,000 decisions/s on one core; the seed
documents ask for < 5 ms average and > 1,000 decisions/s. Memory: tracemalloc growth
over 10,000 decisions with the state fed forward.

    .venv/bin/python bench/check/run.py [--count 10000] [--profile] [--peer nautilus] [--no-many]

At the end, many_policies.py (in its own process): 50 LimitPolicies x 50
ProtectionPolicies against sets holding one pair each (and the default set): compile
time and memory, per-decision cost as a ratio (issue 17 point 4); --no-many skips it.

--profile adds cProfile of the fed-forward loop: top 15 by cumulative and by own time.
--peer nautilus adds NautilusTrader's RiskEngine on the same pre-trade decision
(peer_nautilus.py: installed into bench/.peer/ on first use, outcomes compared order by
order, throughput and p50 / p99 as ratios); --peer-python picks the interpreter its
environment is made from (the newest NautilusTrader needs Python 3.12).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, cast

sys.path.insert(0, str(Path(__file__).parent))

import lists
import peer_nautilus
from snapshots import Workload, make_requests, make_snapshot

from bastion.engine.authority.check import can_execute
from bastion.engine.authority.request import OrderRequest
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.vocabulary import REGIME_SEVERITIES
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import TRADING_STATE_RANK, State

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 1_000
ROUNDS = 5  # throughput: best of (thread CPU time)
P99_TARGET_MS, RATE_TARGET = 1.0, 20_000
SEED_AVERAGE_MS, SEED_RATE = 5.0, 1_000
ZERO, HUNDRED = Decimal(0), Decimal(100)
INFINITY = Decimal("Infinity")
PER_STRATEGY = "limit.max_per_strategy"
OUTCOMES = ("approved", "downsized", "denied")
INCREASING, REDUCING = frozenset({"open", "increase"}), frozenset({"close", "decrease"})


# -- the floor: the same checks as plain Python -------------------------------------------


class _Symbol:
    __slots__ = ("exposure", "first_entry", "long", "manual_only", "short")

    def __init__(self) -> None:
        self.long = self.short = self.exposure = ZERO
        self.manual_only = True
        self.first_entry: datetime | None = None


class _Account:
    """One account's aggregates, with the limit policy's per-account budgets."""

    __slots__ = (
        "asset_budget",
        "cash",
        "drawdown",
        "drift",
        "equity",
        "open_count",
        "portfolio_budget",
        "risk_atr",
        "risk_fixed",
        "risk_now",
        "strategy",
        "strategy_budget",
        "symbols",
        "trade_budget",
        "trading_state",
    )


class Floor:
    """can_execute's checks as plain `if`s; `decide` returns (outcome, approved size, blocking)."""

    def __init__(self, policies: CompiledPolicySet, snapshot: Snapshot, state: State) -> None:
        protections = policies.policy_set.of_kind("ProtectionPolicy")
        limits = policies.policy_set.of_kind("LimitPolicy")
        # the default set: one of each, covering everything, enforced
        assert len(protections) == 1 and len(limits) == 1, "the floor knows one policy of each"
        assert protections[0].mode != "shadow" and limits[0].mode != "shadow"
        p, lim = protections[0].spec, limits[0].spec
        self.market = snapshot.market
        # protections
        enabled = p.enabled
        self.core_on = "core_asset_immunity" in enabled
        self.core_assets, self.core_blocked = p.core_assets, p.core_blocked_actions
        self.override_on = "regime_override" in enabled and (
            REGIME_SEVERITIES.index(snapshot.regime.severity)
            >= REGIME_SEVERITIES.index(p.override_min_severity)
        )
        self.cooldown = timedelta(seconds=float(p.override_cooldown_s))
        self.may_bypass = p.override_may_bypass
        self.grace_on, self.grace_min = "grace_period" in enabled, p.grace_min_score
        self.grace_for = timedelta(days=float(p.grace_duration_days))
        self.holding_on = "holding_period" in enabled
        self.holding_for = timedelta(days=float(p.min_holding_days))
        self.whipsaw_on, self.max_trips = "whipsaw_protection" in enabled, p.whipsaw_max_round_trips
        self.whipsaw_window = timedelta(days=float(p.whipsaw_window_days))
        # limits
        self.allowed = {name: frozenset(actions) for name, actions in lim.allowed_actions}
        self.multiple = lim.atr_multiple
        self.max_trade, self.max_portfolio = lim.max_risk_per_trade_pct, lim.max_portfolio_risk_pct
        self.max_asset, self.strategy_caps = lim.max_per_asset_pct, dict(lim.max_per_strategy_pct)
        self.max_drawdown, self.on_drift = lim.max_daily_drawdown_pct, lim.kill_switch_on_drift
        self.shorting, self.margin = lim.shorting_allowed, lim.margin_allowed
        self.min_liquidity, self.max_open = lim.min_liquidity_24h_usd, lim.max_open_positions
        self.max_notional = lim.max_notional_per_order_usd
        self.max_symbol = lim.max_position_per_symbol_usd
        self.rate_count = lim.submit_rate.count
        self.rate_window = timedelta(seconds=float(lim.submit_rate.window_s))
        # Pending exposure (engine/authority/pending.py): approved additions count as held.
        # The request mix starts 5 min after the snapshot and spans less than the TTL, so
        # none is shown by the snapshot or expires: the floor only adds (asserted).
        self.pending_ttl = timedelta(seconds=float(lim.pending_ttl_s))
        self.as_of, self.first_at = snapshot.as_of, cast(datetime | None, None)
        self.manual = lim.include_manual_positions
        self.halted, self.reduce_only = state.halted_symbols, state.reducing_symbols
        self.accounts = self._aggregate(snapshot, state, lim.include_manual_positions)
        # memory, updated in place
        self.submits: dict[str, deque[datetime]] = {a: deque() for a in self.accounts}
        self.trades: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
        self.overrides: dict[tuple[str, str], datetime] = {}
        self.grace: dict[tuple[str, str], datetime] = {}

    def _aggregate(self, snapshot: Snapshot, state: State, manual: bool) -> dict[str, _Account]:
        accounts: dict[str, _Account] = {}
        for account in snapshot.accounts:
            a = _Account()
            a.equity, a.cash, a.drift = account.equity_usd, account.cash_usd, account.drift_flag
            start = account.day_start_equity_usd
            a.drawdown = max(ZERO, (start - a.equity) / start * HUNDRED) if start > 0 else ZERO
            a.trading_state = state.trading_state(account.id)
            a.symbols, a.strategy, a.risk_atr, a.risk_fixed = {}, {}, ZERO, ZERO
            accounts[account.id] = a
        for position in snapshot.positions:
            a = accounts[position.account_id]
            units = abs(position.quantity)
            if units == 0:
                continue
            held = a.symbols.get(position.symbol)
            if held is None:
                held = a.symbols[position.symbol] = _Symbol()
            if position.side == "short":
                held.short += units
            else:
                held.long += units
            if position.option is not None:
                exposure = units * position.price_usd * position.option.multiplier
                a.risk_fixed += exposure
            else:
                exposure = units * position.price_usd
                quote = snapshot.market.get(position.symbol)
                a.risk_atr += units * quote.atr_usd if quote is not None else ZERO
            held.exposure += exposure
            held.manual_only = held.manual_only and position.manual
            if held.first_entry is None or position.entered_at < held.first_entry:
                held.first_entry = position.entered_at
            if manual or not position.manual:
                a.strategy[position.strategy_id] = (
                    a.strategy.get(position.strategy_id, ZERO) + exposure
                )
        for a in accounts.values():
            assert a.equity > 0, "the floor assumes positive equity"
            a.open_count = sum(1 for s in a.symbols.values() if manual or not s.manual_only)
            a.risk_now = a.risk_atr * self.multiple + a.risk_fixed
            a.trade_budget = a.equity * self.max_trade / HUNDRED
            a.portfolio_budget = a.equity * self.max_portfolio / HUNDRED
            a.asset_budget = a.equity * self.max_asset / HUNDRED
            a.strategy_budget = {
                s: a.equity * cap / HUNDRED for s, cap in self.strategy_caps.items()
            }
        return accounts

    def decide(
        self, request: OrderRequest, now: datetime, *, remember: bool = True
    ) -> tuple[str, Decimal | None, list[str]]:
        account_id, symbol, action = request.account_id, request.symbol, request.action
        assert account_id is not None
        a = self.accounts[account_id]
        key = (account_id, symbol)
        held = a.symbols.get(symbol)
        quote = self.market.get(symbol)
        increasing, reducing = action in INCREASING, action in REDUCING
        current = request.current_size
        if current is None:
            current = ZERO if held is None else held.short if request.side == "short" else held.long
        requested = request.target_size
        if action == "close":
            requested = ZERO
        elif action == "cancel":
            requested = current
        elif requested is None and increasing and quote is not None and quote.atr_usd > 0:
            requested = current + a.trade_budget / (quote.atr_usd * self.multiple)
        target = current if requested is None else requested
        blocking: list[str] = []
        if self.first_at is None:
            self.first_at = now
        assert self.as_of + timedelta(seconds=5) < self.first_at, "a pending order is shown"
        assert now - self.first_at < self.pending_ttl, "a pending order expires"
        if (
            (action == "open" and current > 0)
            or (action == "increase" and requested is not None and target <= current)
            or (action == "decrease" and target >= current)
            or (action == "close" and current == 0)
        ):
            blocking.append("request")  # the request contradicts what is held

        # protections
        score = request.current_score
        below = score is not None and score < self.grace_min
        grace_since = request.position.score_below_since or self.grace.get(key)
        if grace_since is None and below:
            grace_since = now
        last = self.overrides.get(key)
        override = self.override_on and (last is None or now - last >= self.cooldown)
        bypassed = False
        if self.core_on and symbol in self.core_assets and action in self.core_blocked:
            blocking.append("core_asset_immunity")  # final: nothing below is reached
        else:
            protected = []
            if reducing and self.grace_on and below and now - grace_since < self.grace_for:
                protected.append("grace_period")
            if reducing and self.holding_on:
                entry = request.position.entry_at or (held.first_entry if held else None)
                if entry is not None and now - entry < self.holding_for:
                    protected.append("holding_period")
            if action == "open" and self.whipsaw_on:
                trips, opened, since = 0, False, now - self.whipsaw_window
                for what, at in self.trades.get(key, ()):
                    if at < since:
                        continue
                    if what == "open":
                        opened = True
                    elif opened:
                        trips, opened = trips + 1, False
                if trips >= self.max_trips:
                    protected.append("whipsaw_protection")
            for name in protected:
                if override and name in self.may_bypass:
                    bypassed = True
                else:
                    blocking.append(name)

        # limits
        state = a.trading_state
        if symbol in self.halted:
            state = "HALTED"
        elif symbol in self.reduce_only and TRADING_STATE_RANK[state] < 1:
            state = "REDUCING"
        if action not in self.allowed[state]:
            blocking.append("limit.trading_state")
        caps: list[tuple[str, Decimal]] = []
        if increasing:
            if quote is None:
                blocking.append("data")
            elif requested is None:
                blocking.append("sizing")
            else:
                caps = self._limits(a, request, quote, held, current, target, now, blocking)
        elif reducing and self._rate_met(account_id, now):
            blocking.append("limit.submit_rate")  # every order but a cancel counts

        approved_size: Decimal | None = target
        outcome = "approved"
        if caps and not blocking:
            room = min(cap for _, cap in caps)
            step = request.size_increment
            room = (room / step).to_integral_value(rounding=ROUND_DOWN) * step if room > 0 else ZERO
            if room <= 0:
                blocking.extend(name for name, _ in caps)
            else:
                approved_size, outcome = current + room, "downsized"
        elif caps:
            blocking.extend(name for name, _ in caps)
        approved = not blocking
        if not approved:
            outcome, approved_size = "denied", None
        if remember:
            self._remember(
                key, account_id, action, now, score, below, grace_since, approved, bypassed
            )
            if approved and increasing and approved_size is not None and quote is not None:
                self._pend(a, request, quote, held, approved_size - current, now)
        return outcome, approved_size, blocking

    def _pend(
        self,
        a: _Account,
        request: OrderRequest,
        quote: Any,
        held: _Symbol | None,
        units: Decimal,
        now: datetime,
    ) -> None:
        """An approved addition, pending: counted as held from the next request on."""
        if units <= 0:
            return
        if held is None:
            held = a.symbols[request.symbol] = _Symbol()
            a.open_count += 1
        elif held.manual_only and not self.manual:
            a.open_count += 1  # now held by a strategy
        held.manual_only = False
        if request.side == "short":
            held.short += units
        else:
            held.long += units
        value = units * quote.price_usd
        held.exposure += value
        if held.first_entry is None:
            held.first_entry = now
        strategy = request.strategy_id or ""
        a.strategy[strategy] = a.strategy.get(strategy, ZERO) + value
        a.risk_atr += units * quote.atr_usd
        a.risk_now = a.risk_atr * self.multiple + a.risk_fixed
        a.cash -= value

    def _rate_met(self, account_id: str, now: datetime) -> bool:
        submits, cutoff = self.submits[account_id], now - self.rate_window
        while submits and submits[0] <= cutoff:
            submits.popleft()
        return len(submits) >= self.rate_count

    def _limits(
        self,
        a: _Account,
        request: OrderRequest,
        quote: object,
        held: _Symbol | None,
        current: Decimal,
        target: Decimal,
        now: datetime,
        blocking: list[str],
    ) -> list[tuple[str, Decimal]]:
        """The hard limits (appended to `blocking`) and the size limits' caps (units to add)."""
        price, atr, liquidity = quote.price_usd, quote.atr_usd, quote.liquidity_usd  # type: ignore[attr-defined]
        if a.drawdown >= self.max_drawdown:
            blocking.append("limit.kill_switch.drawdown")
        if self.on_drift and a.drift:
            blocking.append("limit.kill_switch.drift")
        if not self.shorting and request.side == "short":
            blocking.append("limit.region.shorting")
        if liquidity < self.min_liquidity:
            blocking.append("limit.liquidity")
        if request.action == "open" and a.open_count >= self.max_open:
            blocking.append("limit.max_open_positions")
        if self._rate_met(request.account_id or "", now):
            blocking.append("limit.submit_rate")
        delta = target - current
        unit_risk = atr * self.multiple
        added_value, added_risk = delta * price, delta * unit_risk
        exposure = held.exposure if held else ZERO
        equity = a.equity
        caps: list[tuple[str, Decimal]] = []
        if added_risk / equity * HUNDRED > self.max_trade:
            caps.append(("limit.max_risk_per_trade", _units(a.trade_budget, unit_risk)))
        if (a.risk_now + added_risk) / equity * HUNDRED > self.max_portfolio:
            caps.append(
                ("limit.max_portfolio_risk", _units(a.portfolio_budget - a.risk_now, unit_risk))
            )
        if (exposure + added_value) / equity * HUNDRED > self.max_asset:
            caps.append(("limit.max_per_asset", _units(a.asset_budget - exposure, price)))
        strategy = request.strategy_id or ""
        cap = self.strategy_caps.get(strategy)
        if cap is not None:
            used = a.strategy.get(strategy, ZERO)
            if (used + added_value) / equity * HUNDRED > cap:
                budget = a.strategy_budget[strategy]
                caps.append((f"limit.max_per_strategy.{strategy}", _units(budget - used, price)))
        if self.max_notional is not None and added_value > self.max_notional:
            caps.append(("limit.max_notional_per_order", _units(self.max_notional, price)))
        if self.max_symbol is not None and exposure + added_value > self.max_symbol:
            caps.append(
                ("limit.max_position_per_symbol", _units(self.max_symbol - exposure, price))
            )
        if not self.margin and added_value - a.cash > 0:
            caps.append(("limit.region.margin", _units(a.cash, price)))
        return caps

    def _remember(
        self,
        key: tuple[str, str],
        account_id: str,
        action: str,
        now: datetime,
        score: Decimal | None,
        below: bool,
        grace_since: datetime | None,
        approved: bool,
        bypassed: bool,
    ) -> None:
        if score is not None:
            if below:
                if grace_since is not None and self.grace.get(key) != grace_since:
                    self.grace[key] = grace_since
            else:
                self.grace.pop(key, None)
        if approved and action != "cancel":
            self._rate_met(account_id, now)  # prunes the window
            self.submits[account_id].append(now)
            if action in ("open", "close"):
                horizon = now - self.whipsaw_window
                trades = [t for t in self.trades.get(key, ()) if t[1] >= horizon]
                trades.append((action, now))
                self.trades[key] = trades
            if bypassed:
                self.overrides[key] = now


def _units(money: Decimal, per_unit: Decimal) -> Decimal:
    return money / per_unit if per_unit > 0 else INFINITY


# -- measuring --------------------------------------------------------------------------


class Outcome(NamedTuple):
    """What the benchmark keeps of a decision (keeping 10,000 whole results would hold
    their audit records and skew the garbage collector)."""

    approved: bool
    outcome: str
    approved_size: Decimal | None
    blocking: tuple[str, ...]
    override_applied: bool


def chain(
    policies: CompiledPolicySet, work: Workload, requests: Sequence[OrderRequest]
) -> tuple[list[Outcome], list[int], list[int]]:
    """Every request with the state fed forward, each timed alone: wall-clock and
    this thread's CPU time (ns). CPU time leaves out time the process was preempted."""
    snapshot, state, times = work.snapshot, work.state, work.times
    kept, walls, cpus = [], [], []
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    for request, now in zip(requests, times, strict=False):
        cpu_started = cpu()
        started = clock()
        result = can_execute(policies, request, snapshot, state, now)
        ended = clock()
        cpus.append(cpu() - cpu_started)
        walls.append(ended - started)
        state = result.state
        kept.append(
            Outcome(
                result.approved,
                result.outcome,
                result.approved_size,
                result.blocking,
                result.override_applied,
            )
        )
    return kept, walls, cpus


def best_rate(rounds: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(rounds))


def rate_fed(policies: CompiledPolicySet, work: Workload) -> float:
    snapshot, state = work.snapshot, work.state
    gc.collect()
    started = time.thread_time()
    for request, now in zip(work.requests, work.times, strict=True):
        state = can_execute(policies, request, snapshot, state, now).state
    return len(work.requests) / (time.thread_time() - started)


def rate_recorded(policies: CompiledPolicySet, work: Workload) -> float:
    """Fed forward, and the audit record read as a caller that logs decisions does."""
    snapshot, state = work.snapshot, work.state
    gc.collect()
    started = time.thread_time()
    for request, now in zip(work.requests, work.times, strict=True):
        result = can_execute(policies, request, snapshot, state, now)
        result.decision  # noqa: B018 (built on first read in lazy versions)
        state = result.state
    return len(work.requests) / (time.thread_time() - started)


def rate_fixed(policies: CompiledPolicySet, work: Workload) -> float:
    snapshot, state = work.snapshot, work.state
    gc.collect()
    started = time.thread_time()
    for request, now in zip(work.requests, work.times, strict=True):
        can_execute(policies, request, snapshot, state, now)
    return len(work.requests) / (time.thread_time() - started)


def rate_floor(policies: CompiledPolicySet, work: Workload, *, remember: bool) -> float:
    floor = Floor(policies, work.snapshot, work.state)
    decide = floor.decide
    gc.collect()
    started = time.thread_time()
    for request, now in zip(work.requests, work.times, strict=True):
        decide(request, now, remember=remember)
    return len(work.requests) / (time.thread_time() - started)


def memory_growth(policies: CompiledPolicySet, work: Workload) -> tuple[int, int, State]:
    snapshot, state = work.snapshot, work.state
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for request, now in zip(work.requests, work.times, strict=True):
        state = can_execute(policies, request, snapshot, state, now).state
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return after - before, peak - before, state


def outcome_mix(requests: Sequence[OrderRequest], results: Sequence[Outcome]) -> None:
    actions = ("open", "increase", "decrease", "close", "cancel")
    table: Counter[tuple[str, str]] = Counter(
        (r.action, d.outcome) for r, d in zip(requests, results, strict=True)
    )
    total = Counter(d.outcome for d in results)
    print(f"  outcome mix, state fed forward ({len(results):,} requests):")
    print(f"    {'action':<9} {'approved':>9} {'downsized':>10} {'denied':>8}")
    for action in actions:
        row = [table[(action, o)] for o in OUTCOMES]
        print(f"    {action:<9} {row[0]:>9,} {row[1]:>10,} {row[2]:>8,}")
    row = [total[o] for o in OUTCOMES]
    shares = ", ".join(f"{o} {total[o] / len(results):.1%}" for o in OUTCOMES)
    print(f"    {'all':<9} {row[0]:>9,} {row[1]:>10,} {row[2]:>8,}  ({shares})")
    overrides = sum(d.override_applied for d in results)
    print(
        f"    regime overrides applied: {overrides:,}; requests sized from volatility: "
        f"{sum(r.target_size is None and r.increasing for r in requests):,}"
    )
    blocks = Counter(name for d in results for name in d.blocking)
    print(
        "    blocking (a denial may name several): "
        + ", ".join(f"{n} {c:,}" for n, c in blocks.most_common())
    )


def agreement(policies: CompiledPolicySet, work: Workload, results: Sequence[Outcome]) -> None:
    floor = Floor(policies, work.snapshot, work.state)
    approve = outcome = size = blocking = 0
    mismatches: list[str] = []
    for request, now, result in zip(work.requests, work.times, results, strict=True):
        got, approved_size, blocks = floor.decide(request, now)
        same_approve = (got != "denied") == result.approved
        approve += same_approve
        outcome += got == result.outcome
        size += approved_size == result.approved_size
        blocking += _names(blocks) == _names(result.blocking)
        if not (same_approve and got == result.outcome) and len(mismatches) < 5:
            mismatches.append(
                f"{request.id} {request.action} {request.account_id}/{request.symbol}: bastion "
                f"{result.outcome} {list(result.blocking)}, floor {got} {blocks}"
            )
    count = len(results)
    print(
        f"  floor vs Bastion, state fed forward: approve/deny agree {approve / count:.2%} "
        f"({count - approve:,} mismatches); outcome {outcome / count:.2%}; approved size "
        f"{size / count:.2%}; blocking names {blocking / count:.2%}"
    )
    for line in mismatches:
        print(f"    mismatch: {line}")


def _names(blocking: Sequence[str]) -> list[str]:
    """Blocking names, per-strategy limits without their strategy suffix (named either way)."""
    return sorted(
        PER_STRATEGY if name.startswith(PER_STRATEGY + ".") else name for name in blocking
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def profile(policies: CompiledPolicySet, work: Workload) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    rate_fed(policies, work)
    profiler.disable()
    for key in ("cumulative", "tottime"):
        print(
            f"\n  cProfile, state fed forward, {len(work.requests):,} decisions, top 15 by {key}:"
        )
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats(15)


def _gen2() -> int:
    return gc.get_stats()[2]["collections"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="requests in the mix")
    parser.add_argument("--profile", action="store_true", help="also cProfile the Bastion loop")
    parser.add_argument(
        "--peer",
        choices=("nautilus",),
        help="also run NautilusTrader's RiskEngine on the same decision (peer_nautilus.py)",
    )
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter the peer's environment is made from (default: this one; "
        "NautilusTrader's newest release needs 3.12)",
    )
    parser.add_argument(
        "--no-many",
        action="store_true",
        help="skip the 50 x 50 policies case (many_policies.py, run in its own process)",
    )
    args = parser.parse_args()
    count = args.count
    python = f"{platform.python_implementation()} {platform.python_version()}"
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"bench/check: can_execute, default policy set, {python}, {cpus} CPUs ({usable} usable, "
        f"load average {load}), one core used"
    )
    policies = compile_policy_set(load_policy_set([ROOT / "policies"]))
    started = time.perf_counter()
    snapshot = make_snapshot()
    built = time.perf_counter() - started
    work = make_requests(snapshot, count)
    held = {(p.account_id, p.symbol) for p in snapshot.positions}
    print(
        f"  snapshot: {len(snapshot.positions):,} open positions, {len(snapshot.accounts)} "
        f"accounts, {len(held):,} account/symbol books, {len(snapshot.market)} symbols, regime "
        f"{snapshot.regime.name} ({snapshot.regime.severity}); built in {built:.2f} s"
    )
    span = (work.times[-1] - work.times[0]).total_seconds()
    print(
        f"  requests: {count:,} seeded; fake clock +20 ms per request, 250-request bursts at "
        f"1 ms on acc-1 every 2,000 ({span:.0f} s of fake time); submit rate 100/1s"
    )
    chain(policies, work, work.requests[:WARMUP])  # warm-up: book, policy cache, rules engine

    gc.collect()
    collections = _gen2()
    results, samples, cpu_samples = chain(policies, work, work.requests)
    collections = _gen2() - collections
    outcome_mix(work.requests, results)
    rate_limited = sum("limit.submit_rate" in r.blocking for r in results)
    print(
        f"    denied by the submit rate: {rate_limited:,} (in the bursts; 50 requests/s otherwise)"
    )
    samples.sort()
    p50 = statistics.median(samples) / 1e6
    p99 = samples[int(len(samples) * 0.99)] / 1e6
    p999 = samples[int(len(samples) * 0.999)] / 1e6
    worst, mean = samples[-1] / 1e6, statistics.fmean(samples) / 1e6
    cpu_samples.sort()
    cpu_p50 = statistics.median(cpu_samples) / 1e6
    cpu_p99 = cpu_samples[int(len(cpu_samples) * 0.99)] / 1e6
    print(
        f"  latency, state fed forward, {count:,} decisions each timed alone: p50 {p50:.3f} ms, "
        f"p99 {p99:.3f} ms, p99.9 {p999:.3f} ms, max {worst:.3f} ms, mean {mean:.3f} ms "
        f"({collections} full gc collections)"
    )
    print(
        f"    the same decisions in thread CPU time: p50 {cpu_p50:.3f} ms, p99 {cpu_p99:.3f} ms"
        + (
            " (wall p99 well above CPU p99: the process was preempted; see the load average)"
            if p99 > 1.5 * cpu_p99
            else ""
        )
    )

    fed = best_rate(ROUNDS, partial(rate_fed, policies, work))
    fixed = best_rate(ROUNDS, partial(rate_fixed, policies, work))
    recorded = best_rate(ROUNDS, partial(rate_recorded, policies, work))
    floor_fed = best_rate(ROUNDS, partial(rate_floor, policies, work, remember=True))
    floor_fixed = best_rate(ROUNDS, partial(rate_floor, policies, work, remember=False))
    title = f"throughput, thread CPU, best of {ROUNDS}"
    print(f"  {title:<40} {'Bastion':>12} {'plain py':>12} {'ratio':>7}")
    for name, bastion, floor in (
        ("state fed forward", fed, floor_fed),
        ("state held fixed", fixed, floor_fixed),
        ("state fed forward, audit record read", recorded, floor_fed),
    ):
        print(f"  {name:<40} {bastion:>10,.0f}/s {floor:>10,.0f}/s {floor / bastion:>6.1f}x")
    print("  (ratio: how many times slower Bastion is than the plain-Python floor)")
    agreement(policies, work, results)

    growth, peak, state = memory_growth(policies, work)
    memory = state.authority
    print(
        f"  memory, {count:,} decisions with the state fed forward (tracemalloc): growth "
        f"{growth / 2**10:,.0f} KiB, peak {peak / 2**10:,.0f} KiB above the start; the final "
        f"state holds {sum(map(len, memory.submits.values()))} submits, {len(memory.trades)} "
        f"trade books, {len(memory.overrides)} overrides, {len(memory.grace)} grace clocks, "
        f"{len(memory.pending)} pending orders"
    )
    print(f"  {verdict(p99 < P99_TARGET_MS)}  p99 {p99:.3f} ms < {P99_TARGET_MS:g} ms (issue)")
    print(
        f"  {verdict(fed >= RATE_TARGET)}  {fed:,.0f} decisions/s >= {RATE_TARGET:,} "
        "(issue; state fed forward)"
    )
    print(
        f"  {verdict(mean < SEED_AVERAGE_MS)}  average {mean:.3f} ms < {SEED_AVERAGE_MS:g} ms "
        "(seed documents)"
    )
    print(f"  {verdict(fed > SEED_RATE)}  {fed:,.0f} decisions/s > {SEED_RATE:,} (seed documents)")
    lists.report(policies, snapshot, work.state, work.times[0], count)
    if args.profile:
        profile(policies, work)
    policies.close()
    peer_ok = True
    if args.peer == "nautilus":
        peer_ok = peer_nautilus.compare(2 * count, peer_nautilus.ROUNDS, args.peer_python)
    else:
        print(
            "  peer: not run; NautilusTrader's RiskEngine on the same decision: "
            "bench/check/run.py --peer nautilus [--peer-python /path/to/python3.12]"
        )
    if not args.no_many:  # its own process: its compile memory is measured from a clean start
        sys.stdout.flush()
        many = Path(__file__).with_name("many_policies.py")
        subprocess.run([sys.executable, str(many)], check=False)
    return 0 if peer_ok else 1


if __name__ == "__main__":
    sys.exit(main())
