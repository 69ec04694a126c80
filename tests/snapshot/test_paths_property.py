"""The builder's typed path and cerberus accept and refuse the same inputs (issue 17, 2).

The adapters' builder hands its positions over as the model's own Position objects
(`built.snapshot_from_typed`: checked field by field and against the rest of the
snapshot, no document round trip); a document from outside goes through cerberus
(`Snapshot.from_dict`). For generated inputs — valid, and broken one value at a time
(wrong sign, NaN / infinity, -0, empty text, control characters, too long, wrong type,
a str subclass, an unknown account, a crossed quote, a naive, other-zone or future time,
a duplicate id, a missing or stray option leg, a value that needs a coercion) — the
paths must agree: all accept, with equal Snapshots, or all refuse, naming the same
problems at the same paths. The typed path three ways: positions checked after they
were made, as they were made one by one (`typed.maker`), and as the builder makes them,
in one batch that proves their cross-references (`typed.batch_maker`, the rest one by
one). Deterministic: hypothesis derandomized, plus every field × every bad value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.adapters import builder as builder_module
from bastion.adapters.builder import BuilderConfig, BuilderState, Poll, SnapshotBuilder
from bastion.adapters.market_metrics import Windows
from bastion.adapters.sources.base import Quote
from bastion.adapters.venue import OptionContract, VenueAccount, VenuePosition
from bastion.engine.errors import DataError, SnapshotError
from bastion.engine.indicators.atr import AtrSpec
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot import Regime, Snapshot
from bastion.engine.snapshot.built import position_document, snapshot_from_typed
from bastion.engine.snapshot.fields import RECORDS, FieldKind
from bastion.engine.snapshot.model import OptionLeg, Position
from bastion.engine.snapshot.typed import Checked, maker
from bastion.engine.snapshot.typed_batch import batch_maker
from bastion.engine.snapshot.validate import FieldError, SnapshotInvalid

AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
NAMED_UTC = timezone(timedelta(0), "Z")  # UTC's offset, but not the UTC object


class _Text(str):
    """A str subclass: the validator takes it (and keeps it); the typed checks set it aside."""


SYMBOLS = ("AAA", "BBB", "CCC")
ACCOUNTS = ("acc-0", "acc-1")

# Bad (or merely unusual) values by field kind: each either breaks the field's rule, or
# needs a coercion the validator does (a float, an int, a numeric string, a time in
# another zone or as text), which the typed check leaves to the validator.
BAD: dict[FieldKind, tuple[object, ...]] = {
    FieldKind.TEXT: (
        "",
        " ",
        "x" * 101,
        "a\x00b",
        "tab\there",
        "del\x7f",
        5,
        None,
        b"id",
        _Text("sub"),
    ),
    FieldKind.DECIMAL: (
        Decimal("NaN"),
        Decimal("-0"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal(-1),
        Decimal(0),
        Decimal("1E+400"),
        1.5,
        float("nan"),
        float("inf"),
        3,
        "12.5",
        "abc",
        True,
        None,
    ),
    FieldKind.CHOICE: ("LONG", "", " long", 1, None),
    FieldKind.TIME: (
        datetime(2026, 11, 1, 9, 0),  # naive
        datetime(2026, 11, 1, 9, 0, tzinfo=PLUS_TWO),  # aware, not UTC: coerced
        datetime(2026, 11, 1, 9, 0, tzinfo=NAMED_UTC),  # UTC's offset, another tzinfo
        AS_OF + timedelta(seconds=1),  # after as_of
        "2026-11-01T09:00:00Z",  # text: coerced
        "2026-11-01T09:00:00",  # naive text
        0,
        None,
    ),
    FieldKind.FLAG: (1, 0, "true", None),
    FieldKind.INTEGER: (-1, 1.5, True, "2", None),
}


# -- the two paths ---------------------------------------------------------------------


def _outcome(call: Callable[[], Snapshot]) -> tuple[str, object]:
    """("ok", the Snapshot) or ("refused", [(path, message), ...])."""
    try:
        return "ok", call()
    except SnapshotInvalid as error:
        return "refused", [(problem.path, problem.message) for problem in error.errors]


def _made(positions: list[Position]) -> tuple[list[Position], Checked]:
    """The positions as the builder makes them: checked while made (`typed.maker`)."""
    checked, make = Checked(), maker("Position")
    names = [field.name for field in RECORDS["Position"].fields]
    made = [make(checked, *(getattr(p, name) for name in names)) for p in positions]
    return made, checked


_BATCH = batch_maker()  # sources: the positions themselves (they have every field)


def _batched(
    rest: dict[str, Any], positions: list[Position]
) -> tuple[tuple[Position, ...], Checked]:
    """The positions as the builder makes them (adapters/builder_parts.positions): the
    common ones in one batch, proven against ``rest``'s accounts, market and as_of, the
    rest one by one in their places; (the positions, what checking them found)."""
    checked = Checked()
    batch = _BATCH(
        checked,
        positions,
        market=rest["market"],
        accounts=[account["id"] for account in rest["accounts"]],
        as_of=rest["as_of"],
    )
    names = [field.name for field in RECORDS["Position"].fields]
    make = maker("Position")
    made = {i: make(checked, *(getattr(positions[i], name) for name in names)) for i in batch.aside}
    finished = batch.finish(made)
    assert list(finished) == positions
    return finished, checked


def _both(rest: dict[str, Any], positions: list[Position]) -> tuple[Any, Any, Any, Any]:
    """(the typed path's outcome for positions checked after they were made, for
    positions checked as they were made, and for positions made in a batch; cerberus'
    on the equivalent document)."""
    typed = _outcome(lambda: snapshot_from_typed(copy.deepcopy(rest), positions, source="t"))
    made, checked = _made(positions)
    assert made == positions
    as_made = _outcome(
        lambda: snapshot_from_typed(copy.deepcopy(rest), made, source="t", checked=checked)
    )
    finished, batch_checked = _batched(rest, positions)
    batched = _outcome(
        lambda: snapshot_from_typed(
            copy.deepcopy(rest), finished, source="t", checked=batch_checked
        )
    )
    document = {**copy.deepcopy(rest), "positions": [position_document(p) for p in positions]}
    reference = _outcome(lambda: Snapshot.from_dict(document, source="t"))
    return typed, as_made, batched, reference


def _agree(rest: dict[str, Any], positions: list[Position], label: str = "") -> str:
    typed, as_made, batched, reference = _both(rest, positions)
    for outcome in (typed, as_made, batched):
        assert outcome[0] == reference[0], (label, outcome, reference)
        assert outcome[1] == reference[1], label  # equal Snapshots, or the same problems
    return str(typed[0])


# -- inputs ----------------------------------------------------------------------------


def _market(price: Decimal) -> dict[str, Any]:
    return {
        "price_usd": price,
        "bid_usd": price - Decimal("0.01"),
        "ask_usd": price + Decimal("0.01"),
        "atr_usd": Decimal("1.5"),
        "volume": Decimal(1000),
        "avg_volume": Decimal(900),
        "volatility": Decimal("0.2"),
        "normal_volatility": Decimal("0.18"),
        "liquidity_usd": Decimal(40_000),
        "normal_liquidity_usd": Decimal(50_000),
        "correlation": Decimal("0.7"),
        "normal_correlation": Decimal("0.8"),
        "data_age_s": Decimal(2),
        "quality_score_ratio": Decimal("0.98"),
    }


def _rest(prices: dict[str, Decimal]) -> dict[str, Any]:
    """Everything of a snapshot document but its positions, as the builder assembles it."""
    return {
        "as_of": AS_OF,
        "accounts": [
            {
                "id": account,
                "type": "gen",
                "equity_usd": Decimal(100_000),
                "cash_usd": Decimal(-5),
                "day_start_equity_usd": Decimal(100_000),
                "peak_equity_usd": Decimal(101_000),
                "realized_pnl_usd": Decimal(0),
                "unrealized_pnl_usd": Decimal(0),
                "drift_flag": False,
            }
            for account in ACCOUNTS
        ],
        "market": {symbol: _market(price) for symbol, price in prices.items()},
        "system": {
            "error_rate_pct": Decimal(0),
            "connectivity_ratio": Decimal(1),
            "data_age_s": Decimal(2),
        },
        "order_flow": [
            {
                "account_id": "acc-0",
                "strategy_id": "s-1",
                "orders_last_minute": 2,
                "slippage_bps": Decimal("1.5"),
                "consecutive_losses": 0,
            }
        ],
        "regime": {"name": "calm", "severity": "low", "changed_at": AS_OF - timedelta(days=1)},
        "instruments": {},
    }


def _leg(spot: Decimal, delta: Decimal | None = None) -> OptionLeg:
    return OptionLeg(
        option_type="put",
        strike_usd=spot,
        expires_at=AS_OF + timedelta(days=30),
        underlying_price_usd=spot,
        implied_volatility=Decimal("0.25"),
        multiplier=Decimal(100),
        delta=delta,
    )


def _position(index: int, symbol: str, price: Decimal, *, option: bool = False) -> Position:
    return Position(
        id=f"P{index}",
        account_id=ACCOUNTS[index % 2],
        symbol=f"{symbol}261218P00100000" if option else symbol,
        asset_class="option" if option else "equity",
        quantity=Decimal(index + 1),
        side="short" if index % 3 == 0 else "long",
        entry_price_usd=price + Decimal(index),
        entered_at=AS_OF - timedelta(days=index + 1),
        price_usd=price,
        strategy_id=f"s-{index % 2}",
        manual=index % 4 == 0,
        option=_leg(price) if option else None,
    )


def _base() -> tuple[dict[str, Any], list[Position]]:
    prices = {symbol: Decimal(20 + 10 * n) for n, symbol in enumerate(SYMBOLS)}
    positions = [_position(n, SYMBOLS[n % 3], prices[SYMBOLS[n % 3]]) for n in range(4)]
    positions.append(_position(4, "AAA", Decimal("2.5"), option=True))
    return _rest(prices), positions


def _position_mutations(positions: list[Position]) -> Iterator[tuple[str, list[Position]]]:
    """Every field of a position and of an option leg, set to every bad value of its
    kind; plus the cross-references."""
    plain, option = 1, len(positions) - 1
    for field in RECORDS["Position"].fields:
        if field.kind is FieldKind.RECORD:
            continue
        for value in BAD[field.kind]:
            changed = list(positions)
            changed[plain] = replace(positions[plain], **{field.name: value})
            yield f"positions[{plain}].{field.name}={value!r}", changed
    leg = positions[option].option
    assert leg is not None
    for field in RECORDS["OptionLeg"].fields:
        for value in BAD[field.kind]:
            changed = list(positions)
            changed[option] = replace(positions[option], option=replace(leg, **{field.name: value}))
            yield f"option.{field.name}={value!r}", changed
    references: dict[str, dict[str, Any]] = {
        "unknown account": {"account_id": "acc-9"},
        "no market data": {"symbol": "ZZZ"},
        "option leg on an equity": {"option": _leg(Decimal(20))},
        "option without its leg": {"asset_class": "option"},
        "duplicate id": {"id": positions[0].id},
        "not an OptionLeg": {"option": {"option_type": "put"}},
        "entered exactly at as_of": {"entered_at": AS_OF},
        "known account as a str subclass": {"account_id": _Text(positions[plain].account_id)},
        "symbol with market data as a str subclass": {"symbol": _Text(positions[plain].symbol)},
        "id as a str subclass": {"id": _Text("P-sub")},
    }
    for label, values in references.items():
        changed = list(positions)
        changed[plain] = replace(positions[plain], **values)
        yield label, changed
    # An option is made one by one, beside the batch: its references are checked apart.
    on_option: dict[str, dict[str, Any]] = {
        "option with a plain position's id": {"id": positions[0].id},
        "option in an unknown account": {"account_id": "acc-9"},
        "option entered after as_of": {"entered_at": AS_OF + timedelta(microseconds=1)},
    }
    for label, values in on_option.items():
        changed = list(positions)
        changed[option] = replace(positions[option], **values)
        yield label, changed
    yield "two options, one id", [*positions, positions[option]]
    yield (
        "an option first, then a plain position of its id",
        [
            replace(positions[option], id="P-twice"),
            *positions[:option],
            replace(positions[plain], id="P-twice"),
        ],
    )
    yield (
        "option position without its leg",
        [
            *positions[:option],
            replace(positions[option], option=None),
        ],
    )
    yield "no positions", []


def _rest_mutations(rest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A few breaks outside the positions (the rest is field-checked as a document)."""
    changes: dict[str, Callable[[dict[str, Any]], None]] = {
        "crossed quote": lambda r: r["market"]["AAA"].update(bid_usd=Decimal(99)),
        "NaN price": lambda r: r["market"]["BBB"].update(price_usd=Decimal("NaN")),
        "negative equity": lambda r: r["accounts"][0].update(equity_usd=Decimal(-1)),
        "naive regime time": lambda r: r["regime"].update(changed_at=datetime(2026, 1, 1)),
        "flow of an unknown account": lambda r: r["order_flow"][0].update(account_id="nobody"),
        "error rate above 100": lambda r: r["system"].update(error_rate_pct=Decimal(101)),
        "empty market key": lambda r: r["market"].update({"": _market(Decimal(5))}),
        "duplicate account": lambda r: r["accounts"].append(copy.deepcopy(r["accounts"][0])),
    }
    for label, change in changes.items():
        changed = copy.deepcopy(rest)
        change(changed)
        yield label, changed


