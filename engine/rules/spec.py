"""The compiler's input: a rule is an id and a condition over the fields of one fact.

A condition is a small tree::

    Compare(field, op, value)       op in  >  >=  <  <=  ==  !=
    AllOf(c1, c2, ...)              every child holds
    AnyOf(c1, c2, ...)              at least one child holds
    Not(c)                          the child does not hold

`field` is a name or a dotted path into nested mappings (``market.atr_usd``). `value`
is a number (int, float or Decimal; never a bool), a bool, a string, or `Ref(name)`:
the number another field holds. Ordering operators apply to numbers only; bools and
strings support ``==`` and ``!=``.

A `Ref` carries a threshold in the fact instead of the rule (`parametrize`), so that
rules that differ only by their thresholds compile to one ruleset. A referenced field
that no rule compares directly is a *parameter*: `CompiledRuleset.params` encodes its
value once, exactly as a threshold in the rule would have been (the same `normalize`,
the same text), and the engine compares the two doubles as it compares a literal.

durable-rules has no expression-level negation (``$not`` is refused with error 202;
its ``none`` construct means "no such fact exists", which is something else), so `Not`
is compiled away here: `to_negation_normal_form` pushes it down to the comparisons by
De Morgan's laws and flips each operator (``>`` ↔ ``<=``, ``>=`` ↔ ``<``, ``==`` ↔
``!=``). That is exact only because every field a rule names must be present in every
fact, with the kind its rules compare it to (`CompiledRuleset.match` enforces it): over
a total order with no missing values, ``not (x > t)`` is ``x <= t``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from bastion.engine.errors import RuleEngineError


@dataclass(frozen=True, slots=True)
class Ref:
    """The value of another (numeric) field of the same fact."""

    field: str


Threshold: TypeAlias = int | float | Decimal | bool | str | Ref
Number: TypeAlias = int | float | Decimal

ORDERING_OPS = frozenset({">", ">=", "<", "<="})
EQUALITY_OPS = frozenset({"==", "!="})
NEGATED_OP = {">": "<=", "<=": ">", ">=": "<", "<": ">=", "==": "!=", "!=": "=="}

_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_FIELD_PATH_LENGTH = 200
MAX_DEPTH = 32  # combinators and Not; keeps every recursion (ours and the C parser's) shallow


class Kind(StrEnum):
    """What a field holds; a field compared to a number must hold a number in every fact."""

    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: Threshold


@dataclass(frozen=True, slots=True, init=False)
class AllOf:
    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        object.__setattr__(self, "conditions", tuple(conditions))


@dataclass(frozen=True, slots=True, init=False)
class AnyOf:
    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        object.__setattr__(self, "conditions", tuple(conditions))


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


Condition: TypeAlias = Compare | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule: `rule_id` is reported back by `CompiledRuleset.match` when it holds."""

    rule_id: str
    condition: Condition


