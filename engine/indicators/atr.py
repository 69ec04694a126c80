"""Average true range: Wilder smoothing (TA-Lib's convention), SMA and EMA.

Conventions — read these before comparing numbers with another tool:

- True range of bar t ≥ 1: ``TR_t = max(H_t − L_t, |H_t − C_{t−1}|, |L_t − C_{t−1}|)``.
- ``seed="talib"`` (default) is TA-Lib's ``ATR``: bar 0 has no previous close and so no
  true range; the first value sits at index N and is the mean of TR_1..TR_N.
- ``seed="first_bar_range"`` is Wilder's 1978 / charting convention: TR_0 = H_0 − L_0,
  the first value sits at index N−1 and is the mean of TR_0..TR_{N−1}.
- After the seed, ``wilder``: ATR_t = (ATR_{t−1}·(N−1) + TR_t) / N (an EMA with α = 1/N);
  ``ema``: ATR_t = ATR_{t−1} + α·(TR_t − ATR_{t−1}) with α = 2/(N+1), seeded with the same
  mean (TA-Lib's EMA convention); ``sma``: the mean of the last N true ranges.

Three implementations of one convention:

- :func:`atr` — Decimal, the reference: sums are exact and each division rounds once to
  34 significant digits (:data:`DECIMAL_CONTEXT`), whatever the caller's decimal context.
- :func:`atr_float` — numpy float64, vectorised for bulk work; agrees with :func:`atr`
  within 1e-9 relative (measured: about 1e-15).
- :class:`AtrUpdater` / :class:`FloatAtrUpdater` — O(1) per bar for live data; the state
  round-trips through a plain JSON-ready dict (``to_dict`` / ``from_dict``) with a
  ``version`` field, so a restart resumes exactly where it stopped. :func:`atr` *is* the
  Decimal updater run over the series, so incremental and batch results are identical.

:class:`AtrMemo` serves a window sliding over a series (a poll loop, a replay): it keeps
the true ranges of the bars it saw and reruns the Decimal smoothing over each window, so
its value is exactly :func:`atr_bars`' last one at about half the cost.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum
from math import isfinite
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bastion.engine.errors import DataError
from bastion.engine.indicators.overlap import same

# IEEE 754 decimal128 precision; traps turn silent NaN/inf results into errors.
DECIMAL_CONTEXT = Context(
    prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
STATE_VERSION = 1


class AtrMethod(StrEnum):
    WILDER = "wilder"
    SMA = "sma"
    EMA = "ema"


class AtrSeed(StrEnum):
    TALIB = "talib"
    FIRST_BAR_RANGE = "first_bar_range"


@dataclass(frozen=True, slots=True)
class AtrSpec:
    """Which ATR: period N ≥ 1, smoothing method and seeding convention."""

    period: int = 14
    method: AtrMethod = AtrMethod.WILDER
    seed: AtrSeed = AtrSeed.TALIB

    def __post_init__(self) -> None:
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period < 1:
            raise ValueError(f"ATR period must be an integer ≥ 1, got {self.period!r}")
        # Accept the plain strings a CLI or a YAML file provides; reject anything else.
        object.__setattr__(self, "method", _enum(AtrMethod, self.method, "method"))
        object.__setattr__(self, "seed", _enum(AtrSeed, self.seed, "seed"))

    @property
    def first_index(self) -> int:
        """Index of the first defined value: N for the TA-Lib seed, N−1 otherwise."""
        return self.period if self.seed is AtrSeed.TALIB else self.period - 1


E = TypeVar("E", AtrMethod, AtrSeed)


def _enum(kind: type[E], value: str, name: str) -> E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ValueError(f"ATR {name} must be one of {choices}; got {value!r}") from None


class HasHighLowClose(Protocol):
    """Any bar record: :class:`bastion.engine.indicators.quality.Bar` fits."""

    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...


N = TypeVar("N", Decimal, float)


class _AtrStepper(Generic[N]):
    """The one implementation of the recursion, generic over Decimal and float.

    The operation order follows TA-Lib's C code (sum the seed from zero in input order,
    then multiply by N−1, add TR, divide by N) so the float variant tracks TA-Lib closely.
    """

    __slots__ = (
        "_alpha",
        "_bars_seen",
        "_is_sma",
        "_is_wilder",
        "_n",
        "_n_minus_1",
        "_offset",
        "_prev_close",
        "_sum",
        "_value",
        "_window",
        "spec",
    )
    NUMERIC: ClassVar[str]

    def __init__(self, spec: AtrSpec, zero: N, one: N) -> None:
        self.spec = spec
        self._n: N = one * spec.period
        self._n_minus_1: N = one * (spec.period - 1)
        self._alpha: N = (one * 2) / (one * (spec.period + 1))
        self._is_sma = spec.method is AtrMethod.SMA
        self._is_wilder = spec.method is AtrMethod.WILDER
        self._offset = 1 if spec.seed is AtrSeed.TALIB else 0  # bars before the first TR
        self._bars_seen = 0
        self._prev_close: N | None = None
        self._sum: N = zero  # the warm-up sum; for sma, the running sum of the window
        self._value: N | None = None
        # sma only: the last N−1 true ranges, i.e. those that stay in the next window.
        self._window: deque[N] = deque(maxlen=spec.period - 1)

    @property
    def value(self) -> N | None:
        """The latest ATR, or None until the first defined value."""
        return self._value

    @property
    def bars_seen(self) -> int:
        return self._bars_seen

    def _step(self, high: N, low: N, close: N) -> N | None:
        prev_close = self._prev_close
        self._prev_close = close
        self._bars_seen += 1
        true_range = high - low
        if prev_close is None:
            if self._offset:
                return None
        else:
            true_range = _true_range(high, low, prev_close)
        return self._smooth(true_range)

    def _smooth_ranges(self, ranges: Iterable[N]) -> N | None:
        """From a fresh state: the smoothing of :meth:`_step` over true ranges worked out
        already (bar 0's H_0 − L_0 first for the first_bar_range seed; none for bar 0 with
        the TA-Lib seed) — the same operations in the same order, so the same value."""
        self._bars_seen = self._offset
        smooth = self._smooth
        for true_range in ranges:
            self._bars_seen += 1
            smooth(true_range)
        return self._value

    def _smooth(self, true_range: N) -> N | None:
        """Fold in the true range of the bar just counted in ``_bars_seen``."""
        value = self._value
        if self._is_sma:
            # TA-Lib's running sum: add the new TR, emit, then drop the oldest one.
            self._sum = self._sum + true_range
            window = self._window
            if len(window) == self.spec.period - 1:
                self._value = self._sum / self._n
                self._sum = self._sum - (window[0] if window else true_range)
            window.append(true_range)
        elif value is None:
            self._sum = self._sum + true_range
            if self._bars_seen - self._offset == self.spec.period:
                self._value = self._sum / self._n
        elif self._is_wilder:
            self._value = (value * self._n_minus_1 + true_range) / self._n
        else:
            self._value = (true_range - value) * self._alpha + value
        return self._value

    # -- state --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; numbers are strings for Decimal, floats for float."""
        return {
            "version": STATE_VERSION,
            "indicator": "atr",
            "numeric": self.NUMERIC,
            "period": self.spec.period,
            "method": self.spec.method.value,
            "seed": self.spec.seed.value,
            "bars_seen": self._bars_seen,
            "prev_close": self._dump(self._prev_close),
            "value": self._dump(self._value),
            "sum": self._dump(self._sum),
            "window": [self._dump(item) for item in self._window],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild an updater from :meth:`to_dict` output (e.g. after a restart)."""
        version = state.get("version")
        if version != STATE_VERSION:
            raise DataError(
                f"ATR state version {version!r} is not supported (this Bastion reads version "
                f"{STATE_VERSION}); rebuild the state by replaying the bars"
            )
        if state.get("indicator") != "atr" or state.get("numeric") != cls.NUMERIC:
            raise DataError(
                f"state is not a {cls.NUMERIC} ATR state (indicator={state.get('indicator')!r},"
                f" numeric={state.get('numeric')!r}); load it with the matching updater class"
            )
        try:
            spec = AtrSpec(int(state["period"]), state["method"], state["seed"])
            updater = cls._create(spec)
            updater._bars_seen = int(state["bars_seen"])
            updater._prev_close = updater._load_optional(state["prev_close"])
            updater._value = updater._load_optional(state["value"])
            updater._sum = updater._load(state["sum"])
            window = [updater._load(item) for item in state["window"]]
            updater._window.extend(window)
            updater._check_consistent(len(window))
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise DataError(f"ATR state is malformed ({error}); rebuild it from bars") from None
        return updater

    def _check_consistent(self, window_length: int) -> None:
        """A restored state must be one that feeding bars could have produced."""
        period = self.spec.period
        ranges_seen = max(0, self._bars_seen - self._offset)
        expected_window = min(ranges_seen, period - 1) if self._is_sma else 0
        if (
            self._bars_seen < 0
            or (self._prev_close is None) != (self._bars_seen == 0)
            or (self._value is None) != (ranges_seen < period)
            or window_length != expected_window
        ):
            raise ValueError(
                f"inconsistent fields: bars_seen={self._bars_seen}, value={self._value}, "
                f"window of {window_length} (expected {expected_window})"
            )

    @classmethod
    def _create(cls, spec: AtrSpec) -> Self:
        raise NotImplementedError

    def _dump(self, number: N | None) -> Any:
        return None if number is None else self._dump_number(number)

    def _load_optional(self, raw: Any) -> N | None:
        return None if raw is None else self._load(raw)

    def _dump_number(self, number: N) -> Any:
        raise NotImplementedError

    def _load(self, raw: Any) -> N:
        raise NotImplementedError


class AtrUpdater(_AtrStepper[Decimal]):
    """O(1) Decimal ATR for live bars: ``update(high, low, close)`` returns the new value."""

    __slots__ = ()
    NUMERIC = "decimal"

    def __init__(self, spec: AtrSpec | None = None) -> None:
        with localcontext(DECIMAL_CONTEXT):  # α = 2/(N+1) rounds in our context
            super().__init__(spec or AtrSpec(), Decimal(0), Decimal(1))

    @classmethod
    def _create(cls, spec: AtrSpec) -> Self:
        return cls(spec)

    def update(self, high: Decimal, low: Decimal, close: Decimal) -> Decimal | None:
        """Feed the next bar; returns the ATR, or None while warming up.

        A non-finite price raises DataError and leaves the state untouched (one NaN would
        otherwise poison a Wilder average for good)."""
        if not (high.is_finite() and low.is_finite() and close.is_finite()):
            raise DataError(f"bar {self._bars_seen}: non-finite price ({high}, {low}, {close})")
        with localcontext(DECIMAL_CONTEXT):
            return self._step(high, low, close)

    def _dump_number(self, number: Decimal) -> str:
        return str(number)

    def _load(self, raw: Any) -> Decimal:
        if not isinstance(raw, str):
            raise TypeError(f"expected a decimal string, got {raw!r}")
        number = Decimal(raw)
        if not number.is_finite():
            raise ValueError(f"non-finite number {raw!r}")
        return number


class FloatAtrUpdater(_AtrStepper[float]):
    """O(1) float64 ATR for high-rate feeds; same conventions and state layout."""

    __slots__ = ()
    NUMERIC = "float"

    def __init__(self, spec: AtrSpec | None = None) -> None:
        super().__init__(spec or AtrSpec(), 0.0, 1.0)

    @classmethod
    def _create(cls, spec: AtrSpec) -> Self:
        return cls(spec)

    def update(self, high: float, low: float, close: float) -> float | None:
        """Feed the next bar; returns the ATR, or None while warming up (see AtrUpdater)."""
        if not (isfinite(high) and isfinite(low) and isfinite(close)):
            raise DataError(f"bar {self._bars_seen}: non-finite price ({high}, {low}, {close})")
        return self._step(high, low, close)

    def _dump_number(self, number: float) -> float:
        return number  # json writes the shortest repr, which round-trips exactly

    def _load(self, raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise TypeError(f"expected a finite number, got {raw!r}")
        return float(raw)


# -- batch, Decimal ---------------------------------------------------------------------


def atr(
    highs: Sequence[Decimal],
    lows: Sequence[Decimal],
    closes: Sequence[Decimal],
    spec: AtrSpec | None = None,
) -> list[Decimal | None]:
    """ATR aligned with the input: one entry per bar, None where undefined."""
    _check_decimal_series(highs, lows, closes)
    updater = AtrUpdater(spec)
    with localcontext(DECIMAL_CONTEXT):
        step = updater._step
        return [step(h, low, c) for h, low, c in zip(highs, lows, closes, strict=True)]


def atr_bars(bars: Sequence[HasHighLowClose], spec: AtrSpec | None = None) -> list[Decimal | None]:
    """:func:`atr` over bar records."""
    return atr([b.high for b in bars], [b.low for b in bars], [b.close for b in bars], spec)


class AtrMemo:
    """The true ranges one series' bars had on the previous call, so that :meth:`latest`
    over the same series moved on by a bar or two (a poll loop, a replay: the window
    slides) works out the new bars' true ranges only and checks only the new bars.

    The smoothing itself runs afresh over the window on every call: a Wilder average seeded
    at this window's first bar differs from a running one seeded earlier, and the value
    must be exactly ``atr_bars(bars, spec)[-1]`` (tests/indicators/test_atr_memo.py).
    Reused only for the very same bar objects (a revised bar is a new object, so it is
    worked out again); anything else starts afresh. Not thread-safe: one memo per series
    (symbol and interval) and thread."""

    __slots__ = ("_bars", "_latest", "_ranges")

    def __init__(self) -> None:
        self._bars: Sequence[HasHighLowClose] = ()
        # [i], i ≥ 1: the true range of bars[i] from bars[i − 1]'s close; [0] is unused.
        self._ranges: list[Decimal] = []
        # The last call's spec and answer: the very same bars again give it again.
        self._latest: tuple[AtrSpec, Decimal | None] | None = None

    def latest(
        self, bars: Sequence[HasHighLowClose], spec: AtrSpec | None = None
    ) -> Decimal | None:
        """The ATR of the last bar of ``bars`` (None while warming up): ``atr_bars``'s last."""
        spec = spec or AtrSpec()
        if not bars:
            return None
        latest = self._latest
        unchanged = same(self._bars, bars)
        if unchanged and latest is not None and (latest[0] is spec or latest[0] == spec):
            return latest[1]  # the very same bars: the same answer
        self._latest = None
        start, kept = self._overlap(bars)
        fresh = bars[kept:]
        columns = ([b.high for b in fresh], [b.low for b in fresh], [b.close for b in fresh])
        try:
            _check_decimal_series(*columns)
        except (TypeError, DataError):
            self._bars, self._ranges = (), []
            atr_bars(bars, spec)  # raises the same error, numbered within the whole window
            raise
        with localcontext(DECIMAL_CONTEXT):
            ranges = self._ranges[start : start + kept] if kept else [Decimal(0)]
            kept = max(kept, 1)
            prev_close = bars[kept - 1].close
            for bar in bars[kept:]:
                ranges.append(_true_range(bar.high, bar.low, prev_close))
                prev_close = bar.close
            self._bars, self._ranges = tuple(bars), ranges
            updater = AtrUpdater(spec)
            if spec.seed is AtrSeed.TALIB:
                value = updater._smooth_ranges(ranges[1:])
            else:
                first = bars[0].high - bars[0].low
                value = updater._smooth_ranges([first, *ranges[1:]])
        self._latest = (spec, value)
        return value

    def _overlap(self, bars: Sequence[HasHighLowClose]) -> tuple[int, int]:
        """(the previous window's row holding ``bars[0]``, how many bars from there on are
        the very same objects), or (0, 0) when none can be reused."""
        first = bars[0]
        start = next((row for row, bar in enumerate(self._bars) if bar is first), -1)
        if start < 0:
            return 0, 0
        kept = 0
        for old, new in zip(self._bars[start:], bars, strict=False):
            if old is not new:
                break
            kept += 1
        return start, kept


def true_range(
    highs: Sequence[Decimal],
    lows: Sequence[Decimal],
    closes: Sequence[Decimal],
    seed: AtrSeed = AtrSeed.TALIB,
) -> list[Decimal | None]:
    """True range per bar; bar 0 is None (TA-Lib seed) or H_0 − L_0 (first_bar_range)."""
    _check_decimal_series(highs, lows, closes)
    seed = _enum(AtrSeed, seed, "seed")
    ranges: list[Decimal | None] = []
    for index, (high, low) in enumerate(zip(highs, lows, strict=True)):
        if index == 0:
            ranges.append(high - low if seed is AtrSeed.FIRST_BAR_RANGE else None)
            continue
        prev_close = closes[index - 1]
        ranges.append(max(high - low, abs(high - prev_close), abs(low - prev_close)))
    return ranges


def _check_decimal_series(*series: Sequence[Decimal]) -> None:
    lengths = {len(column) for column in series}
    if len(lengths) > 1:
        raise ValueError(f"high, low and close must have the same length, got {sorted(lengths)}")
    for name, column in zip(("high", "low", "close"), series, strict=True):
        for index, number in enumerate(column):
            if not isinstance(number, Decimal):
                raise TypeError(
                    f"bar {index}: {name} is {type(number).__name__}, not Decimal; "
                    "use atr_float() for floats or convert with Decimal(str(x))"
                )
            if not number.is_finite():
                raise DataError(f"bar {index}: {name} is {number}; drop or repair the bar")


# -- batch, float (vectorised) ----------------------------------------------------------


def atr_float(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, spec: AtrSpec | None = None
) -> NDArray[np.float64]:
    """Vectorised float64 ATR, NaN where undefined; same conventions as :func:`atr`."""
    spec = spec or AtrSpec()
    highs, lows, closes = (
        _float_column(name, x) for name, x in (("high", high), ("low", low), ("close", close))
    )
    if not highs.shape == lows.shape == closes.shape:
        raise ValueError("high, low and close must have the same length")
    count, first, period = highs.shape[0], spec.first_index, spec.period
    if count <= first:
        return np.full(count, np.nan)
    out = true_range_float(highs, lows, closes, spec.seed)  # smoothed in place below
    start = 1 if spec.seed is AtrSeed.TALIB else 0
    if spec.method is AtrMethod.SMA:
        windows = np.lib.stride_tricks.sliding_window_view(out[start:], period)
        out[first:] = windows.sum(axis=1) / period
    else:
        seed_value = math.fsum(out[start : first + 1].tolist()) / period
        alpha = 1.0 / period if spec.method is AtrMethod.WILDER else 2.0 / (period + 1)
        out[first + 1 :] *= alpha
        out[first] = seed_value
        _exponential_filter(out[first:], 1.0 - alpha)
    out[:first] = np.nan
    return out


def true_range_float(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    seed: AtrSeed = AtrSeed.TALIB,
) -> NDArray[np.float64]:
    """Vectorised true range; element 0 is NaN (TA-Lib seed) or H_0 − L_0."""
    ranges = np.empty_like(high)
    ranges[0] = high[0] - low[0] if seed is AtrSeed.FIRST_BAR_RANGE else np.nan
    if high.shape[0] > 1:  # `out=` everywhere: fresh temporaries cost more than the maths
        spread, gap = ranges[1:], np.empty(high.shape[0] - 1)
        np.subtract(high[1:], low[1:], out=spread)
        for extreme in (high[1:], low[1:]):
            np.subtract(close[:-1], extreme, out=gap)
            np.abs(gap, out=gap)
            np.maximum(spread, gap, out=spread)
    return ranges


_SCAN_BLOCK = 1 << 14  # 128 KiB of float64: each block's passes stay in the L2 cache


def _exponential_filter(values: NDArray[np.float64], decay: float) -> None:
    """In place: y_0 = v_0, y_k = decay·y_{k−1} + v_k — the smoothing after the seed.

    A log-depth parallel prefix scan (Hillis–Steele) per cache-sized block: pass k folds in
    the terms 2^k steps back, until decay^(2^k) underflows to zero (15 passes for N = 14),
    which loses nothing; each block then adds decay^(j+1) × the previous block's last
    value. Every term is non-negative, so rounding stays within a few ulps.
    """
    size = values.shape[0]
    scratch = np.empty(min(size, _SCAN_BLOCK))
    powers = decay ** np.arange(1, scratch.shape[0] + 1)
    for begin in range(0, size, _SCAN_BLOCK):
        block = values[begin : begin + _SCAN_BLOCK]
        length, factor, shift = block.shape[0], decay, 1
        while shift < length and factor != 0.0:
            np.multiply(block[:-shift], factor, out=scratch[: length - shift])
            np.add(block[shift:], scratch[: length - shift], out=block[shift:])
            factor *= factor
            shift *= 2
        if begin:
            np.multiply(powers[:length], values[begin - 1], out=scratch[:length])
            np.add(block, scratch[:length], out=block)


def _float_column(name: str, values: ArrayLike) -> NDArray[np.float64]:
    column = np.ascontiguousarray(values, dtype=np.float64)
    if column.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {column.shape}")
    if not np.isfinite(column).all():
        index = int(np.argmin(np.isfinite(column)))
        raise DataError(f"bar {index}: {name} is {column[index]}; drop or repair the bar")
    return column


def _true_range(high: N, low: N, prev_close: N) -> N:
    """Wilder's true range: the largest of H − L, |C₋₁ − H| and |C₋₁ − L|, by plain
    comparisons in that order (not max(): the live updater's hot path, and the order
    decides which of two equal Decimals is kept)."""
    true_range = high - low
    from_high = abs(prev_close - high)
    if from_high > true_range:  # noqa: PLR1730
        true_range = from_high
    from_low = abs(prev_close - low)
    if from_low > true_range:  # noqa: PLR1730
        true_range = from_low
    return true_range
