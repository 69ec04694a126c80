"""Snapshot -> facts: the metric values of every subject, as the rules engine sees them.

A fact is a nested mapping `{group: {name: value}}` (`{"market": {"volume_multiple":
...}}`) holding the metrics of its subject and of the coarser subjects it belongs
to (metrics.VISIBLE_SCOPES). A metric that cannot be computed (a zero baseline, no
market data for the symbol) is left out, never replaced by zero: the evaluator
reports the breakers that need it as unevaluable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

from bastion.engine.decision import Subject
from bastion.engine.evaluation.high_water import drawdown_from_mark_pct
from bastion.engine.snapshot import Account, Market, OrderFlow, Position, Snapshot
from bastion.engine.state import HighWater

HUNDRED = Decimal(100)
ZERO = Decimal(0)
REGIME_LEVELS = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_OCC_ROOT = re.compile(r"^([A-Z][A-Z.]{0,5})\d{6}[CP]\d{8}$")

Fact = dict[str, dict[str, Decimal]]
_RELEASED: Fact = {}  # the fact of every released subject (Facts.release): never written


@dataclass(slots=True, eq=False)  # internal and short-lived: built 10,000 times a tick
class SubjectFacts:
    subject: Subject
    fact: Fact
    account_type: str | None = None  # what policy scopes are matched against
    symbol: str | None = None
    strategy: str | None = None

    def value(self, metric: str) -> Decimal | None:
        group, name = _split(metric)
        return self.fact.get(group, {}).get(name)

    def has(self, metric: str) -> bool:
        return self.value(metric) is not None


@cache
def _split(metric: str) -> tuple[str, str]:
    group, name = metric.split(".", 1)
    return group, name


def underlying_symbol(position: Position) -> str:
    """The symbol whose market data a position follows (an option follows its root)."""
    if position.option is not None:
        match = _OCC_ROOT.match(position.symbol)
        if match:
            return match.group(1)
    return position.symbol


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator == 0 else numerator / denominator


def _drop_pct(current: Decimal, normal: Decimal) -> Decimal | None:
    """How far `current` fell below `normal`, % of normal, within 0..100."""
    if normal == 0:
        return None
    return min(HUNDRED, max(Decimal(0), (normal - current) / abs(normal) * HUNDRED))


def _loss_pct(start: Decimal, now: Decimal) -> Decimal | None:
    if start <= 0:
        return None
    return min(HUNDRED, max(Decimal(0), (start - now) / start * HUNDRED))


def _clean(group: dict[str, Decimal | None]) -> dict[str, Decimal]:
    return {name: value for name, value in group.items() if value is not None}


def portfolio_metrics(snapshot: Snapshot) -> dict[str, Decimal]:
    equity = sum((a.equity_usd for a in snapshot.accounts), Decimal(0))
    start = sum((a.day_start_equity_usd for a in snapshot.accounts), Decimal(0))
    peak = sum((a.peak_equity_usd for a in snapshot.accounts), Decimal(0))
    return _clean({"loss_pct": _loss_pct(start, equity), "drawdown_pct": _loss_pct(peak, equity)})


def account_metrics(account: Account) -> dict[str, Decimal]:
    loss = max(Decimal(0), account.day_start_equity_usd - account.equity_usd)
    return _clean(
        {
            "daily_loss_usd": loss,
            "daily_loss_pct": _loss_pct(account.day_start_equity_usd, account.equity_usd),
            "drawdown_pct": _loss_pct(account.peak_equity_usd, account.equity_usd),
        }
    )


def market_metrics(market: Market) -> dict[str, Decimal]:
    mid = (market.bid_usd + market.ask_usd) / 2
    spread = _ratio(market.ask_usd - market.bid_usd, mid)
    return _clean(
        {
            "volatility_multiple": _ratio(market.volatility, market.normal_volatility),
            "volume_multiple": _ratio(market.volume, market.avg_volume),
            "liquidity_drop_pct": _drop_pct(market.liquidity_usd, market.normal_liquidity_usd),
            "correlation_drop_pct": _drop_pct(market.correlation, market.normal_correlation),
            "spread_bps": None if spread is None else spread * Decimal(10_000),
            "data_age_s": market.data_age_s,
            "quality_score_ratio": market.quality_score_ratio,
        }
    )


def _orders(flows: list[OrderFlow]) -> dict[str, Decimal]:
    """Order flow of several (account, strategy) pairs: counts add, the worst counts.

    The snapshot lists the pairs that traded; a pair it does not list placed no
    orders, so its activity is zero (that is a fact, not missing data).
    """
    if not flows:
        return {
            "per_minute": Decimal(0),
            "slippage_bps": Decimal(0),
            "consecutive_losses": Decimal(0),
        }
    return {
        "per_minute": Decimal(sum(flow.orders_last_minute for flow in flows)),
        "slippage_bps": max(flow.slippage_bps for flow in flows),
        "consecutive_losses": Decimal(max(flow.consecutive_losses for flow in flows)),
    }


def position_metrics(
    position: Position, market: Market | None, mark: HighWater | None = None
) -> dict[str, Decimal]:
    """loss_pct and unrealized_profit_pct from the position's own price; breach_atr
    (adverse move from entry in ATRs, 0 when favourable) when its market data has a
    positive ATR; drawdown_from_high_pct when its high-water mark is tracked (`mark`).
    Option positions get no breach: their risk is measured by delta (RollPolicy)."""
    entry, price = position.entry_price_usd, position.price_usd
    metrics: dict[str, Decimal] = {}
    if entry > 0:
        loss = (entry - price if position.side == "long" else price - entry) / entry * HUNDRED
        metrics["loss_pct"] = max(ZERO, loss)
        metrics["unrealized_profit_pct"] = max(ZERO, -loss)
    if position.option is None and market is not None and market.atr_usd > 0:
        move = entry - market.price_usd if position.side == "long" else market.price_usd - entry
        metrics["breach_atr"] = max(ZERO, move / market.atr_usd)
    if mark is not None:
        metrics["drawdown_from_high_pct"] = drawdown_from_mark_pct(position, mark)
    return metrics


@dataclass(frozen=True, slots=True)
class Facts:
    """Every subject's facts, by scope, in a deterministic order."""

    by_scope: dict[str, tuple[SubjectFacts, ...]]
    positions: dict[str, Position]  # by id, shared by the passes
    # The accounts each strategy trades: from its order_flow records and its open
    # positions, so that a strategy with no position (stopped out) still has one.
    accounts_by_strategy: dict[str, frozenset[str]] = field(default_factory=dict)

    def of(self, scope: str) -> tuple[SubjectFacts, ...]:
        return self.by_scope.get(scope, ())

    def release(self, scope: str) -> None:
        """Drop the facts of `scope`'s subjects, keeping the subjects and what policies
        are assigned by: for an evaluation whose remaining passes read none of them. A
        released subject has no metric (`value` is None), as if none could be measured."""
        for item in self.of(scope):
            item.fact = _RELEASED


