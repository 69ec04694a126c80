"""Trailing stop and take-profit: the high-water mark in State, and LEAN's scenarios.

The price sequences are those of LEAN's TrailingStopRiskManagementModelTests
(Tests/Algorithm/Framework/Risk/TrailingStopRiskManagementModelTests.cs, test data of
ReturnsExpectedPortfolioTarget): each step is one evaluation of a snapshot at that price,
the state of the previous one passed on, and the step closes the position exactly where
LEAN's model liquidates it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.evaluation import high_water
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.state import HighWater, State, StateError
from tests.authority.builders import NOW, market, position, snapshot
from tests.conftest import POLICIES

POLICY = """\
apiVersion: bastion/v1
kind: BreakerPolicy
metadata: {name: trailing}
precedence: 5
spec:
  defaults: {cooldown_s: 60, reset: auto}
  breakers:
    - id: trailing_stop
      metric: position.drawdown_from_high_pct
      comparison: ">"
      threshold: THRESHOLD
      action: close_position
    - id: take_profit
      metric: position.unrealized_profit_pct
      comparison: ">"
      threshold: 50
      action: close_position
"""


def _compile(tmp: Path, policy: str | None) -> CompiledPolicySet:
    folder = tmp / "policies"
    shutil.copytree(POLICIES, folder)
    if policy is not None:
        (folder / "trailing.yaml").write_text(policy)
    return compile_policy_set(load_policy_set([folder]))


@pytest.fixture(scope="module")
def stops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CompiledPolicySet]]:
    """The shipped policies plus a 50 % take-profit and a trailing stop, by its width (%)."""
    compiled = {
        width: _compile(
            tmp_path_factory.mktemp(f"stop-{width}"), POLICY.replace("THRESHOLD", width)
        )
        for width in ("5", "10")
    }
    yield compiled
    for each in compiled.values():
        each.close()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledPolicySet]:
    """The shipped policies: no breaker trails a high."""
    compiled = _compile(tmp_path_factory.mktemp("shipped"), None)
    yield compiled
    compiled.close()


def _held(
    price: Decimal | str,
    *,
    entry: Decimal | str = "100",
    side: str = "long",
    entered_days_ago: int = 30,
) -> Snapshot:
    """One position P-1 in XYZ, entered at `entry`, now at `price` (wide ATR: no escalation)."""
    held = position(side=side, id="P-1", entered_at=NOW - timedelta(days=entered_days_ago))
    held.update(entry_price_usd=str(entry), price_usd=str(price))
    return snapshot(positions=[held], markets={"XYZ": market(price=price, atr=1000)})


def _closes(
    compiled: CompiledPolicySet,
    entry: str,
    side: str,
    prices: Sequence[str],
    state: State | None = None,
) -> tuple[list[bool], State]:
    """Evaluate P-1 at each price in turn; whether the trailing stop closed it each time."""
    state = state or State()
    closed = []
    for minute, price in enumerate(prices):
        now = NOW + timedelta(minutes=minute)
        decisions, state = evaluate(compiled, _held(price, entry=entry, side=side), state, now)
        closed.append(any(d.rule == "trailing_stop" and d.outcome == "trip" for d in decisions))
    return closed, state


# (LEAN test name, maximum drawdown %, initial price (the entry), side, prices, liquidates)
LEAN_SCENARIOS = [
    (
        "LiquidatesOnCorrectPriceChangeInLongPosition",
        "5",
        "1",
        "long",
        ["100", "99.95", "99.94", "95", "94.99"],
        [False, False, False, False, True],
    ),
    (
        "LiquidatesOnCorrectPriceChangeInShortPosition",
        "10",
        "100",
        "short",
        ["50", "54.99", "55", "55.01"],
        [False, False, False, True],
    ),
    (
        "DoesntLiquidateIfPricesDontChangeInLongPosition",
        "5",
        "1",
        "long",
        ["1", "1", "1", "1"],
        [False, False, False, False],
    ),
    (
        "DoesntLiquidateIfPricesDontChangeInShortPosition",
        "5",
        "1",
        "short",
        ["1", "1", "1", "1"],
        [False, False, False, False],
    ),
    ("LiquidatesOnFirstCallForLongPosition", "10", "100", "long", ["89.99"], [True]),
]


@pytest.mark.parametrize(
    ("stop_pct", "entry", "side", "prices", "expected"),
    [pytest.param(*scenario[1:], id=scenario[0]) for scenario in LEAN_SCENARIOS],
)
def test_trailing_stop_when_lean_price_sequence_then_closes_where_lean_liquidates(
    stops: dict[str, CompiledPolicySet],
    stop_pct: str,
    entry: str,
    side: str,
    prices: list[str],
    expected: list[bool],
) -> None:
    """Step by step, the position is closed exactly where LEAN's model liquidates it."""
    closed, _ = _closes(stops[stop_pct], entry, side, prices)
    assert closed == expected


