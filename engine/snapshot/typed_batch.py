"""A poll's positions made in one go, their cross-references proven as they are made.

:func:`batch_maker` writes one loop out of the field table (as :mod:`typed` writes its
makers): per venue position, each attribute read once, its field rule and the
validator's cross-references tested — a unique id, a known account, market data, not
entered after ``as_of``, no option leg — and the Position made, or the source set aside
for the caller to make one by one. :class:`Batch` carries what it proved, so that
engine/snapshot/built.py checks only the positions set aside.

Positions without an entry time of their own (Alpaca's and Binance's) get the time the
builder first saw them (:class:`FirstSeen`). A venue lists its positions in the same
order poll after poll, so the loop reads the last poll's first-seen times in step with
its own positions — no lookup by id, which for 10,000 positions was ~10 % of a build —
and looks an id up only where the step fails (a new position, one gone, another order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from keyword import iskeyword
from typing import Any, cast

from bastion.engine.snapshot.fields import RECORDS, FieldKind
from bastion.engine.snapshot.model import Position
from bastion.engine.snapshot.typed import Checked, _conditions, _generated, _twin


class FirstSeen(Mapping[str, datetime]):
    """id -> the time a position without an entry time was first seen, as a batch made
    them: two lists in the poll's order (``ids``, ``times``), which the next poll's batch
    reads in step with its own positions, and a dict made only when one is asked by id.
    ``in_step``: the ids are distinct (the batch's proof held), so the lists may be read
    in step; else only by id."""

    __slots__ = ("_by_id", "ids", "in_step", "times")

    def __init__(self, ids: list[str], times: list[datetime], *, in_step: bool) -> None:
        self.ids, self.times, self.in_step = ids, times, in_step
        self._by_id: dict[str, datetime] | None = None

    def by_id(self) -> dict[str, datetime]:
        if self._by_id is None:
            self._by_id = dict(zip(self.ids, self.times, strict=True))
        return self._by_id

    def __getitem__(self, key: str) -> datetime:
        return self.by_id()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.by_id().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_id())

    def __len__(self) -> int:
        return len(self.ids) if self.in_step else len(self.by_id())  # (distinct: as many)

    def __bool__(self) -> bool:
        return bool(self.ids)

    def __repr__(self) -> str:
        return f"FirstSeen({self.by_id()!r})"


class Batch:
    """What a batch maker (:func:`batch_maker`) made of a poll's sources, and what it
    proved of the records it made beyond each value's field rule: their ids are unique
    among them (``unique``; :meth:`shares_id`), each account is one of ``accounts``, each
    symbol one of ``market`` (the keys of the market records it was given), none entered
    after ``as_of``, none an option or with an option leg — the validator's
    cross-references of a position (engine/snapshot/consistency.py). ``aside``: the
    indices of the sources it left to the caller — an option, a value that breaks its
    rule or needs a fallback, a failed reference, a source set aside by the caller's own
    test — which the caller makes one by one (:func:`typed.maker`) and :meth:`finish`
    puts in their place: ``others``, not covered by the proof (built.snapshot_from_typed
    checks them). ``stamped``: the first-seen times of the records made without an entry
    time of their own."""

    __slots__ = (
        "_ids",
        "_records",
        "_step_ids",
        "accounts",
        "as_of",
        "aside",
        "market",
        "others",
        "positions",
        "stamped",
        "unique",
    )

    def __init__(
        self,
        records: list[Position | None],
        aside: list[int],
        ids: set[str],
        accounts: frozenset[str],
        market: frozenset[str],
        as_of: datetime,
        stamped: tuple[list[str], list[datetime], list[str]] | None = None,
    ) -> None:
        self._records: list[Position | None] | None = records
        self.aside: tuple[int, ...] = tuple(aside)
        self.accounts, self.market, self.as_of = accounts, market, as_of
        stamped_ids, times, step_ids = ([], [], []) if stamped is None else stamped
        # The made records' ids: ``ids`` a set, but for those whose first-seen time was
        # read in step with the last poll's (``step_ids``: distinct, as the last poll's
        # were — FirstSeen.in_step).
        self._ids, self._step_ids = ids, step_ids
        self.unique = len(ids) + len(step_ids) == len(records) - len(aside) and (
            not ids or not step_ids or ids.isdisjoint(step_ids)
        )
        self.stamped = FirstSeen(stamped_ids, times, in_step=self.unique)
        self.others: tuple[Position, ...] = ()
        self.positions: tuple[Position, ...] | None = None  # set by finish: what is proven

    def shares_id(self, others: Iterable[str]) -> bool:
        """Whether one of ``others`` is the id of a record the batch made."""
        other_ids = set(others)
        return not (other_ids.isdisjoint(self._ids) and other_ids.isdisjoint(self._step_ids))

    def finish(self, made: Mapping[int, Position]) -> tuple[Position, ...]:
        """The positions in the sources' order: the batch's records and, in the place of
        each source set aside, the caller's record for it (``made``, by index) or none
        (a source the caller left out). Once per batch: the proof covers this tuple."""
        records = self._records
        if records is None:
            raise RuntimeError("a batch is finished once")
        others = tuple(made.values())
        if not made.keys() <= set(self.aside) or {*map(type, others)} - {Position}:
            raise ValueError("only the sources set aside are the caller's, made as Positions")
        for index, record in made.items():
            records[index] = record
        if len(made) < len(self.aside):  # some left out by the caller
            records = [record for record in records if record is not None]
        positions = cast("tuple[Position, ...]", tuple(records))  # no None left
        self._records, self.others, self.positions = None, others, positions
        return positions


BatchMaker = Callable[..., Batch]


def _not_seen(key: str, default: datetime) -> None:
    """``first_seen.get`` without ``first_seen``: no entry time, the source set aside."""


def batch_maker(aside_when_set: tuple[str, ...] = ()) -> BatchMaker:
    """``make(checked, sources, *, market, accounts, as_of)``: the :class:`Batch` of
    ``sources`` (objects with a Position's fields as attributes, e.g. the venue's
    positions), each made as :func:`typed.maker` makes it, in one loop written out once
    from the field table: per source, each attribute read once, its field rule and the
    cross-references tested, the Position made — or the source set aside (any test
    failed, or an attribute named in ``aside_when_set`` is not None). ``checked.batch``
    is set to the Batch; ``checked.refused`` is never set here (what breaks a rule is set
    aside, and the maker refuses it when the caller makes it).

    ``first_seen`` (id -> time): a source without an entry time (``entered_at`` None, as
    Alpaca and Binance report positions) is made with the time it was first seen, or
    ``as_of`` when it is new — as the caller would make it one by one — and listed in
    ``Batch.stamped``; without ``first_seen`` it is set aside. A :class:`FirstSeen` (the
    last batch's) is read in step with the sources where their ids follow its order."""
    generated = _compile_batch(aside_when_set)

    def make(
        checked: Checked,
        sources: Iterable[object],
        *,
        market: Iterable[str],
        accounts: Iterable[str],
        as_of: datetime,
        first_seen: Mapping[str, datetime] | None = None,
    ) -> Batch:
        if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
            raise ValueError(f"as_of must be a timezone-aware datetime, got {as_of!r}")
        market_keys, account_ids = frozenset(market), frozenset(accounts)
        seen_get = _not_seen if first_seen is None else first_seen.get
        step: tuple[list[str], list[datetime]] = ([], [])
        if isinstance(first_seen, FirstSeen) and first_seen.in_step:
            step = first_seen.ids, first_seen.times
        records, aside, ids, stamped = generated(
            checked, sources, market_keys, account_ids, as_of, seen_get, *step
        )
        batch = Batch(records, aside, ids, account_ids, market_keys, as_of, stamped)
        checked.batch = batch
        return batch

    return make


# Per field, the batch maker's test where it is more than the field's own rule (``{rule}``,
# the maker's): the validator's cross-references of a position without an option leg
# (consistency._positions; unique ids: the set ``ids``); ``{v}`` is the value. An account
# id or a symbol need only be a str among the accounts' ids or the market's keys: the
# document's own check holds those to the text rule, and built.py trusts the batch only
# against a document that passed it (or checks the references again, which imply it).
_REFERENCES = {
    "account_id": "type({v}) is not str or {v} not in accounts",
    "symbol": "type({v}) is not str or {v} not in market",
    "asset_class": "type({v}) is not str or {v} not in PLAIN_ASSET_CLASSES",  # no option
    "entered_at": "({rule}) or {v} > as_of",
}


def _compile_batch(aside_when_set: tuple[str, ...]) -> Callable[..., Any]:
    """The batch maker's loop: the record's fields from the table (a nested record —
    the option leg — sets the source aside), the references above, the twin of
    typed._compile_maker; the first-seen times read in step (``step_ids``,
    ``step_times``: the last batch's) or looked up (``seen_get``)."""
    record = "Position"
    names, twin = _twin(record)
    assert {"id", *_REFERENCES} <= set(names), {"id", *_REFERENCES} - set(names)
    fields = RECORDS[record].fields
    asset_classes = next(field.choices for field in fields if field.name == "asset_class")
    constants: dict[str, object] = {
        "twin": twin,
        "PLAIN_ASSET_CLASSES": frozenset(asset_classes) - {"option"},  # an option has a leg
    }
    refusals = dict(_conditions(record, constants, in_argument=True))
    tests = []  # the first that holds sets the source aside: the rare cases first
    for name in aside_when_set:
        assert name.isidentifier() and not iskeyword(name), name
        tests.append(f"s.{name} is not None")
    tests += [f"v_{f.name} is not None" for f in fields if f.kind is FieldKind.RECORD]
    for field in fields:
        if field.kind is not FieldKind.RECORD:
            test = _REFERENCES.get(field.name, "({rule})")
            tests.append(test.format(rule=refusals[field.name], v=f"v_{field.name}"))
    lines = [
        "def generated(checked, sources, market, accounts, as_of, seen_get, step_ids, step_times):",
        "    passed = checked.passed",
        "    records, aside, ids = [], [], set()",
        "    append, set_aside, add_id = records.append, aside.append, ids.add",
        "    stamped, times, in_step = [], [], []",
        # While `exact`, the records made without an entry time are the last batch's
        # first j, in its order: nothing is appended (a steady book's every poll), and
        # at the end the last batch's lists are taken as they are.
        "    j, steps, exact = 0, len(step_ids), True",
        "    for s in sources:",
        *(f"        v_{name} = s.{name}" for name in names),
        # No entry time of its own: the time it was first seen — the last batch's in
        # step (the same id in the same place: no lookup), else by id, else as_of.
        "        unstamped = v_entered_at is None",
        "        if unstamped:",
        "            if j < steps and step_ids[j] == v_id:",
        "                v_entered_at = step_times[j]",
        "                j, stepped = j + 1, True",
        "            else:",
        "                if exact:",
        "                    exact = False",
        "                    stamped[:], times[:] = step_ids[:j], step_times[:j]",
        "                    in_step[:] = stamped",
        "                if j + 1 < steps and step_ids[j + 1] == v_id:  # one gone since",
        "                    v_entered_at = step_times[j + 1]",
        "                    j, stepped = j + 2, True",
        "                else:",
        "                    stepped = False",
        "                    v_entered_at = seen_get(v_id, as_of) if type(v_id) is str else None",
        "        if (",
        *(f"            {test} or" for test in tests[:-1]),
        f"            {tests[-1]}",
        "        ):",
        "            if unstamped and exact:  # read in step, then set aside: j - 1 made",
        "                exact = False",
        "                stamped[:], times[:] = step_ids[: j - 1], step_times[: j - 1]",
        "                in_step[:] = stamped",
        "            set_aside(len(records))",
        "            append(None)",
        "            continue",
        "        o = new(twin)",
        *(f"        o.{name} = v_{name}" for name in names),
        "        o.__class__ = cls",
        "        append(o)",
        "        if not unstamped:",
        "            add_id(v_id)",
        "        elif not exact:",
        "            stamped.append(v_id)",
        "            times.append(v_entered_at)",
        "            if stepped:",  # distinct (the last batch's were): no set to fill
        "                in_step.append(v_id)",
        "            else:",
        "                add_id(v_id)",
        "    if exact:",
        "        if j < steps:",
        "            step_ids, step_times = step_ids[:j], step_times[:j]",
        "        stamped, times, in_step = step_ids, step_times, step_ids",
        "    return records, aside, ids, (stamped, times, in_step)",
    ]
    return _generated(record, lines, constants)  # type: ignore[no-any-return]