# -- exhaustive, one value at a time ---------------------------------------------------


def test_paths_when_valid_input_then_both_accept_with_equal_snapshots() -> None:
    """The valid base (plain and option positions): one Snapshot, whichever the path."""
    rest, positions = _base()
    assert _agree(rest, positions) == "ok"


def test_paths_when_one_position_value_broken_then_both_accept_or_both_refuse_alike() -> None:
    """Every field × every bad value of its kind, and every cross-reference: the typed path
    and cerberus agree on each (and both refuse what breaks a rule)."""
    rest, positions = _base()
    verdicts = {"ok": 0, "refused": 0}
    for label, changed in _position_mutations(positions):
        verdicts[_agree(rest, changed, label)] += 1
    assert verdicts["refused"] > 120
    assert verdicts["ok"] > 15  # coercible values (floats, text times, other zones)


def test_paths_when_rest_of_snapshot_broken_then_both_refuse_alike() -> None:
    """Breaks outside the positions refuse the snapshot on both paths, in the same words."""
    rest, positions = _base()
    for label, changed in _rest_mutations(rest):
        assert _agree(changed, positions, label) == "refused", label


# -- generated: random valid snapshots, one value broken or not -------------------------

_DECIMALS = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal(10**7), places=4, allow_nan=False
)
_BAD_POSITION_FIELDS = [
    (field.name, value)
    for field in RECORDS["Position"].fields
    if field.kind is not FieldKind.RECORD
    for value in BAD[field.kind]
]


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[dict[str, Any], list[Position]]:
    prices = {symbol: draw(_DECIMALS) + Decimal("0.02") for symbol in SYMBOLS}
    positions = []
    for index in range(draw(st.integers(0, 6))):
        symbol = draw(st.sampled_from(SYMBOLS))
        option = draw(st.booleans())
        position = _position(index, symbol, prices[symbol], option=option)
        position = replace(
            position,
            quantity=draw(_DECIMALS),
            entry_price_usd=draw(_DECIMALS),
            entered_at=AS_OF - timedelta(seconds=draw(st.integers(0, 10**8))),
            strategy_id=draw(st.text(min_size=1, max_size=8)),
            account_id=draw(st.sampled_from([*ACCOUNTS, "acc-9"])),
        )
        if option:
            delta = draw(st.none() | st.decimals(min_value=-2, max_value=2, places=3))
            position = replace(position, option=_leg(prices[symbol], delta))
        positions.append(position)
    if positions and draw(st.booleans()):
        name, value = draw(st.sampled_from(_BAD_POSITION_FIELDS))
        at = draw(st.integers(0, len(positions) - 1))
        positions[at] = replace(positions[at], **{name: value})
    return _rest(prices), positions


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_inputs())
def test_paths_when_generated_input_then_both_paths_agree(
    case: tuple[dict[str, Any], list[Position]],
) -> None:
    """Random snapshots (any text for strategy ids, deltas outside ±1, unknown accounts,
    one value broken or not): both paths accept with equal Snapshots or refuse alike."""
    rest, positions = case
    _agree(rest, positions)