def build_facts(
    snapshot: Snapshot,
    marks: Mapping[str, HighWater] | None = None,
    positions: Sequence[Position] | None = None,
    strategy_pairs: Set[tuple[str, str]] | None = None,
) -> Facts:
    """Every subject's facts; `marks` (by position id) when a breaker trails a high.

    `positions`: the positions to build facts for (default: all of the snapshot's);
    the screened evaluation (screen.py) passes those that may change anything, and the
    (strategy, account) pairs of all positions, which its columns already know."""
    shared: Fact = {
        "portfolio": portfolio_metrics(snapshot),
        "system": {
            "error_rate_pct": snapshot.system.error_rate_pct,
            "data_age_s": snapshot.system.data_age_s,
            "connectivity_ratio": snapshot.system.connectivity_ratio,
        },
        "regime": {"severity_level": Decimal(REGIME_LEVELS.get(snapshot.regime.severity, 3))},
    }
    accounts = {account.id: account for account in snapshot.accounts}
    markets = {symbol: market_metrics(m) for symbol, m in snapshot.market.items()}
    by_scope: dict[str, tuple[SubjectFacts, ...]] = {
        "portfolio": (SubjectFacts(Subject("portfolio", "all"), dict(shared)),),
        "system": (SubjectFacts(Subject("system", "all"), dict(shared)),),
        "account": tuple(_account_facts(snapshot, shared)),
        "strategy": tuple(_strategy_facts(snapshot, shared, strategy_pairs)),
        "symbol": tuple(
            SubjectFacts(
                Subject("symbol", symbol, symbol=symbol),
                {**shared, "market": metrics},
                symbol=symbol,
            )
            for symbol, metrics in sorted(markets.items())
        ),
        "position": tuple(
            _position_facts(snapshot, shared, accounts, markets, marks or {}, positions)
        ),
    }
    chosen = snapshot.positions if positions is None else positions
    by_strategy = accounts_by_strategy(snapshot, strategy_pairs)
    return Facts(by_scope, {p.id: p for p in chosen}, by_strategy)


