"""A read-only mapping with one key changed, without copying the mapping whole.

What the authority remembers (`AuthorityState`: submits, trades, overrides, grace) is
keyed by account or account/symbol and grows with the book: a firm's state holds
hundreds of keys. An approved order changes one of them; copying the whole dict to
change it (`{**trades, key: value}`) costs O(keys) per order — ~3.5 µs at 350 keys, more
than the rest of the state update. `with_item` gives the same mapping for
O(LAYER): the changed keys sit in a small top layer over the unchanged base, and every
LAYER changes they are folded into a new plain dict (O(keys) / LAYER per order).

A `Layered` is a `Mapping` (reads, `in`, iteration, `len`, `==` with any mapping); it
pickles as the plain dict it equals, and nothing writes to it after it is made — the
state stays immutable, an old state still reads as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

LAYER = 32  # changed keys kept over the base before they are folded into a new dict
SMALL = 64  # a mapping this small is copied whole (as cheap, and a plain dict)
_MISSING: Any = object()


class Layered(Mapping[K, V]):
    """`base` with the keys of `top` set (added or replaced); both never change."""

    __slots__ = ("_base", "_size", "_top")

    def __init__(self, base: Mapping[K, V], top: dict[K, V], size: int) -> None:
        self._base = base
        self._top = top
        self._size = size  # len(base | top), counted by `with_item`

    def __getitem__(self, key: K) -> V:
        value = self._top.get(key, _MISSING)
        if value is _MISSING:
            return self._base[key]
        return value  # type: ignore[no-any-return]

    def get(self, key: K, default: Any = None) -> Any:
        value = self._top.get(key, _MISSING)
        if value is _MISSING:
            return self._base.get(key, default)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._top or key in self._base

    def __iter__(self) -> Iterator[K]:
        top = self._top
        yield from top
        for key in self._base:
            if key not in top:
                yield key

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return len(self) == len(other) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # like the dict it stands for

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))  # saved and sent as the plain dict


def with_item(mapping: Mapping[K, V], key: K, value: V) -> Mapping[K, V]:
    """`{**mapping, key: value}` (equal to it), without copying a large mapping."""
    if isinstance(mapping, Layered):
        top = mapping._top
        size = mapping._size + (key not in mapping)
        if len(top) >= LAYER:  # fold the layer: a plain dict again
            folded = dict(mapping._base)
            folded.update(top)
            folded[key] = value
            return folded
        changed = dict(top)
        changed[key] = value
        return Layered(mapping._base, changed, size)
    if len(mapping) <= SMALL:
        return {**mapping, key: value}
    return Layered(mapping, {key: value}, len(mapping) + (key not in mapping))
