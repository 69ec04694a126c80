"""Deterministic synthetic snapshots for the evaluation benchmark (seeded)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from bastion.engine.snapshot import Snapshot

ACCOUNT_TYPES = ("gen", "rev", "com")


def make_snapshot(positions: int, *, symbols: int | None = None, seed: int = 7) -> Snapshot:
    """`positions` positions over `symbols` symbols (default: one per two positions, <= 50)."""
    rng = random.Random(seed)
    if symbols is None:
        symbols = max(1, min(50, positions // 2))
    names = [f"S{index:03d}" for index in range(symbols)]
    market: dict[str, Any] = {}
    for name in names:
        price = Decimal(rng.randint(20, 900))
        market[name] = {
            "price_usd": str(price),
            "bid_usd": str(price - Decimal("0.01")),
            "ask_usd": str(price + Decimal("0.01")),
            "atr_usd": str((price / 50).quantize(Decimal("0.01"))),
            "volume": 1_000_000,
            "avg_volume": rng.randint(500_000, 1_500_000),
            "volatility": "0.2",
            "normal_volatility": "0.18",
            "liquidity_usd": 40_000_000,
            "normal_liquidity_usd": 50_000_000,
            "correlation": "0.7",
            "normal_correlation": "0.8",
            "data_age_s": 2,
            "quality_score_ratio": "0.98",
        }
    accounts = [
        {
            "id": f"acc-{index}",
            "type": ACCOUNT_TYPES[index % 3],
            "equity_usd": 1_000_000,
            "cash_usd": 100_000,
            "day_start_equity_usd": 1_004_000,
            "peak_equity_usd": 1_010_000,
            "realized_pnl_usd": 0,
            "unrealized_pnl_usd": 0,
            "drift_flag": False,
        }
        for index in range(3)
    ]
    held = []
    for index in range(positions):
        name = rng.choice(names)
        price = Decimal(market[name]["price_usd"])
        atr = Decimal(market[name]["atr_usd"])
        move = Decimal(rng.randint(-350, 150)) / 100 * atr  # some positions breach
        held.append(
            {
                "id": f"P{index:05d}",
                "account_id": f"acc-{index % 3}",
                "symbol": name,
                "asset_class": "equity",
                "quantity": rng.randint(1, 500),
                "side": "long",
                "entry_price_usd": str(price - move),
                "entered_at": "2026-11-01T14:30:00Z",
                "price_usd": str(price),
                "strategy_id": f"strat-{index % 7}",
                "manual": False,
            }
        )
    flows = [
        {
            "account_id": f"acc-{a}",
            "strategy_id": f"strat-{s}",
            "orders_last_minute": 3,
            "slippage_bps": "2.5",
            "consecutive_losses": 1,
        }
        for a in range(3)
        for s in range(7)
    ]
    return Snapshot.from_dict(
        {
            "version": 1,
            "as_of": "2026-11-20T15:30:00Z",
            "accounts": accounts,
            "positions": held,
            "market": market,
            "system": {"error_rate_pct": "0.5", "connectivity_ratio": 1, "data_age_s": 2},
            "order_flow": flows,
            "regime": {"name": "calm", "severity": "low", "changed_at": "2026-11-01T00:00:00Z"},
        }
    )
