"""Field checks for records built in code (typed already), without cerberus.

The snapshot builder assembles closed trades as :class:`ClosedTrade` objects; a week of
a busy account is thousands of them, and cerberus costs ~0.3 ms per trade record — a
poll's worth of seconds. Values built in code need no coercion, only the value rules of
the field table (the same rules the validator applies: non-empty short text, finite
numbers within bounds, aware times, choices), which this module checks directly.
Generated from :mod:`fields`, so it cannot drift from the validator.

The snapshot builder goes further for positions (thousands per poll): :func:`maker`
makes the model's own Position objects and checks their values as it makes them, with
code written out once per record from the field tables; :func:`record_valid` checks a
model object made any other way. Both accept only values already of their normalised
type (what the validator would return), so an accepted record is the validator's own.
:func:`batch_maker` makes a whole poll's common positions in one loop, also written
out from the field table, and proves their cross-references (unique ids, known
accounts, market data, not entered after ``as_of``) as it makes them (:class:`Batch`):
engine/snapshot/built.py then checks only the positions it left to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from decimal import Decimal
from keyword import iskeyword
from typing import Any, cast

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind
from bastion.engine.snapshot.messages import show
from bastion.engine.snapshot.model import CLASSES, Position
from bastion.engine.snapshot.validate import CONTROL_CHARACTERS, TEXT_MAX_LENGTH


def field_problems(record: str, values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, problem) for each value of ``values`` that breaks its field's rule in
    ``RECORDS[record]``; a required field absent from ``values`` is a problem. Only the
    scalar kinds are checked (text, decimal, integer, flag, time, choice)."""
    for field in RECORDS[record].fields:
        if field.name not in values:
            if field.required:
                yield field.name, "is required"
            continue
        value = values[field.name]
        if not valid_value(field, value):
            yield field.name, f"must be {field.expectation}, got {show(value)}"


def valid_value(field: Field, value: object) -> bool:
    """Whether ``value`` (already coerced) meets the value rule of a scalar ``field``."""
    kind = field.kind
    if kind is FieldKind.TEXT:
        return (
            isinstance(value, str)
            and bool(value.strip())
            and len(value) <= TEXT_MAX_LENGTH
            and not CONTROL_CHARACTERS.search(value)
        )
    if kind is FieldKind.DECIMAL:
        return (
            isinstance(value, Decimal)
            and value.is_finite()
            and (value > 0 or not field.positive)
            and _within(field, value)
        )
    if kind is FieldKind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool) and _within(field, value)
    if kind is FieldKind.FLAG:
        return isinstance(value, bool)
    if kind is FieldKind.TIME:
        return isinstance(value, datetime) and value.utcoffset() is not None
    if kind is FieldKind.CHOICE:
        return isinstance(value, str) and value in field.choices
    return True  # nested records are not built this way


def _within(field: Field, value: Decimal | int) -> bool:
    low, high = field.minimum, field.maximum
    return (low is None or value >= low) and (high is None or value <= high)


# -- records constructed in code: the model's own objects, checked field by field -------


class Checked:
    """One batch of records built in code (one poll's positions) and what checking their
    values found: ``refused`` once any value breaks its field's rule or is not yet of its
    normalised type. ``passed``: texts known to meet the text rule, each distinct text
    checked once — pass the builder's own set (``known``) to carry it from poll to poll,
    where the same ids, accounts, symbols and strategies come again and again."""

    __slots__ = ("batch", "passed", "refused")
    LIMIT = 1_000_000  # texts; then ``passed`` starts afresh

    def __init__(self, known: set[str] | None = None) -> None:
        self.passed: set[str] = set() if known is None else known
        self.refused = False  # set by a maker when a value breaks its rule
        self.batch: Batch | None = None  # set by a batch maker: what it proved

    def valid(self, value: object) -> bool:
        if type(value) is not str:
            return False
        if value in self.passed:
            return True
        if value.strip() and len(value) <= TEXT_MAX_LENGTH and not CONTROL_CHARACTERS.search(value):
            if len(self.passed) >= self.LIMIT:
                self.passed.clear()
            self.passed.add(value)
            return True
        return False


RecordCheck = Callable[[object, Checked], bool]


def record_valid(record: str, instance: object, checked: Checked | None = None) -> bool:
    """Whether a model object (``CLASSES[record]``, built in code) holds exactly what the
    validator would return for its document: every value of its normalised type (Decimal,
    int, bool, str, a datetime in UTC — no coercion left to do) and within its field's
    rule. False is no verdict on the record: the validator decides (it may coerce)."""
    return _RECORD_CHECKS[record](instance, checked or Checked())