def kind_of(value: object) -> Kind | None:
    """The kind of a threshold or fact value; None for anything the engine cannot compare."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return Kind.BOOL
    if isinstance(value, int | float | Decimal | Ref):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.STRING
    return None


def to_negation_normal_form(condition: Condition, *, negate: bool = False) -> Condition:
    """The same condition with every `Not` pushed into the comparisons (see module doc)."""
    if isinstance(condition, Not):
        return to_negation_normal_form(condition.condition, negate=not negate)
    if isinstance(condition, Compare):
        if not negate:
            return condition
        return Compare(condition.field, NEGATED_OP[condition.op], condition.value)
    children = tuple(
        to_negation_normal_form(child, negate=negate) for child in condition.conditions
    )
    conjunction = isinstance(condition, AllOf) != negate  # De Morgan swaps all/any
    return AllOf(*children) if conjunction else AnyOf(*children)


def specialize(condition: Condition, known: Mapping[str, str | bool]) -> Condition | bool:
    """The condition for facts whose `known` fields hold these values: partial evaluation.

    A comparison of a known field becomes True or False; `AllOf` drops True children and
    is False with any False child; `AnyOf` the reverse; `Not` negates. What is left
    compares only the unknown fields, and holds for a fact exactly when the original
    does (for facts that carry the known values). Only strings and bools may be known:
    their `==` / `!=` mean the same here as in the rules engine.
    """
    if isinstance(condition, Compare):
        if condition.field not in known:
            return condition
        value = known[condition.field]
        if kind_of(value) is not kind_of(condition.value) or condition.op not in EQUALITY_OPS:
            return condition  # a mismatch the compiler reports; leave it to say so
        return (value == condition.value) == (condition.op == "==")
    if isinstance(condition, Not):
        inner = specialize(condition.condition, known)
        return (not inner) if isinstance(inner, bool) else Not(inner)
    conjunction = isinstance(condition, AllOf)
    kept: list[Condition] = []
    for child in condition.conditions:
        result = specialize(child, known)
        if result is (not conjunction):  # False in an AllOf, True in an AnyOf: decided
            return result
        if not isinstance(result, bool):
            kept.append(result)
    if not kept:
        return conjunction  # every child was True (AllOf) or False (AnyOf)
    if len(kept) == 1:
        return kept[0]
    return AllOf(*kept) if conjunction else AnyOf(*kept)


def field_kinds(specs: Iterable[RuleSpec]) -> dict[str, Kind]:
    """Validate every rule and return the kind of each field they compare, by path.

    Raises RuleEngineError naming the rule and the fix: duplicate or empty ids,
    malformed field paths, unknown operators, ordering on bools or strings, a field
    compared to two different kinds, empty combinators, unknown condition nodes.
    """
    kinds: dict[str, Kind] = {}
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, RuleSpec):
            raise RuleEngineError(f"expected a RuleSpec, got {type(spec).__name__}")
        if not isinstance(spec.rule_id, str) or not spec.rule_id:
            raise RuleEngineError(f"rule id must be a non-empty string, got {spec.rule_id!r}")
        if spec.rule_id in seen:
            raise RuleEngineError(f"rule {spec.rule_id!r}: the id is used twice; ids are unique")
        seen.add(spec.rule_id)
        for compare in _comparisons(spec.rule_id, spec.condition):
            kind = _check_compare(spec.rule_id, compare)
            fields = [compare.field]
            if isinstance(compare.value, Ref):
                fields.append(compare.value.field)
            for name in fields:
                previous = kinds.setdefault(name, kind)
                if previous is not kind:
                    raise RuleEngineError(
                        f"rule {spec.rule_id!r}: field {name!r} is compared to a {kind} "
                        f"here and to a {previous} elsewhere; a field holds one kind of value"
                    )
    return kinds


def parameters(specs: Iterable[RuleSpec]) -> frozenset[str]:
    """The fields rules only reference (`Ref`) and never compare: the parameters."""
    compared: set[str] = set()
    referenced: set[str] = set()
    for spec in specs:
        for compare in _comparisons(spec.rule_id, spec.condition):
            compared.add(compare.field)
            if isinstance(compare.value, Ref):
                referenced.add(compare.value.field)
    return frozenset(referenced - compared)


def thresholds(specs: Iterable[RuleSpec]) -> list[Number]:
    """The numeric thresholds of the rules, in order (slot n is the n-th)."""
    found: list[Number] = []
    for spec in specs:
        for compare in _comparisons(spec.rule_id, spec.condition):
            value = compare.value
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                found.append(value)
    return found


def threshold_keys(specs: Iterable[RuleSpec]) -> list[tuple[str, int]]:
    """Each numeric threshold's key, in `thresholds` order: its rule's id and its place
    among that rule's thresholds. Rule ids are unique in a list, so a key names one
    threshold; the same rule in another list (a policy of another shape) has the same
    keys, whatever rules come before it."""
    keys: list[tuple[str, int]] = []
    for spec in specs:
        place = 0
        for compare in _comparisons(spec.rule_id, spec.condition):
            value = compare.value
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                keys.append((spec.rule_id, place))
                place += 1
    return keys


def parametrize(
    specs: Iterable[RuleSpec],
    slots: Collection[int] | None,
    prefix: str,
    names: Mapping[int, str] | None = None,
) -> tuple[list[RuleSpec], dict[str, Number]]:
    """The rules with the thresholds of these slots (`thresholds` order; None: every
    one) moved into parameters named ``<prefix><slot>`` (or ``names[slot]``: then the
    slots moved are the keys of `names`, and `slots` is ignored), and their values."""
    if names is not None:
        slots = names.keys()
    values: dict[str, Number] = {}
    counter = itertools.count()

    def moved(condition: Condition) -> Condition:
        if isinstance(condition, Compare):
            value = condition.value
            if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
                return condition
            slot = next(counter)
            if slots is not None and slot not in slots:
                return condition
            name = f"{prefix}{slot}" if names is None else names[slot]
            if name in values:
                raise RuleEngineError(f"parameter {name!r} named twice; a name is one threshold")
            values[name] = value
            return Compare(condition.field, condition.op, Ref(name))
        if isinstance(condition, Not):
            return Not(moved(condition.condition))
        children = tuple(moved(child) for child in condition.conditions)
        return AllOf(*children) if isinstance(condition, AllOf) else AnyOf(*children)

    result = [RuleSpec(spec.rule_id, moved(spec.condition)) for spec in specs]
    return result, values


def _comparisons(rule_id: str, condition: object, depth: int = 1) -> Iterable[Compare]:
    if depth > MAX_DEPTH:
        raise RuleEngineError(f"rule {rule_id!r}: conditions nest deeper than {MAX_DEPTH} levels")
    if isinstance(condition, Compare):
        yield condition
    elif isinstance(condition, Not):
        yield from _comparisons(rule_id, condition.condition, depth + 1)
    elif isinstance(condition, AllOf | AnyOf):
        if not condition.conditions:
            name = type(condition).__name__
            raise RuleEngineError(f"rule {rule_id!r}: {name}() needs at least one condition")
        for child in condition.conditions:
            yield from _comparisons(rule_id, child, depth + 1)
    else:
        raise RuleEngineError(
            f"rule {rule_id!r}: unknown condition {type(condition).__name__}; "
            "use Compare, AllOf, AnyOf or Not"
        )


def _check_compare(rule_id: str, compare: Compare) -> Kind:
    where = f"rule {rule_id!r}, field {compare.field!r}"
    if (
        not isinstance(compare.field, str)
        or len(compare.field) > MAX_FIELD_PATH_LENGTH
        or not _FIELD_PATH.fullmatch(compare.field)
    ):
        raise RuleEngineError(
            f"{where}: a field is a name or dotted path of names (letters, digits, _)"
        )
    if compare.op not in NEGATED_OP:
        raise RuleEngineError(f"{where}: unknown operator {compare.op!r}; use one of {_OPS}")
    if isinstance(compare.value, Ref) and (
        not isinstance(compare.value.field, str)
        or len(compare.value.field) > MAX_FIELD_PATH_LENGTH
        or not _FIELD_PATH.fullmatch(compare.value.field)
    ):
        raise RuleEngineError(f"{where}: Ref needs a field name or dotted path of names")
    kind = kind_of(compare.value)
    if kind is None:
        raise RuleEngineError(
            f"{where}: cannot compare to {type(compare.value).__name__}; "
            "use a number, a bool or a string"
        )
    if kind is not Kind.NUMBER and compare.op in ORDERING_OPS:
        raise RuleEngineError(f"{where}: {compare.op} needs a number; a {kind} takes == or !=")
    return kind


_OPS = " ".join(NEGATED_OP)
