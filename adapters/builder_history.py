"""The snapshot's ``trades`` and ``instruments`` sections, from what a poll fetched.

``trades``: the adapter's closed trades (:class:`~bastion.adapters.venue.TradeSource`),
bounded to ``BuilderConfig.trade_lookback_s`` before now. They are checked here with the
snapshot's own rules — the field table's value rules (:mod:`engine.snapshot.typed`) and
the consistency check (:func:`engine.snapshot.consistency.trade_problems`) — and attached
to the validated snapshot as they are, not sent through cerberus (a week of trades
through it costs seconds a poll). A trade that fails (a bad field, an unknown account, a
close before its open or after now, a profit that contradicts side and prices) is
unusable: it is left out and listed as an
:class:`~bastion.engine.snapshot.left_out.Unevaluable` of kind ``trade``, which makes
its account reduce-only until the record is fixed — dropping it silently could hide the
stop-loss a history protection is counting. A duplicate (account, id) keeps the first.
A trade stamped after now by no more than ``max_clock_skew_s`` (the venue's clock a little
ahead) is neither kept nor left out: the next poll takes it.

``instruments``: from the adapter (:class:`~bastion.adapters.venue.InstrumentSource`)
where it knows them, else each position's asset class; limited to the symbols the
snapshot mentions (positions, market, trades).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot.consistency import trade_problems
from bastion.engine.snapshot.fields import (
    INSTRUMENT_ASSET_CLASSES,
    INSTRUMENT_RULE_FIELDS,
    RECORDS,
)
from bastion.engine.snapshot.history import bounded
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.snapshot.model import ClosedTrade, Instrument
from bastion.engine.snapshot.typed import field_problems

_TRADE_FIELDS = tuple(field.name for field in RECORDS["ClosedTrade"].fields)
_RULE_FIELDS = tuple(field.name for field in INSTRUMENT_RULE_FIELDS)


def trade_records(
    trades: Iterable[ClosedTrade],
    *,
    now: datetime,
    since: datetime,
    accounts: frozenset[str],
    max_clock_skew_s: float = 0.0,
) -> tuple[tuple[ClosedTrade, ...], list[Unevaluable]]:
    """(the snapshot's trades, oldest close first; the trades left out and why).

    A trade closed after ``now`` by no more than ``max_clock_skew_s`` (the venue's clock
    a little ahead) waits for the next poll instead of being left out."""
    kept: list[ClosedTrade] = []
    left_out: list[Unevaluable] = []
    seen: set[tuple[str, str]] = set()
    skew = timedelta(seconds=max_clock_skew_s)
    for trade in bounded(trades, since):
        if now < trade.closed_at <= now + skew:
            continue
        record = {name: getattr(trade, name) for name in _TRADE_FIELDS}
        if not record["strategy_id"]:
            del record["strategy_id"]  # absent means unknown
        problems = [f"{name}: {problem}" for name, problem in field_problems("ClosedTrade", record)]
        if not problems:  # the consistency rules need field-valid values
            problems = [
                f"{name}: {problem}" for name, problem in trade_problems(record, now, accounts)
            ]
        key = (trade.account_id, trade.id)
        if key in seen:
            problems.append(f"id {trade.id} is reported twice for account {trade.account_id}")
        if problems:
            reason = "closed trade unusable: " + "; ".join(problems)
            left_out.append(Unevaluable(trade.id, trade.account_id, trade.symbol, reason, "trade"))
            continue
        seen.add(key)
        kept.append(trade)
    return tuple(kept), left_out


def instrument_records(
    known: Mapping[str, Instrument],
    positions: Sequence[VenuePosition],
    symbols: Iterable[str],
) -> dict[str, dict[str, Any]]:
    """{symbol: {asset_class, sector?}} for ``symbols`` whose kind is known: from the
    venue's instruments, else from a position in it (the last), looked for only then (the
    venue adapters give every polled symbol's instrument)."""
    by_position: dict[str, str] | None = None
    records: dict[str, dict[str, Any]] = {}
    for symbol in sorted(set(symbols)):
        instrument = known.get(symbol)
        if instrument is None and by_position is None:
            by_position = {
                position.symbol: position.asset_class
                for position in positions
                if position.problem is None and position.asset_class in INSTRUMENT_ASSET_CLASSES
            }
        if instrument is not None:
            record: dict[str, Any] = {"asset_class": instrument.asset_class}
            if instrument.sector:
                record["sector"] = instrument.sector
            for name in _RULE_FIELDS:  # the venue's order rules, where it gives them
                value = getattr(instrument, name)
                if value is not None:
                    record[name] = value
            records[symbol] = record
        elif by_position is not None and symbol in by_position:
            records[symbol] = {"asset_class": by_position[symbol]}
    return records
