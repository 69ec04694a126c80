"""Deterministic synthetic snapshots for the evaluation benchmark (seeded).

`make_document` assembles the snapshot document in code, typed as the adapters' builder
assembles it (Decimals, datetimes), with the positions as a venue adapter returns them
(adapters/venue.VenuePosition: what the service holds of a poll); `build` turns it into
a Snapshot the way the builder does (adapters/builder.py): the positions made as the
model's Position objects and checked as they are made (`builder_parts.positions`,
`typed.maker`), the rest of the document and the cross-references checked by
`snapshot_from_typed` — every field rule, without cerberus. The market records are
given here, not worked out from bars (bench/eval/ingest.py times the builder from a
venue poll, bars and all). `make_snapshot` does both. `moved` reprices a document for
the next tick (a few positions move).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bastion.adapters import builder_parts
from bastion.adapters.builder_parts import BuilderConfig, Context, SeriesMemos
from bastion.adapters.builder_state import BuilderState
from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.built import snapshot_from_typed

ACCOUNT_TYPES = ("gen", "rev", "com")
AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ENTERED = datetime(2026, 11, 1, 14, 30, tzinfo=UTC)


def make_document(positions: int, *, symbols: int | None = None, seed: int = 7) -> dict[str, Any]:
    """`positions` positions over `symbols` symbols (default: one per two positions, <= 50)."""
    rng = random.Random(seed)
    if symbols is None:
        symbols = max(1, min(50, positions // 2))
    names = [f"S{index:03d}" for index in range(symbols)]
    market: dict[str, Any] = {}
    for name in names:
        price = Decimal(rng.randint(20, 900))
        market[name] = {
            "price_usd": price,
            "bid_usd": price - Decimal("0.01"),
            "ask_usd": price + Decimal("0.01"),
            "atr_usd": (price / 50).quantize(Decimal("0.01")),
            "volume": Decimal(1_000_000),
            "avg_volume": Decimal(rng.randint(500_000, 1_500_000)),
            "volatility": Decimal("0.2"),
            "normal_volatility": Decimal("0.18"),
            "liquidity_usd": Decimal(40_000_000),
            "normal_liquidity_usd": Decimal(50_000_000),
            "correlation": Decimal("0.7"),
            "normal_correlation": Decimal("0.8"),
            "data_age_s": Decimal(2),
            "quality_score_ratio": Decimal("0.98"),
        }
    accounts = [
        {
            "id": f"acc-{index}",
            "type": ACCOUNT_TYPES[index % 3],
            "equity_usd": Decimal(1_000_000),
            "cash_usd": Decimal(100_000),
            "day_start_equity_usd": Decimal(1_004_000),
            "peak_equity_usd": Decimal(1_010_000),
            "realized_pnl_usd": Decimal(0),
            "unrealized_pnl_usd": Decimal(0),
            "drift_flag": False,
        }
        for index in range(3)
    ]
    account_ids = [f"acc-{index}" for index in range(3)]
    strategy_ids = [f"strat-{index}" for index in range(7)]
    held = []
    for index in range(positions):
        name = rng.choice(names)
        price = market[name]["price_usd"]
        atr = market[name]["atr_usd"]
        move = Decimal(rng.randint(-350, 150)) / 100 * atr  # some positions breach
        held.append(
            VenuePosition(
                id=f"P{index:07d}",
                account_id=account_ids[index % 3],
                symbol=name,
                asset_class="equity",
                quantity=Decimal(rng.randint(1, 500)),
                side="long",
                entry_price_usd=price - move,
                price_usd=price,
                entered_at=ENTERED,
                strategy_id=strategy_ids[index % 7],
            )
        )
    flows = [
        {
            "account_id": f"acc-{a}",
            "strategy_id": f"strat-{s}",
            "orders_last_minute": 3,
            "slippage_bps": Decimal("2.5"),
            "consecutive_losses": 1,
        }
        for a in range(3)
        for s in range(7)
    ]
    return {
        "version": 1,
        "as_of": AS_OF,
        "accounts": accounts,
        "positions": tuple(held),
        "market": market,
        "system": {
            "error_rate_pct": Decimal("0.5"),
            "connectivity_ratio": Decimal(1),
            "data_age_s": Decimal(2),
        },
        "order_flow": flows,
        "regime": {
            "name": "calm",
            "severity": "low",
            "changed_at": datetime(2026, 11, 1, tzinfo=UTC),
        },
    }


_CONFIG = BuilderConfig()
_MEMOS = SeriesMemos()  # as the service's builder keeps them from poll to poll


def build(document: dict[str, Any]) -> Snapshot:
    """The Snapshot of a document assembled in code, as the adapters' builder makes it:
    the venue's positions made into the model's (checked as they are made), then the
    rest of the document and the cross-references checked."""
    context = Context(_CONFIG, document["as_of"], [], memos=_MEMOS)
    _, positions, left_out, checked = builder_parts.positions(
        context,
        document["positions"],
        document["market"],
        BuilderState(),
        accounts=[account["id"] for account in document["accounts"]],
    )
    assert not left_out, left_out  # every synthetic position is usable
    return snapshot_from_typed(document, positions, source="bench", checked=checked)


def make_snapshot(positions: int, *, symbols: int | None = None, seed: int = 7) -> Snapshot:
    return build(make_document(positions, symbols=symbols, seed=seed))


def moved(document: dict[str, Any], *, every: int = 50, seed: int = 11) -> dict[str, Any]:
    """The next tick's document: one symbol in `every` fell by one to two ATRs (its longs
    escalate), everything else as it was (the positions' records are shared, not copied)."""
    rng = random.Random(seed)
    market = dict(document["market"])
    for name in sorted(market)[::every]:
        record = dict(market[name])
        shift = -record["atr_usd"] * Decimal(rng.choice((1, 2)))
        for key in ("price_usd", "bid_usd", "ask_usd"):
            record[key] = max(Decimal("0.05"), record[key] + shift)
        market[name] = record
    return {**document, "market": market}
