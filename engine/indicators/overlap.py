"""Where a series of bars carries on the one seen before: found once per build.

Each memo of a series (the builder's columns, its session re-stamping, the quality memo)
reuses what it worked out for the bars that come again — the very same :class:`Bar`
objects, moved on by a bar or two. Finding them is a pass over the whole series, and
when the caches are cold (a poll later, after an evaluation) each bar it reads costs a
memory fetch. :class:`Overlaps` finds the overlap of two series once per build and
hands the same answer to every memo that holds the same earlier series.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from operator import is_
from typing import TypeVar

REACH = 64  # look this many bars into the earlier series for the new first bar

T = TypeVar("T")


def overlap(old: Sequence[T], bars: Sequence[T], reach: int = REACH) -> tuple[int, int] | None:
    """(the row of ``old`` holding ``bars[0]`` — the first such row, within ``reach`` —,
    how many bars from there on are the very same objects as ``bars``'), or None."""
    if not bars:
        return None
    if old is bars:
        return 0, len(bars)
    first = bars[0]
    if len(old) > 1 and old[1] is first:  # moved on by a bar: the usual poll
        start = 1
    else:
        for start in range(min(len(old), reach)):
            if old[start] is first:
                break
        else:
            return None
    same = min(len(old) - start, len(bars))
    if not all(map(is_, islice(old, start, start + same), bars)):  # map stops after same
        return None
    return start, same


def same(held: Sequence[T], bars: Sequence[T]) -> bool:
    """The very same objects, in the same order (a memo's test that nothing changed)."""
    return len(held) == len(bars) and all(map(is_, held, bars))


class Overlaps:
    """One build's overlaps: :func:`overlap` of two tuples, found once. Only tuples are
    remembered (they cannot change); they are kept here, so their ids are not reused
    while they are keys. One per build (the builder's Context) and thread."""

    __slots__ = ("_found",)

    def __init__(self) -> None:
        self._found: dict[tuple[int, int], tuple[object, object, tuple[int, int] | None]] = {}

    def find(self, old: Sequence[T], bars: Sequence[T]) -> tuple[int, int] | None:
        if type(old) is not tuple or type(bars) is not tuple:
            return overlap(old, bars)
        key = (id(old), id(bars))
        held = self._found.get(key)
        if held is not None:
            return held[2]
        found = overlap(old, bars)
        self._found[key] = (old, bars, found)
        return found

    def tell(self, old: tuple[T, ...], bars: tuple[T, ...], found: tuple[int, int]) -> None:
        """What the caller knows by construction (it made ``bars`` from ``old``): the
        answer :func:`overlap` would give — ``bars[:same]`` are the very same objects as
        ``old[start:]``, ``start`` the first row of ``old`` holding ``bars[0]``, ``same``
        as many as both have from there."""
        self._found[(id(old), id(bars))] = (old, bars, found)
