"""typed.maker: the records it makes are the model's own objects, in every respect.

The maker fills an unfrozen twin of the class (same slots, same order) and then turns
it into the class itself; nothing may tell such a record from one made by the class's
own ``__init__``: type, equality, hash, frozenness, repr, pickling, ``replace``.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bastion.engine.snapshot.model import Account, OptionLeg, Position
from bastion.engine.snapshot.typed import Checked, maker, record_valid

ENTERED = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
VALUES = ("P1", "acc-1", "AAPL", "equity", Decimal(3), "long", Decimal("101.5"), ENTERED)
REST = (Decimal(99), "strat-1", False, None)


def test_maker_when_values_valid_then_the_record_is_the_class_own() -> None:
    """Made and constructed records are indistinguishable, and the made one is frozen."""
    checked = Checked()
    made = maker("Position")(checked, *VALUES, *REST)
    built = Position(*VALUES, *REST)
    assert type(made) is Position and not checked.refused
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert pickle.loads(pickle.dumps(made)) == built and copy.deepcopy(made) == built
    assert dataclasses.replace(made, quantity=Decimal(4)) == Position(
        *VALUES[:4], Decimal(4), *VALUES[5:], *REST
    )
    assert record_valid("Position", made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.quantity = Decimal(5)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("index", "value"),
    [(0, None), (0, 7), (4, None), (4, Decimal("NaN")), (4, Decimal(0)), (7, None)],
    ids=["id-none", "id-int", "quantity-none", "quantity-nan", "quantity-zero", "time-none"],
)
def test_maker_when_a_value_breaks_its_rule_then_refused(index: int, value: object) -> None:
    """None in a required field is refused by its type test alone (the explicit None
    test was dropped from the generated code where a type test follows)."""
    values = list(VALUES)
    values[index] = value
    checked = Checked()
    made = maker("Position")(checked, *values, *REST)
    assert checked.refused and type(made) is Position


def test_maker_when_other_records_then_the_class_own_too() -> None:
    """The option leg's and the account's makers likewise."""
    checked = Checked()
    leg = ("call", Decimal(100), ENTERED, Decimal(99), Decimal("0.2"))
    rest = (Decimal(0), Decimal("0.04"), Decimal(100), None)
    made_leg = maker("OptionLeg")(checked, *leg, *rest)
    assert type(made_leg) is OptionLeg and made_leg == OptionLeg(*leg, *rest)
    option = maker("Position")(checked, *VALUES[:3], "option", *VALUES[4:], *REST[:3], made_leg)
    assert option == Position(*VALUES[:3], "option", *VALUES[4:], *REST[:3], OptionLeg(*leg, *rest))
    account = maker("Account")(
        checked,
        "acc-1",
        "gen",
        Decimal(1000),
        Decimal(100),
        Decimal(1000),
        Decimal(1000),
        Decimal(0),
        Decimal(0),
        False,
    )
    assert type(account) is Account and not checked.refused
    assert account == Account(
        "acc-1",
        "gen",
        Decimal(1000),
        Decimal(100),
        Decimal(1000),
        Decimal(1000),
        Decimal(0),
        Decimal(0),
        False,
    )
