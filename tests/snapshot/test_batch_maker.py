"""typed.batch_maker: a poll's positions in one loop, their cross-references proven.

The batch makes the same Position objects as ``typed.maker``, in the sources' order,
and sets aside what it cannot vouch for. built.snapshot_from_typed takes its proof
only for the very positions it finished and a document it fits (accounts, market,
as_of): each test below gives it positions or a document the proof does not cover,
and the snapshot must still be refused where the validator refuses it.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.snapshot import Snapshot, built
from bastion.engine.snapshot.built import position_document, snapshot_from_typed
from bastion.engine.snapshot.fields import RECORDS
from bastion.engine.snapshot.model import Position
from bastion.engine.snapshot.typed import Checked, maker
from bastion.engine.snapshot.typed_batch import batch_maker
from bastion.engine.snapshot.validate import SnapshotInvalid
from tests.snapshot.test_paths_property import AS_OF, _base, _batched

NAMES = [field.name for field in RECORDS["Position"].fields]
MAKE = batch_maker()


def _make(
    positions: list[Position],
    rest: dict[str, Any],
    *,
    accounts: list[str] | None = None,
    market: list[str] | None = None,
    as_of: datetime | None = None,
) -> tuple[tuple[Position, ...], Checked]:
    """The positions made as the builder makes them, against the given accounts, market
    keys and as_of (``rest``'s unless given): (the finished positions, the Checked)."""
    checked = Checked()
    batch = MAKE(
        checked,
        positions,
        market=rest["market"] if market is None else market,
        accounts=[a["id"] for a in rest["accounts"]] if accounts is None else accounts,
        as_of=rest["as_of"] if as_of is None else as_of,
    )
    made = {index: _one(checked, positions[index]) for index in batch.aside}
    return batch.finish(made), checked


def _one(checked: Checked, position: Position) -> Position:
    """``position`` made again by typed.maker, one by one (the batch's others)."""
    return maker("Position")(checked, *(getattr(position, name) for name in NAMES))  # type: ignore[no-any-return]


def _verdict(rest: dict[str, Any], positions: Any, checked: Checked) -> str:
    """ "ok" or "refused" from the typed path, asserted to be the validator's."""
    document = {**copy.deepcopy(rest), "positions": [position_document(p) for p in positions]}
    try:
        expected = Snapshot.from_dict(document)
    except SnapshotInvalid:
        with pytest.raises(SnapshotInvalid):
            snapshot_from_typed(copy.deepcopy(rest), positions, checked=checked)
        return "refused"
    assert snapshot_from_typed(copy.deepcopy(rest), positions, checked=checked) == expected
    return "ok"


def test_batch_when_sources_valid_then_records_are_the_maker_own_in_order() -> None:
    """Equal to typed.maker's records, frozen Positions, in the sources' order; only the
    option (it has a leg) is set aside, and nothing is refused."""
    rest, positions = _base()
    checked = Checked()
    batch = MAKE(
        checked, positions, market=rest["market"], accounts=["acc-0", "acc-1"], as_of=AS_OF
    )
    assert batch.aside == (4,) and batch.unique and checked.batch is batch
    option = _one(checked, positions[4])
    finished = batch.finish({4: option})
    assert finished == tuple(positions) and not checked.refused
    assert all(type(p) is Position for p in finished) and batch.others == (option,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        finished[0].quantity = Decimal(5)  # type: ignore[misc]


def test_batch_when_sources_left_out_by_the_caller_then_the_rest_keep_their_order() -> None:
    """A source set aside and not made by the caller (left out) leaves no gap."""
    rest, positions = _base()
    broken = [positions[0], replace(positions[1], quantity=Decimal("NaN")), *positions[2:4]]
    batch = MAKE(Checked(), broken, market=rest["market"], accounts=["acc-0"], as_of=AS_OF)
    assert batch.aside == (1, 3)  # NaN; positions[3] is in acc-1, not among the accounts
    assert batch.finish({3: broken[3]}) == (broken[0], broken[2], broken[3])


def test_batch_when_finished_with_other_records_then_refused() -> None:
    """Only the sources set aside are the caller's, and only as Positions: a batch record
    cannot be replaced."""
    rest, positions = _base()
    checked = Checked()
    batch = MAKE(checked, positions, market=rest["market"], accounts=["acc-0"], as_of=AS_OF)
    assert batch.aside == (1, 3, 4)  # acc-1, acc-1, the option
    for made in ({0: _one(checked, positions[0])}, {4: "not a Position"}):
        with pytest.raises(ValueError, match="set aside"):
            batch.finish(made)  # type: ignore[arg-type]


def test_batch_when_finished_twice_or_as_of_naive_then_an_error() -> None:
    """A batch is finished once (its proof covers that tuple); as_of must be aware."""
    rest, positions = _base()
    batch = MAKE(Checked(), [], market=rest["market"], accounts=[], as_of=AS_OF)
    assert batch.finish({}) == ()
    with pytest.raises(RuntimeError):
        batch.finish({})
    with pytest.raises(ValueError, match="timezone-aware"):
        MAKE(Checked(), positions, market={}, accounts=[], as_of=datetime(2026, 1, 1))


def test_batch_when_source_marked_then_set_aside() -> None:
    """An attribute named in aside_when_set (the venue's `problem`) sets the source aside,
    however valid its values."""

    @dataclasses.dataclass
    class Row:
        position: Position
        problem: str | None

        def __getattr__(self, name: str) -> object:
            return getattr(self.position, name)

    rest, positions = _base()
    rows = [Row(positions[0], None), Row(positions[1], "'qty' is missing")]
    batch = batch_maker(aside_when_set=("problem",))(
        Checked(), rows, market=rest["market"], accounts=["acc-0", "acc-1"], as_of=AS_OF
    )
    assert batch.aside == (1,)


# -- the proof covers these positions and this document only ----------------------------


def test_typed_when_batch_made_the_plain_positions_then_only_the_option_is_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch makes every plain position of the valid base and proves their references:
    only the option (made one by one) goes through the cross-reference check again."""
    rest, positions = _base()
    finished, checked = _batched(rest, positions)
    assert checked.batch is not None and checked.batch.aside == (len(positions) - 1,)
    seen: list[tuple[Position, ...]] = []
    full_check = built._positions_fit

    def spy(checked_positions: Any, *args: Any, **options: Any) -> bool:
        seen.append(tuple(checked_positions))
        return full_check(checked_positions, *args, **options)

    monkeypatch.setattr(built, "_positions_fit", spy)
    snapshot = snapshot_from_typed(copy.deepcopy(rest), finished, checked=checked)
    assert snapshot.positions == finished
    assert seen == [finished, (positions[-1],)]  # the batch's others, nothing else


def test_typed_when_positions_are_not_the_batch_tuple_then_every_position_is_checked() -> None:
    """A batch record swapped for another (a known-to-be-bad account) after finishing:
    the proof is for the tuple it finished, so everything is checked again."""
    rest, positions = _base()
    finished, checked = _make(positions, rest)
    assert _verdict(rest, finished, checked) == "ok"
    stranger = _one(checked, replace(positions[1], account_id="acc-9"))
    swapped = (finished[0], stranger, *finished[2:])
    assert _verdict(rest, swapped, checked) == "refused"
    assert _verdict(rest, list(finished), checked) == "ok"  # a copy: checked in full


def test_typed_when_batch_checked_another_account_set_then_refused_as_the_validator() -> None:
    """Proven against acc-9 too, but the document has no acc-9."""
    rest, positions = _base()
    moved = [*positions[:1], replace(positions[1], account_id="acc-9"), *positions[2:]]
    finished, checked = _make(moved, rest, accounts=["acc-0", "acc-1", "acc-9"])
    assert checked.batch is not None and checked.batch.aside == (4,)
    assert _verdict(rest, finished, checked) == "refused"


def test_typed_when_batch_checked_another_market_then_refused_as_the_validator() -> None:
    """Proven against a market with ZZZ, but the document has no ZZZ market record."""
    rest, positions = _base()
    moved = [*positions[:1], replace(positions[1], symbol="ZZZ"), *positions[2:]]
    finished, checked = _make(moved, rest, market=[*rest["market"], "ZZZ"])
    assert checked.batch is not None and checked.batch.aside == (4,)
    assert _verdict(rest, finished, checked) == "refused"


def test_typed_when_batch_checked_a_later_as_of_then_refused_as_the_validator() -> None:
    """Proven against an as_of a minute later; the position entered after the document's."""
    rest, positions = _base()
    late = AS_OF + timedelta(seconds=30)
    moved = [*positions[:1], replace(positions[1], entered_at=late), *positions[2:]]
    finished, checked = _make(moved, rest, as_of=AS_OF + timedelta(minutes=1))
    assert checked.batch is not None and checked.batch.aside == (4,)
    assert _verdict(rest, finished, checked) == "refused"
    # entered at the document's as_of exactly: accepted
    at = replace(positions[1], entered_at=AS_OF)
    finished, checked = _make([*positions[:1], at, *positions[2:]], rest)
    assert _verdict(rest, finished, checked) == "ok"


def test_typed_when_batch_ids_repeat_then_refused_as_the_validator() -> None:
    """Two batch records with one id: not unique, so not proven."""
    rest, positions = _base()
    twice = [*positions[:1], replace(positions[1], id=positions[0].id), *positions[2:]]
    finished, checked = _make(twice, rest)
    assert checked.batch is not None and not checked.batch.unique
    assert _verdict(rest, finished, checked) == "refused"


def test_first_seen_when_read_then_a_mapping_like_its_dict() -> None:
    """The batch's first-seen times read as the dict of them (last one wins for a
    repeated id); their count and truth do not need that dict made."""
    from bastion.engine.snapshot.typed_batch import FirstSeen  # noqa: PLC0415

    early, late = AS_OF - timedelta(days=1), AS_OF
    seen = FirstSeen(["a", "b"], [early, late], in_step=True)
    assert len(seen) == 2 and seen and seen._by_id is None  # not made for these
    assert seen == {"a": early, "b": late} and {"a": early, "b": late} == seen
    assert seen.get("a") == early and seen.get("z") is None and "b" in seen
    assert list(seen) == ["a", "b"] and seen["b"] == late
    repeated = FirstSeen(["a", "a"], [early, late], in_step=False)
    assert repeated == {"a": late} and len(repeated) == 1
    assert not FirstSeen([], [], in_step=True)
