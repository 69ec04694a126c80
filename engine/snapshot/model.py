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

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, replace
from dataclasses import Field as DataclassField
from dataclasses import field as dataclass_field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal
from inspect import signature
from itertools import pairwise
from keyword import iskeyword
from types import MappingProxyType
from typing import Any

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind
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


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One closed trade (a position, or part of one, opened and closed again)."""

    id: str  # venue trade / order id, unique per account
    account_id: str
    symbol: str
    side: str  # long | short (the position's side, not the fill's)
    strategy_id: str  # "" when unknown (absent from the JSON)
    units: Decimal
    opened_at: datetime
    closed_at: datetime
    entry_price_usd: Decimal
    exit_price_usd: Decimal
    profit_usd: Decimal  # realised, after fees where the venue reports them
    profit_pct: Decimal  # per cent of entry value (3 means 3 %)
    exit_reason: str  # stop_loss | take_profit | signal | manual | liquidation


@dataclass(frozen=True, slots=True)
class Instrument:
    """What a symbol is; in the JSON the symbol is the key under ``instruments``."""

    symbol: str
    asset_class: str  # equity | crypto | option | future | fx | other
    sector: str | None = None  # free text, e.g. "technology"; None when unknown
    # The venue's order rules (controls/instrument_*.py); None: the venue sets none.
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None  # USD
    max_notional: Decimal | None = None  # USD


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedOption:
    """One listed option contract and its latest quote, USD per share."""

    symbol: str  # the contract's own symbol (OCC)
    option_type: str  # call | put
    strike_usd: Decimal
    expires_at: datetime
    bid_usd: Decimal  # 0: nobody bids
    ask_usd: Decimal
    quoted_at: datetime | None = None  # None: the chain's as_of
    last_usd: Decimal | None = None
    implied_volatility: Decimal | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    theta_per_day_usd: Decimal | None = None
    vega_usd: Decimal | None = None
    open_interest: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionChain:
    """The listed contracts of one underlying; in the JSON the underlying is the key under
    ``option_chains``."""

    underlying: str
    as_of: datetime
    contracts: tuple[ListedOption, ...]


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
    trades: tuple[ClosedTrade, ...] = ()  # sorted by closed_at
    instruments: Mapping[str, Instrument] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )  # by symbol, read-only
    option_chains: Mapping[str, OptionChain] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )  # by underlying symbol, read-only

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
    "ClosedTrade": ClosedTrade,
    "Instrument": Instrument,
    "OptionChain": OptionChain,
    "ListedOption": ListedOption,
}
# Where a dataclass and its field table differ on purpose (tests/snapshot knows these):
# a record keyed by symbol carries its key in a field the JSON does not repeat, and an
# optional text field whose absence reads as "" has no dataclass default, to keep the
# agreed field order.
KEY_FIELDS: dict[str, str] = {"Instrument": "symbol", "OptionChain": "underlying"}
ABSENT_AS_EMPTY: frozenset[tuple[str, str]] = frozenset({("ClosedTrade", "strategy_id")})


def build_snapshot(document: Mapping[str, Any]) -> Snapshot:
    """Build from a document `validate.normalize_document` returned (trusted, typed)."""
    snapshot = _record_from_document("Snapshot", document)
    assert isinstance(snapshot, Snapshot)
    if any(a.closed_at > b.closed_at for a, b in pairwise(snapshot.trades)):
        ordered = tuple(sorted(snapshot.trades, key=lambda trade: trade.closed_at))
        snapshot = replace(snapshot, trades=ordered)
    return snapshot


def _record_from_document(record: str, document: Mapping[str, Any], key: str = "") -> object:
    return _FROM_DOCUMENT[record](document, key)


Build = Callable[[Mapping[str, Any], str], object]


def _compile_from_document(record: str) -> Build:
    """The constructor of one record from its validated document, the field table walked
    once here rather than on every record: the generic one, for what the written-out
    constructors (:func:`_compile_builder`) leave to it."""
    cls, key_field = CLASSES[record], KEY_FIELDS.get(record)
    steps = [
        (field.name, field.kind, field.record, (record, field.name) in ABSENT_AS_EMPTY)
        for field in RECORDS[record].fields
    ]

    def build(document: Mapping[str, Any], key: str) -> object:
        values: dict[str, Any] = {}
        if key_field is not None:
            values[key_field] = key
        for name, kind, nested, absent_as_empty in steps:
            if name not in document:
                if absent_as_empty:
                    values[name] = ""
                continue  # optional: the dataclass default applies
            value = document[name]
            if kind is FieldKind.RECORD:
                value = _FROM_DOCUMENT[nested](value, "")
            elif kind is FieldKind.LIST:
                item = _FROM_DOCUMENT[nested]
                value = tuple([item(entry, "") for entry in value])
            elif kind is FieldKind.BY_SYMBOL:
                item = _FROM_DOCUMENT[nested]
                value = MappingProxyType({sym: item(entry, sym) for sym, entry in value.items()})
            values[name] = value
        return cls(**values)

    return build


def _compile_builder(record: str, namespace: dict[str, Any]) -> Build:
    """``build_<record>(document, key)``: the record's constructor written out once from
    its field table into ``namespace`` (shared, so that one calls the next directly): a
    poll has ~50 market records, and the generic one's loop and the frozen class's
    ``__init__`` (a setter call per field) cost more than checking them. The values are
    stored into a twin of the class (:func:`unfrozen_twin`, typed.maker's too), an absent
    optional field gets what the class's ``__init__`` would give it (its default, a
    call of its default factory, or "" for ``ABSENT_AS_EMPTY``), and the object then
    becomes the class's own. Anything else — not a dict, a dict without a field the
    class cannot do without, a class the twin cannot stand in for — goes to the generic
    constructor (:func:`_compile_from_document`), which raises as it always did.
    Field names enter the source only as identifiers and literals from the tables."""
    generic, twin = _compile_from_document(record), unfrozen_twin(record)
    assert record.isidentifier() and not iskeyword(record), record
    if twin is None:
        namespace[f"build_{record}"] = generic
        return generic
    cls = CLASSES[record]
    namespace.update({f"cls_{record}": cls, f"twin_{record}": twin, f"generic_{record}": generic})
    defaults = {item.name: item for item in dataclass_fields(cls)}
    lines = [
        f"def build_{record}(document, key):",
        "    if type(document) is not dict:",
        f"        return generic_{record}(document, key)",
        f"    o = new(twin_{record})",
    ]
    if record in KEY_FIELDS:
        lines.append(f"    o.{KEY_FIELDS[record]} = key")
    lines.append("    try:")
    for field in RECORDS[record].fields:
        name = field.name
        assert name.isidentifier() and not iskeyword(name), name
        value = _built_value(field, f"document[{name!r}]")
        absent = _when_absent(record, defaults[name], namespace)
        if absent is None:  # required by the class: KeyError when absent
            lines.append(f"        o.{name} = {value}")
        else:
            lines += [
                f"        if {name!r} in document:",
                f"            o.{name} = {value}",
                "        else:",
                f"            o.{name} = {absent}",
            ]
    lines += [
        "    except KeyError:  # the generic constructor raises what it always raised",
        f"        return generic_{record}(document, key)",
        f"    o.__class__ = cls_{record}",
        "    return o",
    ]
    exec("\n".join(lines), namespace)
    built: Build = namespace[f"build_{record}"]
    return built


def _built_value(field: Field, value: str) -> str:
    """The source of the field's value in the record, ``value`` its document's."""
    kind, nested = field.kind, field.record
    if kind is FieldKind.RECORD:
        return f"build_{nested}({value}, '')"
    if kind is FieldKind.LIST:
        return f"tuple([build_{nested}(entry, '') for entry in {value}])"
    if kind is FieldKind.BY_SYMBOL:
        items = f"{{symbol: build_{nested}(entry, symbol) for symbol, entry in {value}.items()}}"
        return f"MappingProxyType({items})"
    return value


def _when_absent(record: str, item: DataclassField[Any], namespace: dict[str, Any]) -> str | None:
    """The source of what the class's ``__init__`` stores for a field absent from the
    document; None: the class cannot do without it (the generic constructor raises)."""
    if (record, item.name) in ABSENT_AS_EMPTY:
        return '""'
    if item.default is not MISSING:
        namespace[f"default_{record}_{item.name}"] = item.default  # the very object
        return f"default_{record}_{item.name}"
    if item.default_factory is not MISSING:
        namespace[f"factory_{record}_{item.name}"] = item.default_factory
        return f"factory_{record}_{item.name}()"
    return None


def unfrozen_twin(record: str) -> type | None:
    """An unfrozen class of the same layout as ``CLASSES[record]`` (its slots, in their
    order), where filling one and assigning ``__class__`` makes what the class's
    ``__init__`` makes: a dataclass of slots and no base class whose fields are its
    ``__init__``'s arguments and the table's fields (and its key field), with no
    ``__post_init__``. None otherwise: the generic constructor, ``cls(**values)``.
    (tests/snapshot/test_compiled_checks.py holds both to the generic constructor.)"""
    cls = CLASSES[record]
    names = tuple(item.name for item in dataclass_fields(cls))
    expected = {field.name for field in RECORDS[record].fields}
    if record in KEY_FIELDS:
        expected.add(KEY_FIELDS[record])
    if (
        hasattr(cls, "__post_init__")
        or cls.__bases__ != (object,)
        or "__new__" in vars(cls)
        or getattr(cls, "__slots__", None) != names
        or tuple(signature(cls).parameters) != names
        or set(names) != expected
    ):
        return None
    twin = type(f"_Unfrozen{cls.__name__}", (), {"__slots__": names})
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = cls  # the same layout, or TypeError
    except TypeError:
        return None
    return twin


def _compiled_builders() -> dict[str, Build]:
    namespace: dict[str, Any] = {"new": object.__new__, "MappingProxyType": MappingProxyType}
    return {name: _compile_builder(name, namespace) for name in CLASSES}


_FROM_DOCUMENT: dict[str, Build] = _compiled_builders()


def _record_to_dict(record: str, instance: object) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in RECORDS[record].fields:
        value = getattr(instance, field.name)
        if value is None or (not field.required and value in ("", ())):
            continue  # optional and absent / empty: left out, read back as the default
        if field.kind is FieldKind.BY_SYMBOL and not field.required and not value:
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
