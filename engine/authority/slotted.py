"""Frozen slotted dataclasses built without their generated `__init__`, on the order hot path.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` (the only
way past its frozen `__setattr__`). `can_execute` builds an `ExecutionDecision` (12
fields), a `State` (13) and an `AuthorityState` (5) per approved order; these builders
give the same instances (equal, same hash, same repr, same type, still frozen) for less.

How: the instance is made as a *twin* — a subclass of the class adding no slots, with
`object`'s own `__setattr__` — so each field is one plain slot store (what the
interpreter does fastest, about a third of a slot descriptor's `__set__` called from
Python, measured); then its `__class__` is set to the class itself (allowed: the twin
adds nothing to the layout). Nothing else ever sees the twin.

Each builder is a function written for the class's fields, as `dataclasses` writes
`__init__`: field names enter the source only as identifiers read from
`dataclasses.fields`. Only for classes without `__post_init__` or `InitVar`s (checked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _slots(cls: type[Any], *, copying: bool = False) -> list[str]:
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: a slotted dataclass is required")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: has __post_init__; use its constructor")
    names = [f.name for f in dataclasses.fields(cls)]
    # The builders' own names: `made`, `old`, globals starting with "_", and a copier's
    # arguments `value0`, `value1`, ...
    clash = ("_", "value") if copying else ("_",)
    if any(name.startswith(clash) or name in ("made", "old") for name in names):
        raise TypeError(f"{cls.__name__}: a field name clashes with the builder's own")
    if sorted(names) != sorted(cls.__dict__["__slots__"]):
        raise TypeError(f"{cls.__name__}: its slots are not exactly its fields")
    return names


def _twin(cls: type[Any]) -> type[Any]:
    """A subclass adding no slots, with plain attribute stores (see the module doc):
    `object`'s `__setattr__` and `__delattr__` both (they share one type slot, which
    is the plain one only when neither is overridden)."""
    namespace = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
    }
    return type(f"_{cls.__name__}Twin", (cls,), namespace)


def _compiled(source: str, cls: type[Any], function: str) -> Any:
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_twin": _twin(cls)}
    exec(source, namespace)
    return namespace[function]


def constructor(cls: type[T]) -> Callable[..., T]:
    """`cls(*values)` with every field given positionally, in field order (keyword-only
    fields too, and fields with defaults: all of them)."""
    names = _slots(cls)
    lines = [f"def build({', '.join(names)}):", "    made = _new(_twin)"]
    lines += [f"    made.{name} = {name}" for name in names]
    lines += ["    made.__class__ = _cls", "    return made"]
    build: Callable[..., T] = _compiled("\n".join(lines), cls, "build")
    return build


def copier(cls: type[T], *changed: str) -> Callable[..., T]:
    """`dataclasses.replace(instance, **dict(zip(changed, values)))` as
    `copy(instance, *values)`: the `changed` fields given, in that order, the others
    read from the instance."""
    names = _slots(cls, copying=True)
    unknown = [name for name in changed if name not in names]
    if not changed or unknown or len(set(changed)) != len(changed):
        raise TypeError(f"{cls.__name__}: fields to change {changed!r} (unknown: {unknown})")
    values = {name: f"value{n}" for n, name in enumerate(changed)}
    lines = [f"def copy(old, {', '.join(values.values())}):", "    made = _new(_twin)"]
    lines += [f"    made.{name} = {values.get(name, 'old.' + name)}" for name in names]
    lines += ["    made.__class__ = _cls", "    return made"]
    copy: Callable[..., T] = _compiled("\n".join(lines), cls, "copy")
    return copy
