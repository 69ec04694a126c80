"""authority/slotted.py: the hot path's builders give the instances the dataclasses do."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bastion.engine.authority.answer import ExecutionDecision, Fixed
from bastion.engine.authority.pending_orders import AccountPending, PendingOrder, SymbolPending
from bastion.engine.authority.request import OrderRequest
from bastion.engine.authority.slotted import constructor, copier
from bastion.engine.snapshot import Account
from bastion.engine.state import AuthorityState, State

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def test_constructor_when_every_field_given_then_equal_to_the_dataclass() -> None:
    """Same fields, same equality, hash, repr; still frozen."""
    build = constructor(AuthorityState)
    values = ({"acc": (NOW,)}, {}, {"acc/X": NOW}, {}, AuthorityState().pending)
    made = build(*values)
    expected = AuthorityState(*values)
    assert made == expected
    assert repr(made) == repr(expected)
    assert type(made) is AuthorityState
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.submits = {}  # type: ignore[misc]


def test_constructor_when_keyword_only_fields_then_given_positionally_in_field_order() -> None:
    """ExecutionDecision's keyword-only explanation and held_size come last, in order."""
    request = OrderRequest(symbol="S000", action="open", account_id="acc", target_size=Decimal(1))
    explanation = Fixed(("ok",), ((), None))  # type: ignore[arg-type]
    made = constructor(ExecutionDecision)(
        request,
        True,
        "approved",
        Decimal(1),
        Decimal(1),
        (),
        False,
        None,
        State(),
        0,
        explanation,
        Decimal(0),
    )
    expected = ExecutionDecision(
        request,
        True,
        "approved",
        Decimal(1),
        Decimal(1),
        (),
        False,
        None,
        State(),
        explanation=explanation,
        held_size=Decimal(0),
    )
    assert made == expected
    assert made.explanation is explanation and made.held_size == Decimal(0)


def test_copier_when_one_field_replaced_then_equal_to_dataclasses_replace() -> None:
    """copy(state, value) is dataclasses.replace(state, authority=value)."""
    state = State(trading_states={"acc": "REDUCING"}, halted_symbols=frozenset({"X"}))
    memory = AuthorityState(submits={"acc": (NOW,)})
    made = copier(State, "authority")(state, memory)
    assert made == dataclasses.replace(state, authority=memory)
    assert made.trading_states is state.trading_states and made.authority is memory


def test_constructor_when_class_not_a_slotted_dataclass_then_refused() -> None:
    """Only slotted dataclasses without __post_init__ are built this way."""

    @dataclasses.dataclass(frozen=True)
    class Plain:
        value: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            assert self.value >= 0

    with pytest.raises(TypeError):
        constructor(Plain)
    with pytest.raises(TypeError):
        constructor(Checked)
    with pytest.raises(TypeError):
        copier(State, "no_such_field")
    with pytest.raises(TypeError):
        copier(State)


def test_copier_when_several_fields_changed_then_equal_to_dataclasses_replace() -> None:
    """OrderRequest's `resized` copier: the three changed fields, the rest kept."""
    request = OrderRequest(
        symbol="S000", action="open", account_id="acc", target_size=Decimal(5), price=Decimal(2)
    )
    copy = copier(OrderRequest, "action", "current_size", "target_size")
    made = copy(request, "close", Decimal(5), None)
    assert made == dataclasses.replace(
        request, action="close", current_size=Decimal(5), target_size=None
    )


def test_constructor_when_pending_and_account_records_then_equal_to_the_dataclass() -> None:
    """The pending-order records and the account view built on the hot path equal the
    dataclasses' own (a field named value_usd is fine for a constructor)."""
    order_values = (
        "acc",
        "S1",
        "long",
        "s",
        Decimal(3),
        Decimal("2.5"),
        Decimal("0.1"),
        NOW,
        False,
        "o1",
    )
    symbol_values = (Decimal(3), Decimal(0), Decimal("7.5"), Decimal("0.3"), NOW)
    order = PendingOrder(*order_values)
    account_values = (
        (order,),
        {"S1": SymbolPending(*symbol_values)},
        {"s": Decimal("7.5")},
        {("s", "S1"): Decimal("7.5")},
        Decimal("7.5"),
        Decimal("0.3"),
        0,
    )
    cases = (
        (PendingOrder, order_values),
        (SymbolPending, symbol_values),
        (AccountPending, account_values),
        (
            Account,
            (
                "acc",
                "gen",
                Decimal(1),
                Decimal(1),
                Decimal(1),
                Decimal(1),
                Decimal(0),
                Decimal(0),
                False,
            ),
        ),
    )
    for cls, values in cases:
        made = constructor(cls)(*values)
        assert type(made) is cls
        assert made == cls(*values)
        assert repr(made) == repr(cls(*values))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, dataclasses.fields(cls)[0].name, None)


def test_copier_when_a_field_is_named_like_its_arguments_then_refused() -> None:
    """A copier's arguments are value0, value1, ...: a class with a field named value...
    is refused for it (a constructor takes it)."""
    with pytest.raises(TypeError):
        copier(SymbolPending, "first_at")
