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
from typing import Final

import numpy as np
import numpy.typing as npt

from bastion.engine.indicators.overlap import Overlaps, overlap
from bastion.engine.indicators.quality import Bar

EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # never rounds a sum
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


# The fields of a prefix (_Rows.prefix[i]: what the rows before row i add up to).
BAD_PAIRS: Final = 0
UNITS: Final = 1
BAD_VOLUMES: Final = 2
VOLUMES: Final = 3
DOLLARS: Final = 4
VOLUME_SHIFTS: Final = 5
DOLLAR_SHIFTS: Final = 6
VOLUME_EXPONENT: Final = 7
DOLLAR_EXPONENT: Final = 8
Prefix = tuple[int, int, int, Decimal, Decimal, int, int, int, int]
# A window of a series: its returns, their mean (math.fsum's), their stamps.
Prepared = tuple[Floats, float, Ints]


class _Rows:
    """What each bar gives, by row, for the series of one symbol as it moves on: new
    bars are appended, the bars that left stay until a compaction copies the rest.

    ``returns[i]``: ``log(close[i] / close[i − 1])`` as the reference computes it (NaN
    when there is none); ``stamps[i]``: bar i's open time in µs since the epoch.
    ``prefix[i]``, what the rows before row i add up to, in one tuple (a window reads
    two or three of them, and a poll appends one: one object each, not one per
    column): [BAD_PAIRS] how many have no usable return (the first row; a stamp not
    after the one before or not on a fixed offset; no finite return); [UNITS] the
    exact sum of their returns, in units of ``2**-unit_bits`` (the finest any return
    so far needs: every finite float is an integer number of 2**-1074, and most need
    far fewer bits); [VOLUMES] / [DOLLARS] the exact sums of their volume / close ×
    volume; [BAD_VOLUMES] how many have no volume or a negative one; [VOLUME_SHIFTS] /
    [DOLLAR_SHIFTS] how many have another exponent of volume / dollar volume than the
    row before them (a window without one has a single exponent); and
    [VOLUME_EXPONENT] / [DOLLAR_EXPONENT] those exponents of row i − 1 (0 for a row
    without a usable volume; unused in prefix[0])."""

    __slots__ = ("prefix", "returns", "size", "stamps", "unit_bits")

    def __init__(self, capacity: int = 512) -> None:
        self.size = 0
        self.returns: Floats = np.empty(capacity)
        self.stamps: Ints = np.empty(capacity, dtype=np.int64)
        self.prefix: list[Prefix] = [(0, 0, 0, _ZERO, _ZERO, 0, 0, 0, 0)]
        self.unit_bits = 0

    def cut(self, start: int, end: int) -> _Rows:
        """Rows ``start`` to ``end`` (exclusive) only: in place when ``start`` is near
        the beginning, else copied to new buffers."""
        if start < _COMPACT_AFTER or start < self.size // 2:
            self.size = end
            del self.prefix[end + 1 :]
            return self
        rows = _Rows(max(512, 2 * (end - start)))
        rows.size = end - start
        rows.returns[: rows.size] = self.returns[start:end]
        rows.stamps[: rows.size] = self.stamps[start:end]
        rows.prefix = self.prefix[start : end + 1]
        rows.unit_bits = self.unit_bits
        return rows

    def extend(self, bars: Sequence[Bar], before: Bar | None) -> None:
        """Rows for ``bars``, which follow ``before`` (the last row's bar, if any)."""
        size = self.size
        if size + len(bars) > len(self.returns):
            self._grow(size + len(bars))
        returns, stamps, units = self._returns(bars, before)
        self._append(bars, units)
        self.size = size + len(bars)
        if len(bars) == 1:  # a poll a bar on: an element is cheaper than a slice
            self.returns[size], self.stamps[size] = returns[0], stamps[0]
        else:
            self.returns[size : self.size] = returns
            self.stamps[size : self.size] = stamps

    def _returns(
        self, bars: Sequence[Bar], before: Bar | None
    ) -> tuple[list[float], list[int], list[tuple[int, int]]]:
        """(the returns, the stamps, (bad pairs, units) after each) of ``bars``' rows. A
        return is the reference's (market_metrics.log_returns: ``log(float(close) /
        float(close before))``, the close before converted once here), NaN when that
        raises or is not finite (the reference, asked instead, says what is wrong) or a
        stamp is off a fixed offset (zone rules make equality and order of stamps
        differ from their instants'), or not after the one before."""
        log, isfinite = math.log, math.isfinite
        returns: list[float] = []
        stamps: list[int] = []
        running: list[tuple[int, int]] = []
        last = self.prefix[-1]
        bad_pair, unit_sum = last[BAD_PAIRS], last[UNITS]
        previous = None if before is None else before.timestamp
        fixed = previous is not None and type(previous.tzinfo) is timezone
        previous_close = 0.0 if before is None else float(before.close)
        for bar in bars:
            moment, close = bar.timestamp, float(bar.close)
            move = None
            if type(moment.tzinfo) is timezone:
                stamps.append((moment - _EPOCH) // _MICROSECOND)
                if fixed and moment > previous:  # type: ignore[operator]
                    try:
                        move = log(close / previous_close)
                    except (ArithmeticError, ValueError):
                        pass
                    else:
                        move = move if isfinite(move) else None
                fixed = True
            else:
                stamps.append(0)
                fixed = False
            previous, previous_close = moment, close
            if move is None:
                returns.append(math.nan)
                bad_pair += 1
            else:
                returns.append(move)
                numerator, denominator = move.as_integer_ratio()  # a power of 2
                bits = denominator.bit_length() - 1
                if bits > self.unit_bits:  # finer: every running sum so far scaled up
                    scale = bits - self.unit_bits
                    self._finer(scale)
                    unit_sum <<= scale
                    running = [(bad, units << scale) for bad, units in running]
                unit_sum += numerator << (self.unit_bits - bits)
            running.append((bad_pair, unit_sum))
        return returns, stamps, running

    def _append(self, bars: Sequence[Bar], returns: list[tuple[int, int]]) -> None:
        """The prefixes after ``bars``' rows, with ``returns``' counts and sums. An
        exponent is read off a Decimal only when it is not the row before's
        (``same_quantum``)."""
        prefix, multiply, add = self.prefix, EXACT.multiply, EXACT.add
        last = prefix[-1]
        bad_volume, volume_sum, dollar_sum = last[BAD_VOLUMES], last[VOLUMES], last[DOLLARS]
        volume_shift, dollar_shift = last[VOLUME_SHIFTS], last[DOLLAR_SHIFTS]
        first = self.size == 0  # the first row has no row before it to differ from
        volume_unit: Decimal | None = None  # a Decimal of the row before's exponent
        dollar_unit: Decimal | None = None
        volume_exponent = dollar_exponent = 0
        if not first:
            volume_exponent, dollar_exponent = last[VOLUME_EXPONENT], last[DOLLAR_EXPONENT]
            volume_unit, dollar_unit = unit_of(volume_exponent), unit_of(dollar_exponent)
        for bar, (bad_pair, units) in zip(bars, returns, strict=True):
            volume = bar.volume
            if volume is None or volume < 0:
                bad_volume += 1
                new_volume = new_dollar = 0
                volume_unit = dollar_unit = _ZERO
            else:
                dollar = multiply(bar.close, volume)
                volume_sum, dollar_sum = add(volume_sum, volume), add(dollar_sum, dollar)
                new_volume, new_dollar = volume_exponent, dollar_exponent
                if volume_unit is None or not volume.same_quantum(volume_unit):
                    new_volume = exponent_of(volume)
                if dollar_unit is None or not dollar.same_quantum(dollar_unit):
                    new_dollar = exponent_of(dollar)
                volume_unit, dollar_unit = volume, dollar
            if not first:
                volume_shift += new_volume != volume_exponent
                dollar_shift += new_dollar != dollar_exponent
            first = False
            volume_exponent, dollar_exponent = new_volume, new_dollar
            prefix.append(
                (
                    bad_pair,
                    units,
                    bad_volume,
                    volume_sum,
                    dollar_sum,
                    volume_shift,
                    dollar_shift,
                    new_volume,
                    new_dollar,
                )
            )

    def _finer(self, scale: int) -> None:
        """The unit made 2**-``scale`` finer: every running sum so far scaled up, exactly."""
        self.prefix[:] = [
            (p[0], p[1] << scale, p[2], p[3], p[4], p[5], p[6], p[7], p[8]) for p in self.prefix
        ]
        self.unit_bits += scale

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self.returns))
        for name in ("returns", "stamps"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)