def test_trailing_stop_when_long_flips_to_short_then_mark_restarts_at_the_short_entry(
    stops: dict[str, CompiledPolicySet],
) -> None:
    """LEAN LiquidatesAfterSwitchingToShortPosition: long from 1 at 100, flipped to a short
    at 100 (same id, new side), lows 90, 70, 50, then 52.6 (5.2 % up from the low) closes."""
    compiled = stops["5"]
    _, state = _closes(compiled, "1", "long", ["100"])
    assert state.high_water["P-1"].price_usd == Decimal(100)
    closed, state = _closes(compiled, "100", "short", ["90", "70", "50", "52.6"], state)
    assert closed == [False, False, False, True]
    assert state.high_water["P-1"] == HighWater(Decimal(50), "short", NOW - timedelta(days=30))


def test_track_when_price_makes_new_high_then_mark_follows_and_never_falls() -> None:
    """A long's mark is the highest price since entry; a lower price leaves it."""
    marks: dict[str, HighWater] = {}
    for price in ("100", "104", "110", "103"):
        (held,) = _held(price).positions
        marks = high_water.track([held], marks)
    assert marks["P-1"].price_usd == Decimal(110)
    (held,) = _held("103").positions
    assert high_water.drawdown_from_mark_pct(held, marks["P-1"]) == Decimal(7) / 110 * 100


def test_track_when_position_re_entered_then_mark_restarts_at_the_new_entry() -> None:
    """Same id, later entered_at: a new position, whose mark starts at its entry."""
    (old,) = _held("120", entered_days_ago=30).positions
    marks = high_water.track([old], {})
    (new,) = _held("101", entry="100", entered_days_ago=1).positions
    assert high_water.track([new], marks)["P-1"].price_usd == Decimal(101)


def test_track_when_position_left_out_then_its_mark_is_kept_and_closed_ones_dropped() -> None:
    """A left-out position keeps its mark (it is still held); a closed one loses it."""
    previous = {
        "P-1": HighWater(Decimal(120), "long", NOW),
        "GONE": HighWater(Decimal(50), "long", NOW),
    }
    assert high_water.track([], previous, keep=["P-1"]) == {"P-1": previous["P-1"]}


def test_evaluate_when_no_breaker_trails_a_high_then_no_marks_are_kept(
    shipped: CompiledPolicySet,
) -> None:
    """Without a trailing-stop breaker the state holds no marks (nothing to pay for)."""
    _, state = evaluate(shipped, _held("120"), State(), NOW)
    assert state.high_water == {} and "high_water" not in state.to_dict()


def test_evaluate_when_position_left_out_then_mark_survives_the_cycle(
    stops: dict[str, CompiledPolicySet],
) -> None:
    """A position the builder could not read this cycle keeps its high for the next."""
    compiled = stops["5"]
    _, state = evaluate(compiled, _held("130"), State(), NOW)
    record = Unevaluable(id="P-1", account_id="acct-1", symbol="XYZ", reason="no quote")
    empty = snapshot(positions=[])
    _, state = evaluate(compiled, empty, state, NOW + timedelta(minutes=1), left_out=[record])
    assert state.high_water["P-1"].price_usd == Decimal(130)


