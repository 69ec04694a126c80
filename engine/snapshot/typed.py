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
:func:`typed_batch.batch_maker` makes a whole poll's common positions in one loop, also written
out from the field table, and proves their cross-references (unique ids, known
accounts, market data, not entered after ``as_of``) as it makes them (``Batch``, in
:mod:`typed_batch`): engine/snapshot/built.py then checks only the positions it left
to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind
from bastion.engine.snapshot.messages import show
from bastion.engine.snapshot.model import CLASSES, unfrozen_twin
from bastion.engine.snapshot.validate import CONTROL_CHARACTERS, TEXT_MAX_LENGTH

if TYPE_CHECKING:  # the batch maker (typed_batch.py) builds on the makers of this module
    from bastion.engine.snapshot.typed_batch import Batch


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


def _refusal(field: Field, constants: dict[str, Any], v: str) -> str:
    """The condition under which the variable ``v`` (the field's value, not None) breaks
    the field's rule or is not yet of its normalised type: Python source."""
    kind, name = field.kind, field.name
    if kind is FieldKind.TEXT:
        memo = f"{v} not in passed and not checked.valid({v})"
        if name != "id":  # texts that come again and again (accounts, strategies): the
            return f"type({v}) is not str or ({memo})"  # memo's entry for them is at hand
        # A record's own id comes once a poll, and a poll later its entry in the large
        # `passed` set is a memory fetch (~4 % of a 10,000-position build): read off the
        # string instead (:func:`accepted`), the memo only for what that does not take.
        return f"type({v}) is not str or not ({accepted(field, v, constants, name)}) and {memo}"
    if kind in (FieldKind.DECIMAL, FieldKind.FLAG, FieldKind.TIME, FieldKind.CHOICE):
        return f"not ({accepted(field, v, constants, name)})"
    if kind is FieldKind.RECORD:
        return f"not checks[{field.record!r}]({v}, checked)"
    if kind is not FieldKind.INTEGER:  # lists, by-symbol records, free-form: the validator
        return "True"
    terms = [f"type({v}) is not int"]
    if field.minimum is not None:
        constants[f"low_{name}"] = field.minimum
        terms.append(f"{v} < low_{name}")
    if field.maximum is not None:
        constants[f"high_{name}"] = field.maximum
        terms.append(f"{v} > high_{name}")
    return " or ".join(terms)


def accepted(field: Field, v: str, namespace: dict[str, Any], qualified: str) -> str | None:
    """The condition (Python source) under which the value ``v`` of a scalar field is
    already of its normalised type and meets the field's rule — what the field's check
    (built._scalar) returns unchanged; None: every value goes to that check. Its
    constants go into ``namespace``, named after ``qualified``. The typed makers refuse
    what it does not accept (:func:`_refusal`), the document check takes what it does as
    it is (engine/snapshot/built.py)."""
    kind = field.kind
    if kind is FieldKind.DECIMAL:
        terms = [f"type({v}) is Decimal", f"{v}.is_finite()"]
        if field.positive:
            terms.append(f"{v} > ZERO")
        if field.minimum is not None:
            namespace[f"low_{qualified}"] = field.minimum
            terms.append(f"{v} >= low_{qualified}")
        if field.maximum is not None:
            namespace[f"high_{qualified}"] = field.maximum
            terms.append(f"{v} <= high_{qualified}")
        return " and ".join(terms)
    if kind is FieldKind.TEXT:
        namespace["TEXT_MAX"] = TEXT_MAX_LENGTH
        # Printable means no control character, and no whitespace but the space, so a
        # printable text not all spaces keeps something when stripped: the text rule
        # holds. Others (a str subclass, a non-printable character): the field's check.
        return (
            f"type({v}) is str and {v}.isprintable() and 0 < len({v}) <= TEXT_MAX"
            f" and not {v}.isspace()"
        )
    if kind is FieldKind.CHOICE:
        namespace[f"choices_{qualified}"] = frozenset(field.choices)
        return f"type({v}) is str and {v} in choices_{qualified}"
    if kind is FieldKind.TIME:
        return f"type({v}) is datetime and {v}.tzinfo is UTC"  # aware, in UTC already
    if kind is FieldKind.FLAG:
        return f"type({v}) is bool"
    return None  # an integer: the coercion gives a new int (int(Decimal(v))), kept so


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
            if not refused.startswith((f"type({v}) is not ", f"not (type({v}) is ")):  # None fails
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
    twin = unfrozen_twin(record)  # as the record builders make theirs (model.py)
    assert twin is not None, record
    return names, twin


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


_RECORD_CHECKS: dict[str, RecordCheck] = {}
_RECORD_CHECKS.update({name: _compile_record(name) for name in CLASSES})
# Records whose dataclass fields are the table's, in the same order (not Instrument and
# OptionChain, which carry their key in a field the table does not list).
_MAKERS = {name: _compile_maker(name) for name in ("Position", "OptionLeg", "Account")}
