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
from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from bastion.adapters import builder_parts
from bastion.adapters.builder import BuildResult
from bastion.adapters.builder_state import BuilderState
from bastion.adapters.venue import VenuePosition
from bastion.engine.errors import DataError, SnapshotError
from bastion.engine.snapshot.typed_batch import batch_maker
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
    "option, no entry time": lambda i: _option(id=i),  # made one by one, first seen too
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


def _two_polls(
    positions: list[VenuePosition], state: BuilderState | None = None, *, one_by_one: bool = False
) -> BuildResult:
    """The second of two polls five minutes apart, fed the first one's state."""
    with pytest.MonkeyPatch.context() as patch:
        if one_by_one:
            patch.setattr(builder_parts, "_MAKE_POSITIONS", ONE_BY_ONE)
        first = build({"SPY": flat(), "QQQ": flat()}, positions=positions, state=state)
        later = T0 + timedelta(minutes=5)
        return build(
            {"SPY": flat(), "QQQ": flat()}, positions=positions, state=first.state, now=later
        )


def test_build_when_no_entry_time_then_the_batch_makes_them_with_the_first_seen_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alpaca and Binance give no entry time: the batch makes those positions (none one
    by one) with the time each was first seen, kept poll after poll, as the one-by-one
    path does; one fallback says so for them all."""
    positions = [KINDS["no entry time"](f"p-{n}") for n in range(6)]
    reference = _two_polls(positions, one_by_one=True)
    made_one_by_one: list[object] = []
    one = builder_parts._MAKE_POSITION
    monkeypatch.setattr(
        builder_parts, "_MAKE_POSITION", lambda *values: made_one_by_one.append(1) or one(*values)
    )
    result = _two_polls(positions)
    assert result == reference
    assert made_one_by_one == []
    assert {p.entered_at for p in result.snapshot.positions} == {T0}  # first seen, not now
    assert result.state.first_seen == {f"p-{n}": T0 for n in range(6)}
    assert [f.where for f in result.fallbacks].count("positions[*].entered_at") == 1


def test_build_when_a_first_seen_time_is_not_in_utc_then_made_one_by_one_alike() -> None:
    """A state file's time in another zone: not the batch's to vouch for (it proves UTC
    times); the position is made one by one, with the same result."""
    paris = timezone(timedelta(hours=1))
    state = BuilderState(first_seen={"p-0": (T0 - timedelta(hours=1)).astimezone(paris)})
    positions = [KINDS["no entry time"](f"p-{n}") for n in range(3)]
    assert _two_polls(positions, state) == _two_polls(positions, state, one_by_one=True)


@pytest.mark.parametrize("seed", range(12))
def test_builds_when_positions_come_and_go_then_first_seen_times_as_one_by_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls a minute apart, state fed forward, of positions without entry times that
    come, go, swap places, now and then repeat an id or name a symbol the venue does not
    list (set aside, left out, not remembered): every build equals the
    one-by-one path's (each position keeps the time it was first seen), and the batch
    read most first-seen times in step with the last poll's, not by id."""
    from bastion.engine.snapshot.typed_batch import FirstSeen  # noqa: PLC0415

    asked = []
    real_get = FirstSeen.get
    monkeypatch.setattr(FirstSeen, "get", lambda self, *a: asked.append(1) or real_get(self, *a))
    rng = random.Random(seed)
    ids = [f"p-{n}" for n in range(30)]
    states: list[BuilderState | None] = [None, None]
    made = stepped_polls = 0
    for poll in range(10):
        now = T0 + timedelta(minutes=poll)
        held = list(ids)
        if rng.random() < 0.2:
            held.append(rng.choice(held))  # a repeated id: refused, the state kept
        unknown = rng.choice(held) if held and rng.random() < 0.4 else None
        results = []
        for index, one_by_one in enumerate((False, True)):
            before = len(asked)
            with pytest.MonkeyPatch.context() as patch:
                if one_by_one:
                    patch.setattr(builder_parts, "_MAKE_POSITIONS", ONE_BY_ONE)
                try:
                    built = build(
                        {"SPY": flat(), "QQQ": flat()},
                        positions=[
                            position(id=i, symbol="GHST") if i == unknown else position(id=i)
                            for i in held  # one the venue does not list now and then: left out
                        ],
                        state=states[index],
                        now=now,
                    )
                except SnapshotError as error:
                    results.append(str(error))
                    continue
            states[index] = built.state
            results.append(built)
            if not one_by_one and poll:
                made += len(built.snapshot.positions)
                stepped_polls += len(asked) - before < len(held) // 2
        assert results[0] == results[1], (seed, poll)
        for change in range(rng.randint(0, 3)):  # the venue's list changes a little
            what = rng.random()
            if what < 0.3 and ids:
                ids.pop(rng.randrange(len(ids)))  # closed
            elif what < 0.6:
                ids.insert(rng.randrange(len(ids) + 1), f"p-{seed}-{poll}-{change}")  # opened
            elif len(ids) > 1:
                at = rng.randrange(len(ids) - 1)
                ids[at], ids[at + 1] = ids[at + 1], ids[at]  # listed in another order
    assert made > 0 and stepped_polls >= 4  # read in step, mostly


def test_state_saved_when_the_book_is_steady_then_the_same_text_made_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The --state form of the first-seen times is the same whichever way the builder
    made them; a steady book's (the very same lists, poll after poll) is written out
    once, then copied — and a book that changed is written out afresh."""
    from bastion.adapters import builder_state  # noqa: PLC0415

    positions = [KINDS["no entry time"](f"p-{n}") for n in range(12)]
    later = _two_polls(positions)  # the batch's FirstSeen, read in step
    reference = _two_polls(positions, one_by_one=True)  # a plain dict
    assert later.state.to_dict() == reference.state.to_dict()
    assert later.state.to_dict()["first_seen"] == {f"p-{n}": T0.isoformat() for n in range(12)}
    made = []
    real = builder_state._time_text
    monkeypatch.setattr(builder_state, "_time_text", lambda at: made.append(1) or real(at))
    again = build(
        {"SPY": flat(), "QQQ": flat()},
        positions=positions,
        state=later.state,
        now=T0 + timedelta(minutes=10),
    )
    assert again.state.first_seen.ids is later.state.first_seen.ids  # type: ignore[attr-defined]
    saved = again.state.to_dict()
    assert saved["first_seen"] == later.state.to_dict()["first_seen"]
    assert len(made) <= 4  # the state's other times, none of the twelve positions'
    fewer = build(
        {"SPY": flat(), "QQQ": flat()},
        positions=positions[1:],
        state=again.state,
        now=T0 + timedelta(minutes=11),
    )
    assert list(fewer.state.to_dict()["first_seen"]) == sorted(f"p-{n}" for n in range(1, 12))