_ZERO = Decimal(0)  # the exponent (0) a row without a usable volume is given


def unit_of(exponent: int) -> Decimal:
    """1E``exponent``: a Decimal of that exponent (for ``same_quantum``, ``quantize``)."""
    unit = _UNITS.get(exponent)
    if unit is None:
        if len(_UNITS) >= 256:  # exponents are few in practice: bounded all the same
            _UNITS.clear()
        unit = _UNITS[exponent] = Decimal((0, (1,), exponent))
    return unit


_UNITS: dict[int, Decimal] = {}


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
        prefix, base = self.rows.prefix, self.base
        return prefix[base + stop][BAD_PAIRS] == prefix[base + start + 1][BAD_PAIRS]

    def returns(self, start: int, stop: int) -> Floats:
        """The returns of bars[start:stop]: from bars[start] to bars[start + 1] on."""
        return self.rows.returns[self.base + start + 1 : self.base + stop]

    def stamps(self, start: int, stop: int) -> Ints:
        return self.rows.stamps[self.base + start : self.base + stop]

    def window(self, start: int, stop: int) -> Prepared | None:
        """(returns, mean, and the returns' stamps) of bars[start:stop] at once, or None
        when a return is not usable: what a batch of windows asks (column_batch)."""
        rows, base = self.rows, self.base
        prefix, first, last = rows.prefix, base + start + 1, base + stop
        after, before = prefix[last], prefix[first]
        if after[BAD_PAIRS] != before[BAD_PAIRS]:
            return None
        units = after[UNITS] - before[UNITS]
        mean = (units / (1 << rows.unit_bits)) / (stop - start - 1)
        return rows.returns[first:last], mean, rows.stamps[first:last]

    def mean(self, start: int, stop: int) -> float:
        """``math.fsum(returns) / count`` of bars[start:stop], from the exact sums."""
        rows, base = self.rows, self.base
        units = rows.prefix[base + stop][UNITS] - rows.prefix[base + start + 1][UNITS]
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

    def of(
        self, symbol: str, bars: Sequence[Bar], overlaps: Overlaps | None = None
    ) -> SeriesColumns | None:
        """``symbol``'s columns for ``bars``, or None (see the class); ``overlaps``: the
        build's, to share what other memos found of the same series."""
        held = self._series.get(symbol)
        if held is not None and held.bars is bars:
            return held
        found = None
        if held is not None:
            found = overlap(held.bars, bars) if overlaps is None else overlaps.find(held.bars, bars)
        if held is not None and found is not None:
            start, kept = found
            base = held.base + start
            rows = held.rows.cut(base, base + kept)
            base = base if rows is held.rows else 0
        else:
            self._series.pop(symbol, None)
            seen = self._seen.get(symbol)
            if seen is None or seen is bars or overlap(seen, bars) is None:
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


def exponent_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: Bar refuses the others
    return exponent