def maker(record: str) -> Callable[..., Any]:
    """``make(checked, *values)``: a ``CLASSES[record]`` of ``values`` (every field, in
    the table's order), checked while it is made: ``checked.refused`` is set when a
    value fails :func:`record_valid`'s rules. The record is made either way (the
    validator is then given its document, to decide and word the problem). Written out
    once, as ``dataclasses`` writes ``__init__``, but filling the slots directly
    (:func:`_compile_maker`): checks included, ~0.6× the frozen ``__init__`` without
    any (no ``__post_init__`` is skipped: the model has none)."""
    return _MAKERS[record]


def _refusal(field: Field, constants: dict[str, object], v: str) -> str:
    """The condition under which the variable ``v`` (the field's value, not None) breaks
    the field's rule or is not yet of its normalised type: Python source."""
    kind, name = field.kind, field.name
    if kind is FieldKind.TEXT:
        return f"type({v}) is not str or ({v} not in passed and not checked.valid({v}))"
    if kind is FieldKind.DECIMAL:
        terms = [f"type({v}) is not Decimal", f"not {v}.is_finite()"]
        if field.positive:
            terms.append(f"{v} <= ZERO")  # a Decimal: twice as fast as with the int 0
    elif kind is FieldKind.INTEGER:
        terms = [f"type({v}) is not int"]
    elif kind is FieldKind.FLAG:
        return f"type({v}) is not bool"
    elif kind is FieldKind.TIME:
        return f"type({v}) is not datetime or {v}.tzinfo is not UTC"
    elif kind is FieldKind.CHOICE:
        constants[f"choices_{name}"] = frozenset(field.choices)
        return f"type({v}) is not str or {v} not in choices_{name}"
    elif kind is FieldKind.RECORD:
        return f"not checks[{field.record!r}]({v}, checked)"
    else:  # lists, by-symbol records, free-form objects: only the validator
        return "True"
    if field.minimum is not None:
        constants[f"low_{name}"] = field.minimum
        terms.append(f"{v} < low_{name}")
    if field.maximum is not None:
        constants[f"high_{name}"] = field.maximum
        terms.append(f"{v} > high_{name}")
    return " or ".join(terms)


def _conditions(
    record: str, constants: dict[str, object], *, in_argument: bool
) -> list[tuple[str, str]]:
    """(field name, the condition under which its value is refused), table order; the
    value is the variable ``v``, or (``in_argument``) the argument ``v_<field name>``.
    None is an absent optional field only where the class's default is None too (an
    absent dividend_yield reads as 0: a None there is no value the validator returns)."""
    none_is_absent = {
        item.name for item in dataclass_fields(CLASSES[record]) if item.default is None
    }
    conditions = []
    for field in RECORDS[record].fields:
        assert field.name.isidentifier()
        v = f"v_{field.name}" if in_argument else "v"
        refused = _refusal(field, constants, v)
        if field.required or field.name not in none_is_absent:
            if not refused.startswith(f"type({v}) is not "):  # else: None fails the type test
                refused = f"{v} is None or {refused}"
            conditions.append((field.name, refused))
        else:
            conditions.append((field.name, f"{v} is not None and ({refused})"))
    return conditions


def _generated(record: str, lines: list[str], constants: dict[str, object]) -> Any:
    """Field names enter the source only as identifiers taken from the table; bounds and
    choices as named constants."""
    cls = CLASSES[record]
    namespace: dict[str, Any] = {
        **constants,
        "cls": cls,
        "new": object.__new__,
        "checks": _RECORD_CHECKS,
        "Decimal": Decimal,
        "ZERO": Decimal(0),
        "datetime": datetime,
        "UTC": UTC,
    }
    exec("\n".join(lines), namespace)
    return namespace["generated"]


def _compile_record(record: str) -> RecordCheck:
    """One check per record, written out once from the field table (as ``dataclasses``
    writes ``__init__``): a record is thousands per poll, a loop over its fields per
    record would cost as much as the rest of the build."""
    constants: dict[str, object] = {}
    lines = [
        "def generated(o, checked):",
        "    if type(o) is not cls:",
        "        return False",
        "    passed = checked.passed",
    ]
    for name, condition in _conditions(record, constants, in_argument=False):
        lines += [f"    v = o.{name}", f"    if {condition}:", "        return False"]
    lines.append("    return True")
    check: RecordCheck = _generated(record, lines, constants)
    return check


def _twin(record: str) -> tuple[list[str], type]:
    """The record's field names and an unfrozen class of the same layout (``_compile_maker``)."""
    cls = CLASSES[record]
    names = [item.name for item in dataclass_fields(cls)]
    assert names == [field.name for field in RECORDS[record].fields], record  # same order
    assert not hasattr(cls, "__post_init__"), record
    assert tuple(getattr(cls, "__slots__", ())) == tuple(names), record  # the twin's layout
    return names, type(f"_Unfrozen{cls.__name__}", (), {"__slots__": tuple(names)})


