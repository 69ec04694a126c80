"""Per-symbol columns the builder keeps between builds: what every bar of a series gives.

A poll a bar interval after the last sees each series moved on by a bar. :class:`SeriesColumns`
holds, per symbol, each bar's log return and stamp and exact running sums (the returns as
integers in units of 2**-k, volume and close × volume as never-rounded Decimals), extended
by the new bars only when the series is the last one moved on by the very same Bar
objects (:class:`ColumnsMemo`). :mod:`column_metrics` works a window's metrics out of
them, the reference's values bit for bit (the argument is in its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from operator import is_

import numpy as np
import numpy.typing as npt

from bastion.engine.indicators.quality import Bar

EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # never rounds a sum
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_REUSE_WITHIN = 64  # look this many bars into the last series for the new first bar

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class _Rows:
    """What each bar gives, by row, for the series of one symbol as it moves on: new
    bars are appended, the bars that left stay until a compaction copies the rest.

    ``returns[i]``: ``log(close[i] / close[i − 1])`` as the reference computes it (NaN
    when there is none); ``stamps[i]``: bar i's open time in µs since the epoch;
    ``bad_pairs[i]``: how many rows before i have no usable return (the first row; a
    stamp not after the one before or not on a fixed offset; no finite return);
    ``return_units[i]``: the exact sum of the returns of the rows before i, in units of
    ``2**-unit_bits`` (the finest any return so far needs: every finite float is an
    integer number of 2**-1074, and most need far fewer bits). ``volumes[i]`` /
    ``dollars[i]``: the exact sums of volume / close × volume of the rows before i;
    ``bad_volumes[i]``: how many rows before i have no volume or a negative one. Per
    row, the exponent of the volume and of the dollar volume;
    ``volume_shifts[i]`` / ``dollar_shifts[i]``: how many rows before i have another
    exponent than the row before them (a window without one has a single exponent)."""

    __slots__ = (
        "bad_pairs",
        "bad_volumes",
        "dollar_exponents",
        "dollar_shifts",
        "dollars",
        "return_units",
        "returns",
        "size",
        "stamps",
        "unit_bits",
        "volume_exponents",
        "volume_shifts",
        "volumes",
    )

    def __init__(self, capacity: int = 512) -> None:
        self.size = 0
        self.returns: Floats = np.empty(capacity)
        self.stamps: Ints = np.empty(capacity, dtype=np.int64)
        self.volume_exponents: Ints = np.empty(capacity, dtype=np.int64)
        self.dollar_exponents: Ints = np.empty(capacity, dtype=np.int64)
        self.bad_pairs, self.return_units, self.bad_volumes = [0], [0], [0]
        self.unit_bits = 0
        self.volumes, self.dollars = [Decimal(0)], [Decimal(0)]
        self.volume_shifts, self.dollar_shifts = [0], [0]

    def cut(self, start: int, end: int) -> _Rows:
        """Rows ``start`` to ``end`` (exclusive) only: in place when ``start`` is near
        the beginning, else copied to new buffers."""
        if start < _COMPACT_AFTER or start < self.size // 2:
            self.size = end
            for running in (self.bad_pairs, self.return_units, self.volumes, self.dollars):
                del running[end + 1 :]
            for shifts in (self.bad_volumes, self.volume_shifts, self.dollar_shifts):
                del shifts[end + 1 :]
            return self
        rows = _Rows(max(512, 2 * (end - start)))
        rows.size = end - start
        for name in ("returns", "stamps", "volume_exponents", "dollar_exponents"):
            getattr(rows, name)[: rows.size] = getattr(self, name)[start:end]
        rows.bad_pairs = self.bad_pairs[start : end + 1]
        rows.return_units = self.return_units[start : end + 1]
        rows.unit_bits = self.unit_bits
        rows.volumes, rows.dollars = self.volumes[start : end + 1], self.dollars[start : end + 1]
        rows.bad_volumes = self.bad_volumes[start : end + 1]
        rows.volume_shifts = self.volume_shifts[start : end + 1]
        rows.dollar_shifts = self.dollar_shifts[start : end + 1]
        return rows

    def extend(self, bars: Sequence[Bar], before: Bar | None) -> None:
        """Rows for ``bars``, which follow ``before`` (the last row's bar, if any)."""
        if self.size + len(bars) > len(self.returns):
            self._grow(self.size + len(bars))
        bad_pairs, units = self.bad_pairs, self.return_units
        volumes, dollars, bad_volumes = self.volumes, self.dollars, self.bad_volumes
        row = self.size
        for bar in bars:
            stamp, move = _stamp(bar.timestamp), None
            if before is not None and stamp is not None:
                previous = before.timestamp
                if type(previous.tzinfo) is timezone and bar.timestamp > previous:
                    move = _log_return(before, bar)
            self.returns[row] = math.nan if move is None else move
            self.stamps[row] = 0 if stamp is None else stamp
            bad_pairs.append(bad_pairs[-1] + (move is None))
            step = 0 if move is None else self._units(move)  # may rescale the sums first
            units.append(units[-1] + step)
            volume, exponent, dollar_exponent = bar.volume, 0, 0
            if volume is None or volume < 0:
                bad_volumes.append(bad_volumes[-1] + 1)
                volumes.append(volumes[-1])
                dollars.append(dollars[-1])
            else:
                dollar = EXACT.multiply(bar.close, volume)
                exponent, dollar_exponent = exponent_of(volume), exponent_of(dollar)
                bad_volumes.append(bad_volumes[-1])
                volumes.append(EXACT.add(volumes[-1], volume))
                dollars.append(EXACT.add(dollars[-1], dollar))
            if row:
                volume_shift = exponent != self.volume_exponents[row - 1]
                dollar_shift = dollar_exponent != self.dollar_exponents[row - 1]
            else:
                volume_shift = dollar_shift = False
            self.volume_shifts.append(self.volume_shifts[-1] + volume_shift)
            self.dollar_shifts.append(self.dollar_shifts[-1] + dollar_shift)
            self.volume_exponents[row] = exponent
            self.dollar_exponents[row] = dollar_exponent
            before, row = bar, row + 1
        self.size = row

    def _units(self, value: float) -> int:
        """``value`` in units of 2**-unit_bits, the unit made finer first if it needs."""
        numerator, denominator = value.as_integer_ratio()  # a power of 2
        bits = denominator.bit_length() - 1
        if bits > self.unit_bits:  # finer: every running sum so far scaled up, exactly
            scale = bits - self.unit_bits
            self.return_units[:] = [units << scale for units in self.return_units]
            self.unit_bits = bits
        return numerator << (self.unit_bits - bits)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self.returns))
        for name in ("returns", "stamps", "volume_exponents", "dollar_exponents"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)