# -- the builder itself: a venue's values reach the check, nothing else is dropped ------

TINY = BuilderConfig(
    atr=AtrSpec(period=2),
    atr_history_bars=3,
    windows=Windows(recent_bars=3, correlation_bars=3, baseline_bars=4, min_correlation_points=3),
    benchmark=None,
)


def _poll(positions: list[VenuePosition]) -> Poll:
    start = AS_OF - timedelta(minutes=8)
    bars = {
        symbol: [
            Bar(start + timedelta(minutes=n), price, price + 1, price - 1, price, Decimal(10))
            for n in range(8)
        ]
        for symbol, price in (("AAA", Decimal(100)), ("BBB", Decimal(50)))
    }
    quotes = {
        symbol: Quote(symbol, series[-1].close - 1, series[-1].close + 1, AS_OF)
        for symbol, series in bars.items()
    }
    accounts = tuple(VenueAccount(a, "gen", Decimal(10_000), Decimal(500)) for a in ACCOUNTS)
    return Poll(accounts, tuple(positions), bars, quotes)


_VENUE_BAD = {
    "strategy_id": BAD[FieldKind.TEXT],
    "id": BAD[FieldKind.TEXT][:6],
    "side": BAD[FieldKind.CHOICE],
    "quantity": (Decimal("NaN"), Decimal("Infinity"), 1.5),
    "price_usd": (Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")),
    "entry_price_usd": (Decimal("NaN"), Decimal("Infinity"), "12.5"),
    "entered_at": BAD[FieldKind.TIME][:4],
    "account_id": ("acc-9", ""),
    "manual": (1, None),
}


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in _VENUE_BAD.items() for value in values],
    ids=lambda item: repr(item)[:24],
)
def test_build_when_venue_value_bad_then_typed_path_and_cerberus_agree(
    name: str, value: object
) -> None:
    """A venue position with one bad value: the builder's snapshot (or its SnapshotError)
    is the validator's on the builder's document; a position it leaves out is listed."""
    good = VenuePosition(
        "V1", "acc-0", "AAA", "equity", Decimal(3), "long", Decimal(90), Decimal(100), AS_OF
    )
    option = VenuePosition(
        "V2",
        "acc-1",
        "AAA261218P00100000",
        "option",
        Decimal(1),
        "long",
        Decimal(5),
        Decimal(6),
        AS_OF - timedelta(days=1),
        option=OptionContract(
            "put", Decimal(100), AS_OF + timedelta(days=30), "AAA", implied_volatility=Decimal(1)
        ),
    )
    bad = replace(good, **{name: value})  # type: ignore[arg-type]
    seen: list[tuple[dict[str, Any], list[Position], object]] = []

    def keep(document: Any, positions: Any, *, source: str = "", checked: Any = None) -> Snapshot:
        copied = copy.deepcopy(document)
        outcome = _outcome(
            lambda: snapshot_from_typed(document, positions, source=source, checked=checked)
        )
        seen.append((copied, list(positions), outcome))
        if outcome[0] == "refused":
            raise SnapshotInvalid([FieldError(path, message) for path, message in outcome[1]])
        return outcome[1]  # type: ignore[return-value]

    original = builder_module.snapshot_from_typed
    builder_module.snapshot_from_typed = keep
    try:
        result = SnapshotBuilder(TINY).build(
            _poll([bad, option]), now=AS_OF, state=BuilderState(), regime=_REGIME
        )
    except (SnapshotError, DataError):
        result = None
    finally:
        builder_module.snapshot_from_typed = original
    if result is not None:  # kept (maybe coerced) or left out and listed, never dropped
        kept = {p.id for p in result.snapshot.positions}
        listed = {item.id for item in result.unevaluable}
        assert kept | listed >= {"V2", str(bad.id)} - {""}, (kept, listed)
    if seen:  # what the builder did agrees with cerberus on its document
        document, positions, outcome = seen[0]
        full = {**document, "positions": [position_document(p) for p in positions]}
        reference = _outcome(lambda: Snapshot.from_dict(full, source="t"))
        assert outcome[0] == reference[0], (name, value, outcome, reference)
        assert outcome[1] == reference[1]  # equal Snapshots, or the same problems
        _agree(document, positions, f"{name}={value!r}")


_REGIME = Regime("calm", "low", AS_OF - timedelta(days=1))


def test_paths_when_input_valid_then_cerberus_does_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The typed path is the builder's hot path: a valid tick never reaches cerberus."""
    rest, positions = _base()
    expected = Snapshot.from_dict(
        {**copy.deepcopy(rest), "positions": [position_document(p) for p in positions]}
    )

    def no_cerberus(data: object, *, source: str = "") -> Snapshot:
        raise AssertionError("cerberus ran on a valid tick")

    monkeypatch.setattr(Snapshot, "from_dict", no_cerberus)
    assert snapshot_from_typed(rest, positions) == expected