def _held_pairs(snapshot: Snapshot) -> set[tuple[str, str]]:
    return {(position.strategy_id, position.account_id) for position in snapshot.positions}


def accounts_by_strategy(
    snapshot: Snapshot, held: Set[tuple[str, str]] | None = None
) -> dict[str, frozenset[str]]:
    """Which accounts each strategy trades, whether or not it holds a position
    (`held`: the positions' (strategy, account) pairs, when already known)."""
    pairs = {(flow.strategy_id, flow.account_id) for flow in snapshot.order_flow}
    pairs |= _held_pairs(snapshot) if held is None else held
    found: dict[str, set[str]] = {}
    for strategy, account in pairs:
        found.setdefault(strategy, set()).add(account)
    return {strategy: frozenset(accounts) for strategy, accounts in found.items()}


def _account_facts(snapshot: Snapshot, shared: Fact) -> Iterator[SubjectFacts]:
    for account in sorted(snapshot.accounts, key=lambda a: a.id):
        flows = [f for f in snapshot.order_flow if f.account_id == account.id]
        fact: Fact = {**shared, "account": account_metrics(account), "orders": _orders(flows)}
        subject = Subject("account", account.id, account_id=account.id)
        yield SubjectFacts(subject, fact, account.type)


def _strategy_facts(
    snapshot: Snapshot, shared: Fact, held: Set[tuple[str, str]] | None
) -> Iterator[SubjectFacts]:
    pairs = _held_pairs(snapshot) if held is None else held
    strategies = {f.strategy_id for f in snapshot.order_flow} | {pair[0] for pair in pairs}
    for strategy in sorted(strategies):
        flows = [f for f in snapshot.order_flow if f.strategy_id == strategy]
        subject = Subject("strategy", strategy, strategy_id=strategy)
        yield SubjectFacts(subject, {**shared, "orders": _orders(flows)}, strategy=strategy)


def _position_facts(
    snapshot: Snapshot,
    shared: Fact,
    accounts: dict[str, Account],
    markets: dict[str, dict[str, Decimal]],
    marks: Mapping[str, HighWater],
    positions: Sequence[Position] | None = None,
) -> Iterator[SubjectFacts]:
    flows: dict[tuple[str, str], list[OrderFlow]] = {}
    for flow in snapshot.order_flow:
        flows.setdefault((flow.account_id, flow.strategy_id), []).append(flow)
    orders = {key: _orders(items) for key, items in flows.items()}
    no_orders = _orders([])
    account_groups = {key: account_metrics(account) for key, account in accounts.items()}
    raw_market = dict(snapshot.market)  # a plain dict: the snapshot's is a read-only proxy
    portfolio, system, regime = shared["portfolio"], shared["system"], shared["regime"]
    chosen = snapshot.positions if positions is None else positions
    for position in sorted(chosen, key=lambda p: p.id):
        account = accounts.get(position.account_id)
        symbol = underlying_symbol(position)
        fact: Fact = {
            "portfolio": portfolio,
            "system": system,
            "regime": regime,
            "position": position_metrics(
                position, raw_market.get(position.symbol), marks.get(position.id)
            ),
            "market": markets.get(symbol, {}),
            "account": account_groups.get(position.account_id, {}),
            "orders": orders.get((position.account_id, position.strategy_id), no_orders),
        }
        subject = Subject(
            "position",
            position.id,
            account_id=position.account_id,
            symbol=position.symbol,
            strategy_id=position.strategy_id,
        )
        yield SubjectFacts(
            subject, fact, account.type if account else None, symbol, position.strategy_id
        )