def test_state_when_marks_round_trip_through_json_then_equal() -> None:
    """high_water survives to_dict -> JSON -> from_dict exactly."""
    state = State(high_water={"P-1": HighWater(Decimal("101.25"), "short", NOW)})
    assert State.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_state_when_file_has_no_high_water_then_loads_empty() -> None:
    """A state file written before trailing stops existed still loads."""
    old: dict[str, Any] = {"version": 1, "breakers": {}, "trading_states": {}}
    assert State.from_dict(old).high_water == {}


@pytest.mark.parametrize(
    "mark",
    [
        {"price_usd": "NaN", "side": "long", "entered_at": "2026-11-20T15:30:00+00:00"},
        {"price_usd": "0", "side": "long", "entered_at": "2026-11-20T15:30:00+00:00"},
        {"price_usd": "10", "side": "sideways", "entered_at": "2026-11-20T15:30:00+00:00"},
        {"price_usd": "10", "side": "long", "entered_at": "2026-11-20T15:30:00"},
    ],
    ids=["nan", "zero", "side", "naive-time"],
)
def test_state_when_mark_is_malformed_then_refused(mark: dict[str, str]) -> None:
    """A corrupt mark is refused, never read as a loosened stop."""
    with pytest.raises(StateError, match="malformed"):
        State.from_dict({"version": 1, "high_water": {"P-1": mark}})


def test_breaker_when_tripped_for_an_earlier_position_under_the_same_id_then_new_one_armed(
    stops: dict[str, CompiledPolicySet],
) -> None:
    """Venues reuse one position id per symbol: a trip of the closed position does not
    hold for the position opened after it, which trips on its own give-back."""
    compiled, threshold = stops["5"], 5
    decisions, state = evaluate(compiled, _held("80"), State(), NOW - timedelta(seconds=30))
    assert [d.outcome for d in decisions if d.rule == "trailing_stop"] == ["trip"]
    later = NOW  # within the 60 s cooldown: only a new position explains an armed breaker
    reopened = _held("100", entry="100", entered_days_ago=0)  # entered at NOW, after the trip
    decisions, state = evaluate(compiled, reopened, state, later)
    assert [d for d in decisions if d.rule == "trailing_stop"] == []
    key = "trailing:trailing_stop@position:P-1"
    assert state.breakers[key].status == "armed"
    given_back = _held(str(100 - threshold - 1), entry="100", entered_days_ago=0)
    decisions, state = evaluate(compiled, given_back, state, later + timedelta(minutes=1))
    assert [d.outcome for d in decisions if d.rule == "trailing_stop"] == ["trip"]


def test_take_profit_when_profit_above_threshold_then_position_closed_account_active(
    stops: dict[str, CompiledPolicySet],
) -> None:
    """LEAN MaximumUnrealizedProfitPercentPerSecurity: above the limit the position is
    closed (close_position); exactly at it, nothing. The account is not restricted."""
    compiled = stops["5"]
    at, _ = evaluate(compiled, _held("150"), State(), NOW)
    above, state = evaluate(compiled, _held("150.01"), State(), NOW)
    assert [d.rule for d in at if d.kind == "breaker"] == []
    assert [(d.rule, d.actions) for d in above if d.kind == "breaker"] == [
        ("take_profit", ("close_position",))
    ]
    assert state.trading_state("acct-1") == "ACTIVE"


def test_evaluate_when_closed_position_had_tripped_then_its_breaker_state_is_dropped(
    stops: dict[str, CompiledPolicySet],
) -> None:
    """A position closed by its trailing stop leaves no breaker state behind (one per
    exit would grow the state without end); a left-out position keeps its own."""
    compiled = stops["5"]
    _, state = evaluate(compiled, _held("80"), State(), NOW)
    key = "trailing:trailing_stop@position:P-1"
    assert state.breakers[key].status == "tripped"
    record = Unevaluable(id="P-1", account_id="acct-1", symbol="XYZ", reason="no quote")
    flat = snapshot(positions=[])
    _, kept = evaluate(compiled, flat, state, NOW + timedelta(minutes=1), left_out=[record])
    assert kept.breakers[key].status == "tripped"
    _, closed = evaluate(compiled, flat, state, NOW + timedelta(minutes=1))
    assert key not in closed.breakers and "P-1" not in closed.high_water