def _compile_maker(record: str) -> Callable[..., Any]:
    """The record's values are stored into a twin of its class — the same slots, in the
    same order, but not frozen, so each store is the interpreter's plain slot store
    rather than a call of the slot's setter — and the object then becomes the class's
    own (``__class__`` assignment, allowed between classes of one layout): a third of
    the setters' cost. Nothing else ever sees the twin."""
    names, twin = _twin(record)
    constants: dict[str, object] = {"twin": twin}
    lines = [
        f"def generated(checked, {', '.join(f'v_{name}' for name in names)}):",
        "    passed = checked.passed",
        "    o = new(twin)",
    ]
    for name, condition in _conditions(record, constants, in_argument=True):
        lines += [f"    if {condition}:", "        checked.refused = True"]
        lines.append(f"    o.{name} = v_{name}")
    lines += ["    o.__class__ = cls", "    return o"]
    return _generated(record, lines, constants)  # type: ignore[no-any-return]


# -- a poll's positions made in one go, the cross-references proven as they are made -----


class Batch:
    """What a batch maker (:func:`batch_maker`) made of a poll's sources, and what it
    proved of the records it made beyond each value's field rule: their ids are unique
    among them (``unique``; ``ids``), each account is one of ``accounts``, each symbol
    one of ``market`` (the keys of the market records it was given), none entered after
    ``as_of``, none an option or with an option leg — the validator's cross-references
    of a position (engine/snapshot/consistency.py). ``aside``: the indices of the
    sources it left to the caller — an option, a value that breaks its rule or needs a
    fallback, a failed reference, a source set aside by the caller's own test — which
    the caller makes one by one (:func:`maker`) and :meth:`finish` puts in their place:
    ``others``, not covered by the proof (built.snapshot_from_typed checks them)."""

    __slots__ = (
        "_records",
        "accounts",
        "as_of",
        "aside",
        "ids",
        "market",
        "others",
        "positions",
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
    ) -> None:
        self._records: list[Position | None] | None = records
        self.aside: tuple[int, ...] = tuple(aside)
        self.ids, self.accounts, self.market, self.as_of = ids, accounts, market, as_of
        self.unique = len(ids) == len(records) - len(aside)
        self.others: tuple[Position, ...] = ()
        self.positions: tuple[Position, ...] | None = None  # set by finish: what is proven

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


def batch_maker(aside_when_set: tuple[str, ...] = ()) -> BatchMaker:
    """``make(checked, sources, *, market, accounts, as_of)``: the :class:`Batch` of
    ``sources`` (objects with a Position's fields as attributes, e.g. the venue's
    positions), each made as :func:`maker` makes it, in one loop written out once from
    the field table: per source, each attribute read once, its field rule and the
    cross-references tested, the Position made — or the source set aside (any test
    failed, or an attribute named in ``aside_when_set`` is not None). ``checked.batch``
    is set to the Batch; ``checked.refused`` is never set here (what breaks a rule is set
    aside, and :func:`maker` refuses it when the caller makes it)."""
    generated = _compile_batch(aside_when_set)

    def make(
        checked: Checked,
        sources: Iterable[object],
        *,
        market: Iterable[str],
        accounts: Iterable[str],
        as_of: datetime,
    ) -> Batch:
        if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
            raise ValueError(f"as_of must be a timezone-aware datetime, got {as_of!r}")
        market_keys, account_ids = frozenset(market), frozenset(accounts)
        records, aside, ids = generated(checked, sources, market_keys, account_ids, as_of)
        checked.batch = batch = Batch(records, aside, ids, account_ids, market_keys, as_of)
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
    :func:`_compile_maker`."""
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
        "def generated(checked, sources, market, accounts, as_of):",
        "    passed = checked.passed",
        "    records, aside, ids = [], [], set()",
        "    append, set_aside, add_id = records.append, aside.append, ids.add",
        "    for s in sources:",
        *(f"        v_{name} = s.{name}" for name in names),
        "        if (",
        *(f"            {test} or" for test in tests[:-1]),
        f"            {tests[-1]}",
        "        ):",
        "            set_aside(len(records))",
        "            append(None)",
        "            continue",
        "        o = new(twin)",
        *(f"        o.{name} = v_{name}" for name in names),
        "        o.__class__ = cls",
        "        append(o)",
        "        add_id(v_id)",
        "    return records, aside, ids",
    ]
    return _generated(record, lines, constants)  # type: ignore[no-any-return]


_RECORD_CHECKS: dict[str, RecordCheck] = {}
_RECORD_CHECKS.update({name: _compile_record(name) for name in CLASSES})
# Records whose dataclass fields are the table's, in the same order (not Instrument and
# OptionChain, which carry their key in a field the table does not list).
_MAKERS = {name: _compile_maker(name) for name in ("Position", "OptionLeg", "Account")}
