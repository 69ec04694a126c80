"""The Bars a venue adapter parsed last poll, handed back again for rows that did not change.

The snapshot builder's memos (quality, ATR, market columns, returns) recognise unchanged bars
by identity: the very same :class:`Bar` object as last poll. A real venue answers each poll
with fresh JSON, so without this every parse makes new objects and every one of those memos
misses. :class:`BarMemo` keeps, per series (symbol, interval, live or history), the Bars
parsed from the previous answer keyed by the raw values they were parsed from, and returns
the same object when a row's raw values come back unchanged. A revised row, or the still-open
bar with new values, has another key and is parsed anew.

Exactness: the key holds every raw value the parse reads (Kraken: the whole row), so that
equal keys mean equal text and type. Strings and ints as they are; with floats, the values
plus every value's type (``1 == 1.0``, yet they read as Decimals of different exponents);
anything else, or a zero float (``0.0 == -0.0``, zeros of different signs; ``True == 1``;
``Decimal("1.0") == 1``), makes the key the row's ``repr`` values and types. A parse that
fails is never kept, so a key found in the memo parsed once, without error, to the Bar
returned.

Bounds: per series, exactly the Bars of the last answer (at most the venue's page size);
series are evicted least recently used beyond ``max_series``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import ParamSpec

from bastion.engine.indicators.quality import Bar

MAX_SERIES = 256  # symbols x intervals polled; beyond this the least recently used go

RawKey = tuple[object, ...]
P = ParamSpec("P")
# Equal values of one of these types read alike (same text), except the floats 0.0 and -0.0.
_TEXT = frozenset({str, int})
_PLAIN = frozenset({str, int, float})


def raw_key(values: Sequence[object]) -> RawKey:
    """The raw values as an exact, hashable key (see the module docstring)."""
    types = tuple(map(type, values))
    if _TEXT.issuperset(types):  # Binance, Kraken: no two of these are equal across types
        return tuple(values)
    if _PLAIN.issuperset(types) and 0.0 not in values:  # Alpaca: 1 == 1.0, so the types too
        return (tuple(values), types)
    return (tuple(map(repr, values)), types, "repr")  # never equal to the shapes above


class SeriesParse:
    """One answer for one series being parsed: last answer's Bars in, this answer's kept."""

    __slots__ = ("_last", "kept")

    def __init__(self, last: dict[RawKey, Bar]) -> None:
        self._last = last
        self.kept: dict[RawKey, Bar] = {}

    def bar(self, key: RawKey, parse: Callable[P, Bar], *args: P.args, **kwargs: P.kwargs) -> Bar:
        """The Bar parsed last answer from the same raw values, else ``parse(*args)``'s."""
        if key in self.kept:  # the row twice in one answer: an object of its own, as before
            return parse(*args, **kwargs)
        bar = self._last.get(key)
        if bar is None:
            bar = parse(*args, **kwargs)
        self.kept[key] = bar
        return bar


class BarMemo:
    """Per series, the Bars of the last answer, by raw row; safe to share between threads."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        if max_series <= 0:
            raise ValueError(f"max_series must be > 0, got {max_series}")
        self._max_series = max_series
        self._series: OrderedDict[Hashable, dict[RawKey, Bar]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._series)

    def held(self) -> int:
        """How many Bars are held, all series together."""
        with self._lock:
            return sum(len(bars) for bars in self._series.values())

    def begin(self, series: Hashable) -> SeriesParse:
        """Start parsing an answer for ``series``; :meth:`end` it once every row parsed."""
        with self._lock:
            last = self._series.get(series)
        return SeriesParse(last if last is not None else {})

    def end(self, series: Hashable, parse: SeriesParse) -> None:
        """Keep this answer's Bars for ``series`` (replacing the last answer's)."""
        with self._lock:
            self._series[series] = parse.kept
            self._series.move_to_end(series)
            while len(self._series) > self._max_series:
                self._series.popitem(last=False)
