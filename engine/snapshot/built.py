"""A snapshot document assembled in code, checked against the field rules without cerberus.

The snapshot builder assembles one document per poll (``bastion serve``) or per bar close
(``bastion replay``: a year of 50 symbols is 252 documents of a few thousand values), and
cerberus costs a quarter of a second per document — most of a replay. The values of such
a document already have their types (Decimals, datetimes, strings); what still needs
checking is the *values*, because they come from a venue or a file: a negative equity, a
crossed quote, an empty symbol, a position in an unknown account.

:func:`snapshot_from_built` applies exactly the validator's rules, generated from the same
field tables (:mod:`fields`), to every value: the same coercions (`validate._to_decimal`,
``_to_int``, ``_to_utc``), the same value rules (:mod:`typed`), unknown and missing fields,
the types of nested records and lists, the keys of by-symbol records, then the
cross-reference checks (:mod:`consistency`). The check of each record is written out as
code once (a poll's ~50 market records of 14 numbers each would cost more through a loop
over the table): the common values — a finite Decimal within bounds, a UTC datetime, a
plain short text — are taken as they are, anything else goes to the field's own check
(tests/snapshot/test_compiled_checks.py holds it to the generic loop it replaced).

When anything is wrong it does not write its own report: it hands the document to the
full validator (`Snapshot.from_dict`), which raises SnapshotInvalid listing every problem
with its path, word for word as for a file.
So a document is accepted here only if the validator accepts it, and gives the same
Snapshot (tests/snapshot/test_built.py checks both on the example histories and on
documents broken field by field).

:func:`snapshot_from_typed` goes one step further for the positions, thousands per poll:
the builder makes them as the model's Position objects (:func:`typed.batch_maker` and
:func:`typed.maker`, checked as they are made) and only the cross-references are checked
here — in bulk, or, for the positions the batch maker made, taken from what it proved
when the proof covers these very positions and this document; the rest of the
document (accounts, market, ...) is checked as above. Anything refused, or needing a
coercion, falls back to :func:`snapshot_from_built` on the equivalent document
(tests/snapshot/test_paths_property.py: the same verdicts and Snapshots as cerberus).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from keyword import iskeyword
from operator import attrgetter
from typing import Any

from bastion.engine.snapshot.consistency import check_references
from bastion.engine.snapshot.fields import RECORDS, Field, FieldKind, Record
from bastion.engine.snapshot.model import CLASSES, Position, Snapshot, build_snapshot
from bastion.engine.snapshot.typed import Checked, accepted, record_valid, valid_value
from bastion.engine.snapshot.typed_batch import Batch
from bastion.engine.snapshot.validate import (
    CONTROL_CHARACTERS,
    TEXT_MAX_LENGTH,
    _to_decimal,
    _to_int,
    _to_utc,
)

_COERCE = {FieldKind.DECIMAL: _to_decimal, FieldKind.INTEGER: _to_int, FieldKind.TIME: _to_utc}
_NAMES = {name: frozenset(field.name for field in rec.fields) for name, rec in RECORDS.items()}
_KEY_FIELD = Field("symbol", FieldKind.TEXT, "a by-symbol key")  # keys follow the text rule
Check = Callable[[object], object]


class _Refused(Exception):
    """Some value breaks a rule: the full validator reports it."""


def snapshot_from_built(document: Mapping[str, Any], *, source: str = "") -> Snapshot:
    """The Snapshot of a document assembled in code; SnapshotError (from the validator,
    listing every problem) when any value breaks a rule of the field tables."""
    normalized = normalized_document(document)
    if normalized is None or check_references(normalized):
        return Snapshot.from_dict(document, source=source)  # raises, naming every problem
    return build_snapshot(normalized)


def snapshot_from_typed(
    document: Mapping[str, Any],
    positions: Sequence[Position],
    *,
    source: str = "",
    checked: Checked | None = None,
) -> Snapshot:
    """The Snapshot of a document assembled in code whose positions are already the
    model's :class:`Position` objects (``document`` holds everything else: accounts,
    market, ...; its ``positions`` are ignored).

    The positions are valid by construction but for what a venue's values can break:
    each is checked field by field (:func:`typed.record_valid`: the field rules, every
    value already of its normalised type) and against the rest of the document (unique
    ids, a known account, market data, an option leg exactly for options, not entered
    after ``as_of``: the validator's cross-references), with no document round trip.
    Anything else — a value the check refuses or that would need a coercion — goes the
    document way (:func:`snapshot_from_built` on the equivalent document, so the
    validator decides and words any problem, path and all, as for a file).

    ``checked``: the positions were made by :func:`typed.maker`, which checked their
    field rules as it made them (``refused`` when any value failed); only the
    cross-references are left to check here. Where a batch maker made them
    (``checked.batch``, :func:`typed.batch_maker`), the cross-references it proved are
    not checked again, only the others' (:func:`_batch_fits`)."""
    rest = normalized_document({**document, "positions": []})
    if (
        rest is not None
        and not (checked is not None and checked.refused)
        and not check_references(rest)
        and _positions_fit(positions, rest, fields_checked=checked is not None, checked=checked)
    ):
        return replace(build_snapshot(rest), positions=tuple(positions))
    full = {**document, "positions": [position_document(p) for p in positions]}
    return snapshot_from_built(full, source=source)


def position_document(position: Position) -> dict[str, Any]:
    """The document record of a :class:`Position` built in code, values as they are (no
    text conversion): a required field always, an optional one unless None (absent)."""
    return _document_of("Position", position)


def _document_of(record: str, instance: object) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in RECORDS[record].fields:
        value = getattr(instance, field.name, None)
        if value is None and not field.required:
            continue
        if field.kind is FieldKind.RECORD and type(value) is CLASSES[field.record]:
            value = _document_of(field.record, value)
        values[field.name] = value
    return values


def _positions_fit(
    positions: Sequence[Position],
    rest: Mapping[str, Any],
    *,
    fields_checked: bool,
    checked: Checked | None = None,
) -> bool:
    """Every position passes its field rules (unless ``fields_checked`` already) and the
    validator's cross-references (consistency._unique_ids and _positions) against the
    field-valid ``rest``: unique ids, known accounts, not entered after ``as_of``, an
    option leg exactly for options, market data for the rest. A pass over all positions
    per rule, each in C (set and map), rather than all rules per position — or, where
    ``checked.batch`` proved them, over the batch's others only (:func:`_batch_fits`)."""
    batch = None if checked is None else checked.batch
    if batch is not None and _batch_covers(batch, positions, rest):
        return _batch_fits(batch, rest)
    if not fields_checked:
        checked = Checked()
        if not all(record_valid("Position", position, checked) for position in positions):
            return False
    if not positions:
        return True
    accounts = {account["id"] for account in rest["accounts"]}
    ids = list(map(_ID, positions))
    if len(set(ids)) != len(ids) or not set(map(_ACCOUNT_ID, positions)) <= accounts:
        return False
    if max(map(_ENTERED_AT, positions)) > rest["as_of"]:
        return False
    legs = list(map(_OPTION, positions))
    options = list(map(_ASSET_CLASS, positions)).count("option")
    plain: Sequence[Position] = positions
    if options or legs.count(None) != len(legs):  # an option leg exactly for options
        if any(
            (leg is None) is (position.asset_class == "option")
            for position, leg in zip(positions, legs, strict=True)
        ):
            return False
        plain = [position for position, leg in zip(positions, legs, strict=True) if leg is None]
    market: Mapping[str, object] = rest["market"]
    return set(map(_SYMBOL, plain)) <= market.keys()  # market data for the rest


def _batch_covers(batch: Batch, positions: Sequence[Position], rest: Mapping[str, Any]) -> bool:
    """Whether what ``batch`` proved holds for these very ``positions`` (the tuple it
    finished, no other) in this document: ids unique among its records, their accounts
    among ``rest``'s, their symbols among its market keys, none entered after its
    ``as_of``. Any doubt: False, and every position is checked (fail closed)."""
    return (
        positions is batch.positions
        and batch.unique
        and batch.as_of <= rest["as_of"]
        and batch.accounts <= {account["id"] for account in rest["accounts"]}
        and batch.market.issubset(rest["market"])
    )


def _batch_fits(batch: Batch, rest: Mapping[str, Any]) -> bool:
    """The references left once ``batch``'s proof covers its records: the others (made
    one by one) against ``rest``, and their ids unique across both."""
    others = batch.others
    return not others or (
        not batch.shares_id(map(_ID, others)) and _positions_fit(others, rest, fields_checked=True)
    )


_ID, _ACCOUNT_ID, _SYMBOL = attrgetter("id"), attrgetter("account_id"), attrgetter("symbol")
_ENTERED_AT, _OPTION = attrgetter("entered_at"), attrgetter("option")
_ASSET_CLASS = attrgetter("asset_class")


def record_refused(record: str, values: object) -> bool:
    """Whether a field rule of ``RECORDS[record]`` refuses one record assembled in code
    (the builder leaves such a venue record out — a broken option contract — and asks
    :func:`typed.field_problems` why). Cross-references are not checked here."""
    try:
        _CHECKS[record](values)
    except Exception:  # _Refused, a required field absent, or a value a coercion chokes on
        return True
    return False


def normalized_document(document: object) -> dict[str, Any] | None:
    """The normalised document (as the validator returns it), or None when a field rule
    refuses a value. Cross-references are not checked here."""
    try:
        return _CHECKS["Snapshot"](document)  # type: ignore[return-value]
    except Exception:  # _Refused, a required field absent (KeyError), or a value a coercion
        return None  # chokes on: the validator says why


# -- one check per field, compiled from the tables; each returns the normalised value ----
# A record's check is written out as code (_compile_check) and calls these for any value
# it does not take as it is.


def _scalar(field: Field) -> Check:
    """Coerce as the validator does, then its value rule; the common types go straight."""
    coerce = _COERCE.get(field.kind)
    positive, low, high = field.positive, field.minimum, field.maximum

    def general(value: object) -> object:
        if coerce is not None:
            value = coerce(value)
        if not valid_value(field, value):
            raise _Refused
        return value

    if field.kind is FieldKind.DECIMAL:

        def decimal(value: object) -> object:
            if type(value) is not Decimal:
                return general(value)
            if not (
                value.is_finite()
                and (value > 0 or not positive)
                and (low is None or value >= low)
                and (high is None or value <= high)
            ):
                raise _Refused
            return value

        return decimal
    if field.kind is FieldKind.TEXT:

        def text(value: object) -> object:
            if (
                type(value) is str
                and value.strip()
                and len(value) <= TEXT_MAX_LENGTH
                and not CONTROL_CHARACTERS.search(value)
            ):
                return value
            return general(value)

        return text
    if field.kind is FieldKind.CHOICE:
        choices = frozenset(field.choices)

        def choice(value: object) -> object:
            if type(value) is str and value in choices:
                return value
            return general(value)

        return choice
    if field.kind is FieldKind.TIME:

        def time(value: object) -> object:
            if type(value) is datetime and value.tzinfo is UTC:
                return value  # aware, and already in UTC: what the coercion gives
            return general(value)

        return time
    return general


def _compile_check(record: Record, namespace: dict[str, Any]) -> None:
    """``check_<record>(values)``: the record's check, written out once from its field
    table (as typed.py writes its makers) into ``namespace``, shared by every record's
    check so that one calls the next directly. Per field, in the table's order: a value
    already of its normalised type that meets the field's rule is taken as it is (what
    :func:`_scalar`'s check returns for it); anything else goes to that very check
    (``step_<record>_<field>``), which coerces or refuses exactly as before. A required
    field absent raises KeyError: refused, like any exception. Field names enter the
    source only as identifiers and literals taken from the table, bounds and choices as
    named constants."""
    name = record.name
    assert name.isidentifier() and not iskeyword(name), name
    namespace[f"names_{name}"] = _NAMES[name]
    lines = [
        f"def check_{name}(values):",
        f"    if type(values) is not dict or not values.keys() <= names_{name}:",
        "        raise Refused  # not a dict, or an unknown key",
    ]
    leading: list[str] = []  # the required fields before the first optional one
    started = False  # ``result`` made: the fields after it are stored as they come
    for field in record.fields:
        assert field.name.isidentifier() and not iskeyword(field.name), field.name
        body = _field_source(name, field, namespace)
        if field.required and not started:
            lines += [f"    {line}" for line in body]
            leading.append(field.name)
            continue
        if not started:
            lines.append(f"    result = {_display(leading)}")
            started = True
        if field.required:
            lines += [f"    {line}" for line in body]
            lines.append(f"    result[{field.name!r}] = v_{field.name}")
        else:
            lines.append(f"    if {field.name!r} in values:")
            lines += [f"        {line}" for line in body]
            lines.append(f"        result[{field.name!r}] = v_{field.name}")
    lines.append("    return result" if started else f"    return {_display(leading)}")
    exec("\n".join(lines), namespace)


def _display(names: list[str]) -> str:
    """A dict display of the named fields' values, in the table's order."""
    return "{" + ", ".join(f"{field!r}: v_{field}" for field in names) + "}"


def _field_source(record: str, field: Field, namespace: dict[str, Any]) -> list[str]:
    """Lines that set ``v_<field>`` to the normalised value of ``values[<field>]`` or raise."""
    name, kind = field.name, field.kind
    v = f"v_{name}"
    read = f"{v} = values[{name!r}]"
    if kind is FieldKind.OBJECT:  # free-form: only the validator checks those
        return ["raise Refused"]
    if kind is FieldKind.RECORD:
        return [f"{v} = check_{field.record}(values[{name!r}])"]
    if kind is FieldKind.LIST:
        return [
            read,
            f"if type({v}) is not list:",
            "    raise Refused",
            f"{v} = [check_{field.record}(entry) for entry in {v}]",
        ]
    if kind is FieldKind.BY_SYMBOL:
        namespace["key_rule"] = _scalar(_KEY_FIELD)
        key = f"key if {accepted(_KEY_FIELD, 'key', namespace, '')} else key_rule(key)"
        return [
            read,
            f"if type({v}) is not dict:",
            "    raise Refused",
            f"{v} = {{({key}): check_{field.record}(entry) for key, entry in {v}.items()}}",
        ]
    step = f"step_{record}_{name}"
    namespace[step] = _scalar(field)
    taken = accepted(field, v, namespace, f"{record}_{name}")
    if taken is None:
        return [f"{v} = {step}(values[{name!r}])"]
    return [read, f"if not ({taken}):", f"    {v} = {step}({v})"]


def _compiled_checks() -> dict[str, Check]:
    namespace: dict[str, Any] = {
        "Refused": _Refused,
        "Decimal": Decimal,
        "ZERO": Decimal(0),  # a Decimal: twice as fast to compare with as the int 0
        "datetime": datetime,
        "UTC": UTC,
        "TEXT_MAX": TEXT_MAX_LENGTH,
    }
    for record in RECORDS.values():
        _compile_check(record, namespace)
    return {name: namespace[f"check_{name}"] for name in RECORDS}


_CHECKS: dict[str, Check] = _compiled_checks()
