"""The builder makes a poll's common positions in one batch (typed.batch_maker), the rest
one by one: the result is the one-by-one path's, to the order of positions and fallbacks.

The reference is the same builder with every position set aside (the batch vouches for
none): each is then made as before the batch (`_priced`, `typed.maker`) and checked in
full by snapshot_from_typed. Mixed polls — plain, options, unreadable rows, no entry
time, dust, unknown symbols, no usable cost, unknown accounts, duplicate ids, values
the validator refuses — seeded, so every run draws the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bastion.adapters import builder_parts
from bastion.adapters.builder import BuildResult
from bastion.adapters.venue import VenuePosition
from bastion.engine.errors import DataError, SnapshotError
from bastion.engine.snapshot.typed import batch_maker
from tests.adapters.test_builder import PUT, T0, build, flat, position

ONE_BY_ONE = batch_maker(aside_when_set=("id",))  # every source set aside


def _option(**changes: object) -> VenuePosition:
    return position(
        symbol="SPY240403P00095000",
        asset_class="option",
        entry_price_usd=Decimal(2),
        price_usd=Decimal(2),
        option=PUT,
        **changes,
    )


KINDS: dict[str, Callable[[str], VenuePosition]] = {
    "plain": lambda i: position(id=i, entered_at=T0 - timedelta(days=1)),
    "plain QQQ": lambda i: position(id=i, symbol="QQQ", entered_at=T0 - timedelta(hours=2)),
    "no entry time": lambda i: position(id=i),
    "option": lambda i: _option(id=i, entered_at=T0 - timedelta(days=2)),
    "unreadable": lambda i: position(id=i, entered_at=T0, problem="'qty' is missing"),
    "dust": lambda i: position(id=i, entered_at=T0, price_usd=Decimal(0)),
    "unknown symbol": lambda i: position(id=i, entered_at=T0, symbol="GHST"),
    "no cost": lambda i: position(id=i, entered_at=T0, entry_price_usd=Decimal(0)),
}
BREAKS: dict[str, Callable[[str], VenuePosition]] = {
    "unknown account": lambda i: position(id=i, entered_at=T0, account_id="acc-9"),
    "entered after now": lambda i: position(id=i, entered_at=T0 + timedelta(seconds=1)),
    "NaN quantity": lambda i: position(id=i, entered_at=T0, quantity=Decimal("NaN")),
    "float price": lambda i: position(id=i, entered_at=T0, price_usd=99.5),
    "option without leg": lambda i: position(id=i, entered_at=T0, asset_class="option"),
    "duplicate id": lambda i: position(id="p-0", entered_at=T0),
    "duplicate id, an option": lambda i: _option(id="p-0", entered_at=T0),
}


def _outcome(positions: list[VenuePosition], *, one_by_one: bool = False) -> BuildResult | str:
    """The build (or its error, as text); ``one_by_one``: every position set aside."""
    with pytest.MonkeyPatch.context() as patch:
        if one_by_one:
            patch.setattr(builder_parts, "_MAKE_POSITIONS", ONE_BY_ONE)
        try:
            return build({"SPY": flat(), "QQQ": flat()}, positions=positions)
        except (SnapshotError, DataError) as error:
            return f"{type(error).__name__}: {error}"


def _poll(rng: random.Random, broken: bool) -> list[VenuePosition]:
    kinds = rng.choices(list(KINDS), k=rng.randint(0, 12))
    positions = [KINDS[kind](f"p-{n}") for n, kind in enumerate(kinds)]
    if broken:
        kind = rng.choice(list(BREAKS))
        positions.insert(rng.randint(0, len(positions)), BREAKS[kind]("p-x"))
    return positions


@pytest.mark.parametrize("seed", range(40))
def test_build_when_poll_mixed_then_batch_gives_the_one_by_one_result(seed: int) -> None:
    """Snapshot, state, fallbacks and left-out positions equal the one-by-one path's, in
    the same order; a poll one of them refuses, the other refuses in the same words. Every
    kept position's symbol has its instrument (the options' too: the batch's positions
    are all in the market, the builder looks for symbols beyond it among the others)."""
    rng = random.Random(seed)
    positions = _poll(rng, broken=seed % 2 == 1)
    batched = _outcome(positions)
    assert batched == _outcome(positions, one_by_one=True), [p.id for p in positions]
    if isinstance(batched, BuildResult):  # what each kept position is: its instrument
        snapshot = batched.snapshot
        assert {p.symbol for p in snapshot.positions} <= snapshot.instruments.keys()
    ids = [p.id for p in positions]
    if isinstance(batched, BuildResult) and len(set(ids)) == len(ids):
        # the venue's order, less what was left out
        left_out = {item.id for item in batched.unevaluable}
        kept = [i for i in ids if i not in left_out]
        assert [p.id for p in batched.snapshot.positions] == kept


def test_build_when_row_unreadable_but_its_values_valid_then_still_left_out() -> None:
    """The venue's `problem` sets a row aside however valid the rest of it looks."""
    good = position(id="p-ok", entered_at=T0)
    marked = replace(good, id="p-bad", problem="'qty' is missing")
    result = _outcome([marked, good])
    assert isinstance(result, BuildResult)
    assert [p.id for p in result.snapshot.positions] == ["p-ok"]
    assert [item.id for item in result.unevaluable] == ["p-bad"]


def test_build_when_every_position_common_then_the_batch_makes_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hot path: no position is set aside, so none is made or checked one by one."""
    made_one_by_one: list[tuple[object, ...]] = []
    one = builder_parts._MAKE_POSITION

    def spy(*values: object) -> object:
        made_one_by_one.append(values)
        return one(*values)

    monkeypatch.setattr(builder_parts, "_MAKE_POSITION", spy)
    positions = [KINDS["plain"](f"p-{n}") for n in range(5)]
    result = _outcome([*positions, KINDS["plain QQQ"]("p-q")])
    assert isinstance(result, BuildResult) and len(result.snapshot.positions) == 6
    assert made_one_by_one == []