_COMPACT_AFTER = 256  # rows left behind (and half the rows) before the rest is copied


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """One series' rows: ``bars[i]`` is row ``base + i`` of ``rows``. Valid until the
    memo is asked for the same symbol's columns again (the rows move on)."""

    bars: tuple[Bar, ...]
    base: int
    rows: _Rows

    def pairs_ok(self, start: int, stop: int) -> bool:
        """Every return of bars[start:stop] (rows start + 1 to stop − 1) usable."""
        bad, base = self.rows.bad_pairs, self.base
        return bad[base + stop] == bad[base + start + 1]

    def returns(self, start: int, stop: int) -> Floats:
        """The returns of bars[start:stop]: from bars[start] to bars[start + 1] on."""
        return self.rows.returns[self.base + start + 1 : self.base + stop]

    def stamps(self, start: int, stop: int) -> Ints:
        return self.rows.stamps[self.base + start : self.base + stop]

    def mean(self, start: int, stop: int) -> float:
        """``math.fsum(returns) / count`` of bars[start:stop], from the exact sums."""
        rows, base = self.rows, self.base
        units = rows.return_units[base + stop] - rows.return_units[base + start + 1]
        return (units / (1 << rows.unit_bits)) / (stop - start - 1)


class ColumnsMemo:
    """Per symbol, the columns of the series seen last; a series that is the last one
    moved on (its first bar is one of the last series' bars and the very same objects
    follow it) gets the new bars' rows only. Columns are made only for a series seen
    moving on so (a first series, or one of new bar objects every poll, as a venue that
    parses its bars afresh gives, is only remembered: None, the reference is cheaper
    for one use). A cache: every value is the same without it. Not thread-safe: one
    per builder and thread."""

    __slots__ = ("_seen", "_series")
    LIMIT = 10_000  # symbols; then it starts afresh

    def __init__(self) -> None:
        self._series: dict[str, SeriesColumns] = {}
        self._seen: dict[str, tuple[Bar, ...]] = {}  # series without columns (yet)

    def of(self, symbol: str, bars: Sequence[Bar]) -> SeriesColumns | None:
        held = self._series.get(symbol)
        if held is not None and held.bars is bars:
            return held
        found = _overlap(held.bars, bars) if held is not None else None
        if held is not None and found is not None:
            start, kept = found
            base = held.base + start
            rows = held.rows.cut(base, base + kept)
            base = base if rows is held.rows else 0
        else:
            self._series.pop(symbol, None)
            seen = self._seen.get(symbol)
            if seen is None or seen is bars or _overlap(seen, bars) is None:
                if len(self._seen) >= self.LIMIT:
                    self._seen.clear()
                self._seen[symbol] = tuple(bars)
                return None
            del self._seen[symbol]  # it moves on: worth columns from now on
            columns = columns_of(bars)
            self._keep(symbol, columns)
            return columns
        rows.extend(bars[kept:], bars[kept - 1] if kept else None)
        columns = SeriesColumns(tuple(bars), base, rows)
        self._keep(symbol, columns)
        return columns

    def _keep(self, symbol: str, columns: SeriesColumns) -> None:
        if len(self._series) >= self.LIMIT:
            self._series.clear()
        self._series[symbol] = columns


def columns_of(bars: Sequence[Bar]) -> SeriesColumns:
    """The columns of ``bars`` afresh (a memo makes them only for a series moving on)."""
    rows = _Rows(max(512, len(bars)))
    rows.extend(bars, None)
    return SeriesColumns(tuple(bars), 0, rows)


def _overlap(old: tuple[Bar, ...], bars: Sequence[Bar]) -> tuple[int, int] | None:
    """(the row of ``old`` holding ``bars[0]``, how many bars from there on are the very
    same objects as ``bars``'), or None."""
    if not bars:
        return None
    first = bars[0]
    start = next((row for row in range(min(len(old), _REUSE_WITHIN)) if old[row] is first), -1)
    if start < 0:
        return None
    kept = min(len(old) - start, len(bars))
    if not all(map(is_, old[start : start + kept], bars[:kept])):
        return None
    return start, kept


def _stamp(moment: datetime) -> int | None:
    """µs since the epoch; None off a fixed offset (zone rules make equality and order of
    stamps differ from their instants')."""
    if type(moment.tzinfo) is not timezone:
        return None
    return (moment - _EPOCH) // _MICROSECOND


def _log_return(before: Bar, bar: Bar) -> float | None:
    """The reference's return (market_metrics.log_returns); None when it raises or is
    not finite (the reference, asked instead, says what is wrong)."""
    try:
        move = math.log(float(bar.close) / float(before.close))
    except (ArithmeticError, ValueError):
        return None
    return move if math.isfinite(move) else None


def exponent_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: Bar refuses the others
    return exponent
