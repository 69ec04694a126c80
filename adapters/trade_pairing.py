"""Fills → closed trades: FIFO round trips per account and symbol, shared by every venue.

A venue reports fills (buys and sells); the snapshot wants closed trades (a position, or
part of one, opened and closed again). :func:`pair_fills` walks the fills oldest first and
keeps, per (account, symbol), a FIFO queue of open :class:`Lot` s. A fill against the
queue's side closes lots first-in first-out; what is left of it opens a lot on its own
side. One closing fill gives one trade *part*; :func:`merge_parts` joins the parts of
one order (partial fills, or one fill closing several lots) into one
:class:`ClosedTrade` whose id is the order id, so that one stop order that filled in
three pieces is one stop-loss exit, not three.

Money: the entry price of a trade is the units-weighted mean of the lots it closed, the
exit price its fills' mean; ``profit_usd`` is the price difference × units (sign by side)
minus the fees of the opening fills (pro rata to the units closed) and of the closing
fill (pro rata to the part of it that closed); ``profit_pct`` is profit ÷ entry value ×
100, rounded to 4 places. Option and future multipliers are not applied (units are what
the venue's fill says).

Exit reasons (:func:`exit_reason`, from the *closing* order as the venue reports it):

======================================================  ===============
venue order type (normalised: lower case, ``-`` → ``_``)  exit_reason
======================================================  ===============
stop, stop_loss, stop_limit, stop_loss_limit,             stop_loss
trailing_stop, trailing_stop_limit
take_profit, take_profit_limit                            take_profit
limit, when the venue marks it a take-profit leg          take_profit
(Alpaca: a limit leg of a bracket / oco order)
a fill the venue flags as a liquidation                   liquidation
anything else (market, limit, unknown)                    signal
======================================================  ===============

``manual`` is never inferred: no venue says an order was placed by hand (sim, replay and
snapshot files may state it).

History that starts mid-position: a closing fill with no open lot on record (the
position was opened before the first fill fetched) cannot be priced; it is returned in
:attr:`Pairing.unmatched` and makes no trade. A sell without long lots opens a short
only where the venue can be short: when the fill says so (``position_effect`` "open",
Alpaca's ``sell_short``) or when ``allow_short`` is set; a fill that says it closes
(``position_effect`` "close") never opens anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from bastion.adapters.venue import Fill
from bastion.engine.snapshot.model import ClosedTrade

PCT_PLACES = Decimal("0.0001")
_STOP_TYPES = frozenset(
    {"stop", "stop_loss", "stop_limit", "stop_loss_limit", "trailing_stop", "trailing_stop_limit"}
)
_TAKE_PROFIT_TYPES = frozenset({"take_profit", "take_profit_limit"})

SymbolKey = tuple[str, str]  # (account_id, symbol)


def exit_reason(
    order_type: str, *, take_profit_leg: bool = False, liquidation: bool = False
) -> str:
    """The exit reason a closing fill of an order of ``order_type`` gives (table above)."""
    if liquidation:
        return "liquidation"
    kind = order_type.strip().lower().replace("-", "_").replace(" ", "_")
    if kind in _STOP_TYPES:
        return "stop_loss"
    if kind in _TAKE_PROFIT_TYPES or (kind == "limit" and take_profit_leg):
        return "take_profit"
    return "signal"


@dataclass(frozen=True, slots=True)
class Lot:
    """What is still open of one opening fill."""

    fill_id: str
    side: str  # long | short
    units: Decimal
    price_usd: Decimal
    fee_per_unit_usd: Decimal
    opened_at: datetime
    strategy_id: str


@dataclass(frozen=True, slots=True)
class Pairing:
    """What :func:`pair_fills` made of the fills."""

    parts: tuple[ClosedTrade, ...]  # one per closing fill; merge_parts joins them
    open_lots: Mapping[SymbolKey, tuple[Lot, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    unmatched: tuple[Fill, ...] = ()  # closing fills with no open lot on record


def pair_fills(
    fills: Iterable[Fill],
    open_lots: Mapping[SymbolKey, Sequence[Lot]] | None = None,
    *,
    allow_short: bool = False,
) -> Pairing:
    """Pair ``fills`` (any order; sorted here by time, then id) against ``open_lots``."""
    lots: dict[SymbolKey, list[Lot]] = {
        key: list(queue) for key, queue in (open_lots or {}).items() if queue
    }
    parts: list[ClosedTrade] = []
    unmatched: list[Fill] = []
    for fill in sorted(fills, key=lambda f: (f.filled_at, f.id)):
        key = (fill.account_id, fill.symbol)
        queue = lots.setdefault(key, [])
        closing_side = "long" if fill.side == "sell" else "short"
        remaining = fill.quantity
        if queue and queue[0].side == closing_side:
            part, remaining = _close(fill, queue)
            parts.append(part)
        if remaining <= 0:
            continue
        opens_side = "long" if fill.side == "buy" else "short"
        can_open = fill.position_effect != "close" and (
            opens_side == "long" or fill.position_effect == "open" or allow_short
        )
        if not can_open:
            unmatched.append(fill)
            continue
        fee = fill.fee_usd / fill.quantity if fill.quantity else Decimal(0)
        queue.append(
            Lot(
                fill.id,
                opens_side,
                remaining,
                fill.price_usd,
                fee,
                fill.filled_at,
                fill.strategy_id,
            )
        )
    kept = {key: tuple(queue) for key, queue in lots.items() if queue}
    return Pairing(tuple(parts), MappingProxyType(kept), tuple(unmatched))


def _close(fill: Fill, queue: list[Lot]) -> tuple[ClosedTrade, Decimal]:
    """Close lots of ``queue`` (FIFO, in place) with ``fill``: the trade part, and the
    units of the fill left over (they open a position on the fill's side)."""
    remaining = fill.quantity
    units = cost = opening_fees = Decimal(0)
    opened_at = queue[0].opened_at
    side, strategy = queue[0].side, queue[0].strategy_id
    while queue and remaining > 0:
        lot = queue[0]
        taken = min(lot.units, remaining)
        units += taken
        cost += taken * lot.price_usd
        opening_fees += taken * lot.fee_per_unit_usd
        remaining -= taken
        if taken == lot.units:
            queue.pop(0)
        else:
            queue[0] = Lot(
                lot.fill_id,
                lot.side,
                lot.units - taken,
                lot.price_usd,
                lot.fee_per_unit_usd,
                lot.opened_at,
                lot.strategy_id,
            )
    entry = cost / units
    direction = 1 if side == "long" else -1
    closing_fee = fill.fee_usd * units / fill.quantity
    profit = (fill.price_usd * units - cost) * direction - opening_fees - closing_fee
    part = ClosedTrade(
        id=fill.order_id or fill.id,
        account_id=fill.account_id,
        symbol=fill.symbol,
        side=side,
        strategy_id=strategy if strategy != "unassigned" else fill.strategy_id,
        units=units,
        opened_at=opened_at,
        closed_at=fill.filled_at,
        entry_price_usd=entry,
        exit_price_usd=fill.price_usd,
        profit_usd=profit,
        profit_pct=_pct(profit, cost),
        exit_reason=fill.exit_reason,
    )
    return part, remaining


def merge_parts(parts: Iterable[ClosedTrade]) -> tuple[ClosedTrade, ...]:
    """One trade per (account, id): the parts of one order joined, oldest close first."""
    groups: dict[tuple[str, str], list[ClosedTrade]] = {}
    for part in parts:
        groups.setdefault((part.account_id, part.id), []).append(part)
    trades = [_merged(group) if len(group) > 1 else group[0] for group in groups.values()]
    return tuple(sorted(trades, key=lambda trade: (trade.closed_at, trade.id)))


def _merged(group: Sequence[ClosedTrade]) -> ClosedTrade:
    first = min(group, key=lambda part: part.closed_at)
    units = sum((part.units for part in group), Decimal(0))
    entry = sum((part.entry_price_usd * part.units for part in group), Decimal(0)) / units
    exit_ = sum((part.exit_price_usd * part.units for part in group), Decimal(0)) / units
    profit = sum((part.profit_usd for part in group), Decimal(0))
    return ClosedTrade(
        id=first.id,
        account_id=first.account_id,
        symbol=first.symbol,
        side=first.side,
        strategy_id=first.strategy_id,
        units=units,
        opened_at=min(part.opened_at for part in group),
        closed_at=max(part.closed_at for part in group),
        entry_price_usd=entry,
        exit_price_usd=exit_,
        profit_usd=profit,
        profit_pct=_pct(profit, entry * units),
        exit_reason=first.exit_reason,
    )


def _pct(profit: Decimal, entry_value: Decimal) -> Decimal:
    return (profit / entry_value * 100).quantize(PCT_PLACES) if entry_value else Decimal(0)
