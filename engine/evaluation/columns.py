"""The positions of a snapshot as columns: numpy arrays per field, for the screen.

Built once per snapshot (`position_columns`: a few list comprehensions and one float
conversion per Decimal, ~1 µs a position) and kept for the last snapshot seen, so that
evaluating one snapshot twice (a shadow candidate, a benchmark) builds it once. The
Snapshot and its Decimals stay the public contract and what decisions are made from;
these floats only tell the screen (screen.py) which positions are surely far from
every threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat
from operator import attrgetter, is_not

import numpy as np
import numpy.typing as npt

from bastion.engine.snapshot import Position, Snapshot

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
SLACK = 1e-9  # relative to the operands' magnitudes: see screen.py
_POSITION_METRICS = ("position.loss_pct", "position.unrealized_profit_pct", "position.breach_atr")


@dataclass(frozen=True, slots=True, eq=False)
class PositionColumns:
    """Per position (snapshot order): ids, coordinates and the numbers the screen needs."""

    positions: tuple[Position, ...]
    ids: list[str]
    account_ids: list[str]
    strategy_pairs: set[tuple[str, str]]  # (strategy, account) of every position
    combo: npt.NDArray[np.intp]  # index into `coordinates`
    coordinates: list[tuple[str | None, str, str]]  # (account type, symbol, strategy)
    plain: Mask  # no option; its account and its symbol's market data are in the snapshot
    measurable: Mask  # plain, and its market has a positive ATR: a breach can be measured
    long: Mask
    entry: Floats
    price: Floats  # the position's own price (loss_pct)
    market_price: Floats  # its symbol's market price (breach_atr); NaN when unknown
    atr: Floats  # NaN when unknown

    @property
    def size(self) -> int:
        return len(self.ids)

    def marked(self, ids: set[str]) -> Mask:
        """True for the positions whose id is in `ids`."""
        mask = np.zeros(self.size, dtype=np.bool_)
        if ids:
            mask[[i for i, key in enumerate(self.ids) if key in ids]] = True
        return mask

    def breach(self) -> tuple[Floats, Floats]:
        """position.breach_atr (adverse move from entry in ATRs, >= 0) and its slack:
        NaN where it cannot be measured. As facts.position_metrics, in float64."""
        with np.errstate(all="ignore"):
            move = np.where(
                self.long, self.entry - self.market_price, self.market_price - self.entry
            )
            value = np.maximum(0.0, move / self.atr)
            slack = SLACK * (
                1.0 + np.abs(value) + (np.abs(self.entry) + np.abs(self.market_price)) / self.atr
            )
        value[~self.measurable] = np.nan
        return value, slack

    def metric(self, name: str) -> tuple[Floats, Floats] | None:
        """A position metric the screen computes, with its slack; None for any other."""
        if name not in _POSITION_METRICS:
            return None
        if name == "position.breach_atr":
            return self.breach()
        with np.errstate(all="ignore"):
            gap = np.where(self.long, self.entry - self.price, self.price - self.entry)
            loss = gap / self.entry * 100.0
            value = np.maximum(0.0, loss if name == "position.loss_pct" else -loss)
            operands = (np.abs(self.entry) + np.abs(self.price)) / np.abs(self.entry)
            slack = SLACK * (1.0 + np.abs(value) + 100.0 * operands)
        value[~(self.entry > 0)] = np.nan  # no loss_pct without a positive entry
        return value, slack


_LAST: list[tuple[Snapshot, PositionColumns]] = []  # the last snapshot's columns
_LOCK = threading.Lock()


def position_columns(snapshot: Snapshot) -> PositionColumns:
    """The snapshot's columns, built once (kept for the last snapshot seen)."""
    with _LOCK:
        if _LAST and _LAST[0][0] is snapshot:
            return _LAST[0][1]
    columns = _build(snapshot)
    with _LOCK:
        _LAST[:] = [(snapshot, columns)]
    return columns


def _floats(values: Iterator[Decimal], size: int) -> Floats:
    return np.fromiter(map(float, values), dtype=np.float64, count=size)


def _build(snapshot: Snapshot) -> PositionColumns:
    positions = snapshot.positions
    size = len(positions)
    types = {account.id: account.type for account in snapshot.accounts}
    ids = list(map(_ID, positions))
    account_ids = list(map(_ACCOUNT, positions))
    combo, keys = _combinations(
        account_ids, list(map(_SYMBOL, positions)), list(map(_STRATEGY, positions))
    )
    coordinates = [(types.get(account), symbol, strategy) for account, symbol, strategy in keys]
    markets = [snapshot.market.get(symbol) for _, symbol, _ in keys]
    nan = float("nan")
    combo_price = np.array([nan if m is None else float(m.price_usd) for m in markets], float)
    combo_atr = np.array([nan if m is None else float(m.atr_usd) for m in markets], float)
    combo_plain = np.array(
        [
            account in types and m is not None
            for (account, _, _), m in zip(keys, markets, strict=True)
        ],
        dtype=np.bool_,
    )
    combo_positive = np.array([m is not None and m.atr_usd > 0 for m in markets], dtype=np.bool_)
    option = np.fromiter(map(is_not, map(_OPTION, positions), repeat(None)), np.bool_, size)
    plain = combo_plain[combo] & ~option
    return PositionColumns(
        positions=positions,
        ids=ids,
        account_ids=account_ids,
        strategy_pairs={(strategy, account) for account, _, strategy in keys},
        combo=combo,
        coordinates=coordinates,
        plain=plain,
        measurable=plain & combo_positive[combo],
        long=np.fromiter(map("long".__eq__, map(_SIDE, positions)), np.bool_, size),
        entry=_floats(map(_ENTRY, positions), size),
        price=_floats(map(_PRICE, positions), size),
        market_price=combo_price[combo],
        atr=combo_atr[combo],
    )


def _combinations(*columns: list[str]) -> tuple[npt.NDArray[np.intp], list[tuple[str, ...]]]:
    """Each row's index into the distinct rows, and the distinct rows, by their codes."""
    size = len(columns[0])
    joint = np.zeros(size, dtype=np.int64)
    distinct = []
    for values in columns:
        names = list(dict.fromkeys(values))
        codes = {name: number for number, name in enumerate(names)}
        joint = joint * len(names) + np.fromiter(map(codes.__getitem__, values), np.int64, size)
        distinct.append(names)
    rows, combo = np.unique(joint, return_inverse=True)
    keys = []
    for row in rows.tolist():
        key, rest = [], row
        for names in reversed(distinct):
            rest, number = divmod(rest, len(names))
            key.append(names[number])
        keys.append(tuple(reversed(key)))
    return combo.astype(np.intp).reshape(size), keys


_ID, _ACCOUNT, _SYMBOL = attrgetter("id"), attrgetter("account_id"), attrgetter("symbol")
_STRATEGY, _OPTION, _SIDE = attrgetter("strategy_id"), attrgetter("option"), attrgetter("side")
_ENTRY, _PRICE = attrgetter("entry_price_usd"), attrgetter("price_usd")


def forget() -> None:
    """Drop the kept columns (and with them the last snapshot)."""
    with _LOCK:
        _LAST.clear()
