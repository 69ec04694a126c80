"""The Snapshot: everything one evaluation reads, frozen, validated, timestamped.

Money, prices and ratios are `Decimal`; times are timezone-aware UTC datetimes;
collections are tuples and a read-only mapping, so a Snapshot cannot change after it
is built. Build one from untrusted data with `Snapshot.from_dict` (or
`validate.load_snapshot` for a file): both validate first and raise SnapshotError
listing every problem. `to_dict` gives JSON-ready data (Decimals as exact strings,
times as ISO-8601 ``Z`` strings) that `from_dict` reads back to an equal Snapshot.

The field tables in `fields` are the single source of truth; these classes mirror them
(tests/snapshot checks that they agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from bastion.engine.snapshot.fields import RECORDS, FieldKind
from bastion.engine.snapshot.messages import format_time

SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    type: str  # gen | rev | com
    equity_usd: Decimal
    cash_usd: Decimal
    day_start_equity_usd: Decimal
    peak_equity_usd: Decimal
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    drift_flag: bool


@dataclass(frozen=True, slots=True)
class OptionLeg:
    option_type: str  # call | put
    strike_usd: Decimal
    expires_at: datetime
    underlying_price_usd: Decimal
    implied_volatility: Decimal
    dividend_yield: Decimal = Decimal(0)
    risk_free_rate: Decimal = Decimal(0)
    multiplier: Decimal = Decimal(100)
    delta: Decimal | None = None  # None: compute it (Black–Scholes with dividend yield)


@dataclass(frozen=True, slots=True)
class Position:
    id: str
    account_id: str
    symbol: str
    asset_class: str  # equity | crypto | option
    quantity: Decimal
    side: str  # long | short
    entry_price_usd: Decimal
    entered_at: datetime
    price_usd: Decimal
    strategy_id: str
    manual: bool
    option: OptionLeg | None = None


@dataclass(frozen=True, slots=True)
class Market:
    price_usd: Decimal
    bid_usd: Decimal
    ask_usd: Decimal
    atr_usd: Decimal
    volume: Decimal
    avg_volume: Decimal
    volatility: Decimal
    normal_volatility: Decimal
    liquidity_usd: Decimal
    normal_liquidity_usd: Decimal
    correlation: Decimal
    normal_correlation: Decimal
    data_age_s: Decimal
    quality_score_ratio: Decimal


@dataclass(frozen=True, slots=True)
class System:
    error_rate_pct: Decimal
    connectivity_ratio: Decimal
    data_age_s: Decimal


@dataclass(frozen=True, slots=True)
class OrderFlow:
    account_id: str
    strategy_id: str
    orders_last_minute: int
    slippage_bps: Decimal
    consecutive_losses: int


@dataclass(frozen=True, slots=True)
class Regime:
    name: str
    severity: str  # low | medium | high | critical
    changed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    version: int = SNAPSHOT_VERSION
    as_of: datetime
    accounts: tuple[Account, ...]
    positions: tuple[Position, ...]
    market: Mapping[str, Market]  # by symbol, read-only
    system: System
    order_flow: tuple[OrderFlow, ...]
    regime: Regime

    @classmethod
    def from_dict(cls, data: object, *, source: str = "") -> Snapshot:
        """Validate and normalise `data`; raises SnapshotError listing every problem."""
        from bastion.engine.snapshot.validate import normalize_document  # noqa: PLC0415 (cycle)

        return build_snapshot(normalize_document(data, source=source))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: Decimals as exact strings, times as ISO-8601 with ``Z``."""
        return _record_to_dict("Snapshot", self)


CLASSES: dict[str, type] = {
    "Snapshot": Snapshot,
    "Account": Account,
    "Position": Position,
    "OptionLeg": OptionLeg,
    "Market": Market,
    "System": System,
    "OrderFlow": OrderFlow,
    "Regime": Regime,
}


def build_snapshot(document: Mapping[str, Any]) -> Snapshot:
    """Build from a document `validate.normalize_document` returned (trusted, typed)."""
    snapshot = _record_from_document("Snapshot", document)
    assert isinstance(snapshot, Snapshot)
    return snapshot


def _record_from_document(record: str, document: Mapping[str, Any]) -> object:
    values: dict[str, Any] = {}
    for field in RECORDS[record].fields:
        if field.name not in document:
            continue  # optional: the dataclass default applies
        value = document[field.name]
        if field.kind is FieldKind.RECORD:
            value = _record_from_document(field.record, value)
        elif field.kind is FieldKind.LIST:
            value = tuple(_record_from_document(field.record, item) for item in value)
        elif field.kind is FieldKind.BY_SYMBOL:
            value = MappingProxyType(
                {key: _record_from_document(field.record, item) for key, item in value.items()}
            )
        values[field.name] = value
    return CLASSES[record](**values)


def _record_to_dict(record: str, instance: object) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in RECORDS[record].fields:
        value = getattr(instance, field.name)
        if value is None:
            continue
        if field.kind is FieldKind.RECORD:
            value = _record_to_dict(field.record, value)
        elif field.kind is FieldKind.LIST:
            value = [_record_to_dict(field.record, item) for item in value]
        elif field.kind is FieldKind.BY_SYMBOL:
            value = {key: _record_to_dict(field.record, item) for key, item in value.items()}
        elif field.kind is FieldKind.DECIMAL:
            value = str(value)
        elif field.kind is FieldKind.TIME:
            value = format_time(value)
        result[field.name] = value
    return result
