"""Deterministic (seeded) snapshot, starting state and request mix for the can_execute benchmark.

The snapshot holds 1,000 open positions in four accounts under a high-severity
regime (so regime overrides are available):

- acc-0 (gen) holds 8 symbols, under the default max_open_positions of 10: its opens
  can pass, and it trades a few symbols in and out (opens and closes of S100…S105),
  so the whipsaw protection sees real round trips;
- acc-1 (rev) and acc-2 (com) hold most of the book, hundreds of symbols each: their
  opens meet max_open_positions, their increases meet the per-symbol and notional caps;
- acc-3 (gen) is 11 % down on the day: the kill switch stops what adds exposure.

Equities S000…S149 plus the core assets SPY, QQQ and BTC/USD; a few symbols are
illiquid; a fifth of the positions were entered within the holding period. The
starting state halts one symbol and puts another in reduce-only.

Requests: opens with and without target_size (volatility sizing), increases,
decreases, closes and cancels, some on core assets, some with current_score below
the grace floor, some that already spent their grace. Times: a fake clock advancing
20 ms per request, with a burst of requests 1 ms apart on one account every 2,000
requests (so the 100/1s submit rate is met now and then, as in real bursts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bastion.engine.authority.request import OrderRequest, PositionContext
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

AS_OF = datetime.fromisoformat("2026-11-20T15:30:00+00:00")
CORE = ("SPY", "QQQ", "BTC/USD")
EQUITIES = tuple(f"S{index:03d}" for index in range(150))
ILLIQUID = frozenset({"S007", "S042", "S077", "S111", "S140"})
HALTED, REDUCE_ONLY = "S013", "S021"
STRATEGIES = ("trend_following_v1", "mean_reversion_v1", "breakout_v2")
ACCOUNTS = (  # id, type, equity, cash, day-start equity
    ("acc-0", "gen", 10_000_000, 4_000_000, 10_050_000),
    ("acc-1", "rev", 25_000_000, 8_000_000, 25_100_000),
    ("acc-2", "com", 25_000_000, 8_000_000, 24_900_000),
    ("acc-3", "gen", 12_000_000, 5_000_000, 13_500_000),  # 11.1 % drawdown: kill switch
)
SMALL_BOOK = ("SPY", "S000", "S001", "S002", "S003", "S004", "S005", "S006")  # acc-0
CHURN = ("S100", "S101", "S102", "S103", "S104", "S105")  # acc-0 trades these in and out
STEP = timedelta(milliseconds=20)
BURST_STEP = timedelta(milliseconds=1)
BURST_EVERY, BURST_LENGTH = 2_000, 250


@dataclass(frozen=True, slots=True)
class Workload:
    snapshot: Snapshot
    state: State  # the starting state: one symbol halted, one reduce-only
    requests: tuple[OrderRequest, ...]
    times: tuple[datetime, ...]  # the fake clock, one per request


def _market(rng: random.Random) -> dict[str, dict[str, Any]]:
    def quote(price: Decimal, atr: Decimal, liquidity: int) -> dict[str, Any]:
        spread = max(Decimal("0.01"), (price / 10_000).quantize(Decimal("0.01")))
        return {
            "price_usd": str(price),
            "bid_usd": str(price - spread),
            "ask_usd": str(price + spread),
            "atr_usd": str(atr),
            "volume": rng.randint(200_000, 5_000_000),
            "avg_volume": rng.randint(500_000, 3_000_000),
            "volatility": "0.31",
            "normal_volatility": "0.2",
            "liquidity_usd": liquidity,
            "normal_liquidity_usd": liquidity * 5 // 4,
            "correlation": "0.85",
            "normal_correlation": "0.7",
            "data_age_s": 1,
            "quality_score_ratio": "0.99",
        }

    market = {
        "SPY": quote(Decimal("561.20"), Decimal("7.85"), 30_000_000_000),
        "QQQ": quote(Decimal("482.75"), Decimal("8.10"), 18_000_000_000),
        "BTC/USD": quote(Decimal("64250.00"), Decimal("2150.00"), 25_000_000_000),
    }
    for name in EQUITIES:
        price = Decimal(rng.randint(1_000, 90_000)) / 100
        atr = (price * Decimal(rng.randint(10, 45)) / 1000).quantize(Decimal("0.01"))
        liquidity = rng.randint(20_000, 95_000) if name in ILLIQUID else rng.randint(2, 800) * 10**6
        market[name] = quote(price, atr, liquidity)
    return market


def _entered(rng: random.Random) -> datetime:
    if rng.random() < 0.2:  # inside the 5-day holding period
        return AS_OF - timedelta(hours=rng.randint(2, 110))
    return AS_OF - timedelta(days=rng.randint(8, 240), hours=rng.randint(0, 23))


def _positions(rng: random.Random, market: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    held: list[tuple[str, str]] = [("acc-0", symbol) for symbol in SMALL_BOOK]
    universe = (*EQUITIES, *CORE)
    while len(held) < 1_000:
        account = ("acc-1", "acc-2", "acc-1", "acc-2", "acc-3")[rng.randrange(5)]
        held.append((account, rng.choice(universe)))
    positions = []
    for index, (account, symbol) in enumerate(held):
        price = Decimal(market[symbol]["price_usd"])
        crypto = symbol == "BTC/USD"
        value = Decimal(rng.randint(1_500, 16_000))
        quantity = (
            (value / price).quantize(Decimal("0.0001")) if crypto else max(1, int(value / price))
        )
        manual = rng.random() < 0.05
        positions.append(
            {
                "id": f"P{index:04d}",
                "account_id": account,
                "symbol": symbol,
                "asset_class": "crypto" if crypto else "equity",
                "quantity": str(quantity),
                "side": "short" if rng.random() < 0.04 else "long",
                "entry_price_usd": str(
                    (price * Decimal(rng.randint(85, 112)) / 100).quantize(Decimal("0.01"))
                ),
                "entered_at": _entered(rng).isoformat().replace("+00:00", "Z"),
                "price_usd": str(price),
                "strategy_id": "manual" if manual else rng.choice(STRATEGIES),
                "manual": manual,
            }
        )
    return positions


def make_snapshot(seed: int = 11) -> Snapshot:
    rng = random.Random(seed)
    market = _market(rng)
    accounts = [
        {
            "id": account,
            "type": kind,
            "equity_usd": equity,
            "cash_usd": cash,
            "day_start_equity_usd": start,
            "peak_equity_usd": max(equity, start) + 250_000,
            "realized_pnl_usd": equity - start,
            "unrealized_pnl_usd": 0,
            "drift_flag": False,
        }
        for account, kind, equity, cash, start in ACCOUNTS
    ]
    flows = [
        {
            "account_id": account[0],
            "strategy_id": strategy,
            "orders_last_minute": 12,
            "slippage_bps": "3.5",
            "consecutive_losses": 2,
        }
        for account in ACCOUNTS
        for strategy in STRATEGIES
    ]
    return Snapshot.from_dict(
        {
            "version": 1,
            "as_of": AS_OF.isoformat().replace("+00:00", "Z"),
            "accounts": accounts,
            "positions": _positions(rng, market),
            "market": market,
            "system": {"error_rate_pct": "0.8", "connectivity_ratio": "0.99", "data_age_s": 1},
            "order_flow": flows,
            "regime": {
                "name": "risk-off",
                "severity": "high",
                "changed_at": (AS_OF - timedelta(days=2)).isoformat().replace("+00:00", "Z"),
            },
        }
    )


def start_state() -> State:
    return State(halted_symbols=frozenset({HALTED}), reducing_symbols=frozenset({REDUCE_ONLY}))


def _held(snapshot: Snapshot) -> dict[str, dict[str, tuple[Decimal, str]]]:
    """account -> symbol -> (long units, a strategy holding it)."""
    held: dict[str, dict[str, tuple[Decimal, str]]] = {a[0]: {} for a in ACCOUNTS}
    for position in snapshot.positions:
        if position.side == "long":
            units, strategy = held[position.account_id].get(position.symbol, (Decimal(0), ""))
            held[position.account_id][position.symbol] = (
                units + position.quantity,
                strategy or position.strategy_id,
            )
    return held


def make_requests(snapshot: Snapshot, count: int, seed: int = 5) -> Workload:
    rng = random.Random(seed)
    held = _held(snapshot)
    held_lists = {account: sorted(symbols) for account, symbols in held.items()}
    universe = (*EQUITIES, *CORE)
    requests: list[OrderRequest] = []
    times: list[datetime] = []
    now = AS_OF + timedelta(minutes=5)
    for index in range(count):
        in_burst = index % BURST_EVERY >= BURST_EVERY - BURST_LENGTH
        now += BURST_STEP if in_burst else STEP
        times.append(now)
        if in_burst:
            account = "acc-1"
        else:
            account = rng.choices(("acc-0", "acc-1", "acc-2", "acc-3"), (35, 25, 25, 15))[0]
        action = rng.choices(
            ("open", "increase", "decrease", "close", "cancel"), (25, 20, 20, 20, 15)
        )[0]
        book = held[account]
        if action == "open":
            if account == "acc-0" and rng.random() < 0.5:
                symbol = rng.choice(CHURN)
            else:
                symbol = rng.choice([s for s in universe if s not in book])
            strategy = rng.choice(STRATEGIES)
            current = None
        elif account == "acc-0" and action in ("close", "cancel") and rng.random() < 0.4:
            symbol = rng.choice(CHURN)  # what an earlier open bought (not in the snapshot)
            strategy = rng.choice(STRATEGIES)
            current = max(
                Decimal(1),
                (Decimal(9_000) / snapshot.market[symbol].price_usd).quantize(Decimal(1)),
            )
        else:
            symbol = rng.choice(held_lists[account])
            if rng.random() < 0.06:  # some orders on the core assets
                core = [s for s in CORE if s in book]
                symbol = rng.choice(core) if core else symbol
            current, strategy = book[symbol]
        crypto = symbol == "BTC/USD"
        increment = Decimal("0.0001") if crypto else Decimal(1)
        price = snapshot.market[symbol].price_usd

        def units(value: int, price: Decimal = price, increment: Decimal = increment) -> Decimal:
            return max(increment, (Decimal(value) / price).quantize(increment))

        target: Decimal | None = None
        if action == "open" and rng.random() < 0.5:
            target = units(rng.choice((4_000, 12_000, 30_000, 45_000, 70_000, 140_000)))
        elif action == "increase" and rng.random() < 0.6:
            assert current is not None
            target = current + units(rng.choice((3_000, 9_000, 20_000, 35_000, 60_000)))
        elif action == "decrease":
            assert current is not None
            target = (current * Decimal(rng.randint(20, 80)) / 100).quantize(increment)
            if target >= current:
                target = Decimal(0)
        score = target_score = None
        position = PositionContext()
        if rng.random() < 0.45:
            score = Decimal(rng.randint(5, 95)) / 100
            target_score = min(Decimal(1), score + Decimal("0.1"))
            if score < Decimal("0.4") and rng.random() < 0.3:  # already past its grace
                position = PositionContext(score_below_since=now - timedelta(days=4))
        requests.append(
            OrderRequest(
                id=f"r{index:05d}",
                account_id=account,
                symbol=symbol,
                action=action,
                current_size=current if symbol in CHURN or rng.random() < 0.5 else None,
                target_size=target,
                current_score=score,
                target_score=target_score,
                strategy_id=strategy,
                reason="bench",
                size_increment=increment,
                position=position,
            )
        )
    return Workload(snapshot, start_state(), tuple(requests), tuple(times))
