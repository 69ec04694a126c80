"""Builders for can_execute tests: snapshots, requests, states and policy changes.

Every number is round so that each boundary can be computed by hand: the default
account has equity 100 000 USD (cash and day-start equity the same), the default
symbol XYZ trades at 100 USD with an ATR of 2 USD and 10 M USD of liquidity; with the
LimitPolicy's atr_multiple 2 one unit risks 4 USD, so 1 % of equity (1 000 USD) is
250 units.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bastion.engine.authority import OrderRequest, can_execute
from bastion.engine.authority.check import ExecutionDecision
from bastion.engine.authority.request import PositionContext
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.snapshot import Snapshot, validate_snapshot
from bastion.engine.state import AuthorityState, State

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ACCOUNT = "acct-1"
SYMBOL = "XYZ"
KEY = f"{ACCOUNT}/{SYMBOL}"
DAY = timedelta(days=1)

Number = int | str | Decimal


def D(value: Number) -> Decimal:
    return Decimal(str(value))


def market(price: Number = 100, atr: Number = 2, liquidity: Number = 10_000_000) -> dict[str, Any]:
    """Market data for one symbol; only price, ATR and liquidity matter to can_execute."""
    return {
        "price_usd": str(price),
        "bid_usd": str(price),
        "ask_usd": str(price),
        "atr_usd": str(atr),
        "volume": 1_000_000,
        "avg_volume": 1_000_000,
        "volatility": "0.2",
        "normal_volatility": "0.2",
        "liquidity_usd": str(liquidity),
        "normal_liquidity_usd": str(liquidity),
        "correlation": "0.5",
        "normal_correlation": "0.5",
        "data_age_s": 1,
        "quality_score_ratio": 1,
    }


def position(
    symbol: str = SYMBOL,
    quantity: Number = 10,
    *,
    price: Number = 100,
    side: str = "long",
    strategy: str = "s1",
    manual: bool = False,
    entered_at: datetime = NOW - 30 * DAY,
    account: str = ACCOUNT,
    id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id or f"{account}-{symbol}-{side}-{strategy}",
        "account_id": account,
        "symbol": symbol,
        "asset_class": "equity",
        "quantity": str(quantity),
        "side": side,
        "entry_price_usd": str(price),
        "entered_at": entered_at.isoformat(),
        "price_usd": str(price),
        "strategy_id": strategy,
        "manual": manual,
    }


def account(
    id: str = ACCOUNT,
    *,
    equity: Number = 100_000,
    cash: Number | None = None,
    day_start: Number | None = None,
    drift: bool = False,
    type: str = "gen",
) -> dict[str, Any]:
    return {
        "id": id,
        "type": type,
        "equity_usd": str(equity),
        "cash_usd": str(equity if cash is None else cash),
        "day_start_equity_usd": str(equity if day_start is None else day_start),
        "peak_equity_usd": str(max(D(equity), D(equity if day_start is None else day_start))),
        "realized_pnl_usd": 0,
        "unrealized_pnl_usd": 0,
        "drift_flag": drift,
    }


def snapshot(
    *,
    equity: Number = 100_000,
    cash: Number | None = None,
    day_start: Number | None = None,
    drift: bool = False,
    positions: Iterable[dict[str, Any]] = (),
    markets: Mapping[str, dict[str, Any]] | None = None,
    regime: str = "calm",
    severity: str = "low",
    regime_changed_at: datetime = NOW - DAY,
    extra_accounts: Iterable[dict[str, Any]] = (),
) -> Snapshot:
    """One account (ACCOUNT) with the given money, positions and markets (XYZ by default)."""
    return validate_snapshot(
        {
            "version": 1,
            "as_of": NOW.isoformat(),
            "accounts": [
                account(equity=equity, cash=cash, day_start=day_start, drift=drift),
                *extra_accounts,
            ],
            "positions": list(positions),
            "market": dict(markets) if markets is not None else {SYMBOL: market()},
            "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
            "order_flow": [],
            "regime": {
                "name": regime,
                "severity": severity,
                "changed_at": regime_changed_at.isoformat(),
            },
        }
    )


def request(
    action: str = "open",
    symbol: str = SYMBOL,
    *,
    entry_at: datetime | None = None,
    score_below_since: datetime | None = None,
    **fields: Any,
) -> OrderRequest:
    """An OrderRequest; numbers become Decimal, entry_at / score_below_since go to position."""
    if fields.get("size_increment", 0) is None:
        del fields["size_increment"]  # the OrderRequest default
    for name in ("current_size", "target_size", "current_score", "size_increment"):
        if fields.get(name) is not None:
            fields[name] = D(fields[name])
    return OrderRequest(
        symbol=symbol,
        action=action,
        position=PositionContext(entry_at=entry_at, score_below_since=score_below_since),
        **fields,
    )


def state(
    *,
    submits: Iterable[datetime] = (),
    trades: Iterable[tuple[str, datetime]] = (),
    overrides: Mapping[str, datetime] | None = None,
    grace: Mapping[str, datetime] | None = None,
    **fields: Any,
) -> State:
    """A State whose authority memory holds the given approvals (ACCOUNT), trades (KEY),
    last overrides and grace clocks; other State fields pass through."""
    memory = AuthorityState(
        submits={ACCOUNT: tuple(submits)} if submits else {},
        trades={KEY: tuple(trades)} if trades else {},
        overrides=dict(overrides or {}),
        grace=dict(grace or {}),
    )
    return State(authority=memory, **fields)


def round_trips(
    count: int, *, last_close: datetime, spacing: timedelta = DAY / 4
) -> list[tuple[str, datetime]]:
    """`count` open→close round trips, oldest first, the last close at `last_close`."""
    trades: list[tuple[str, datetime]] = []
    at = last_close - spacing * (2 * count - 1)
    for _ in range(count):
        trades += [("open", at), ("close", at + spacing)]
        at += 2 * spacing
    return trades


def canonical(result: ExecutionDecision) -> str:
    """The decision's bytes: what must not change between two identical checks."""
    return json.dumps(result.to_dict(), sort_keys=True)


def summary(result: ExecutionDecision) -> tuple[str, bool, Decimal | None, tuple[str, ...]]:
    """(outcome, approved, approved_size, blocking): the outcome in one comparable value."""
    return result.outcome, result.approved, result.approved_size, result.blocking


def decide(
    policies: CompiledPolicySet,
    order: OrderRequest,
    snap: Snapshot | None = None,
    memory: State | None = None,
    now: datetime = NOW,
    **options: Any,
) -> ExecutionDecision:
    """can_execute with the default snapshot (XYZ, no positions) and an empty state."""
    return can_execute(
        policies,
        order,
        snap if snap is not None else snapshot(),
        memory if memory is not None else State(),
        now,
        **options,
    )
