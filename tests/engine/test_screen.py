"""The vectorised screen (engine/evaluation/screen.py) changes no decision and no state.

Seeded random snapshots and previous states — breaches and losses exactly at, a hair
and one float ulp around every threshold, longs and shorts, held levels that may step
down (hysteresis, dwell), manual escalations, position breaker states, resets, a zero
ATR — are evaluated over a few ticks with the screen on and off: the same decisions and
the same state at every tick. The policy set is the shipped one plus a shadow
escalation policy with other thresholds and a shadow breaker policy whose position
breakers combine every comparison with all / any / not.
"""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bastion.engine.evaluation import columns as columns_module
from bastion.engine.evaluation import evaluate as evaluate_module
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.evaluation.columns import position_columns
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.evaluation.screen import screen
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import (
    ARMED,
    COOLDOWN,
    TRIPPED,
    BreakerState,
    EscalationState,
    ManualEscalation,
    State,
)
from tests.conftest import POLICIES

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SHADOW_ESCALATION = """\
apiVersion: bastion/v1
kind: EscalationPolicy
metadata: {name: shadow-escalation}
mode: shadow
spec:
  atr: {period: 14, method: wilder}
  reference: entry_price
  levels:
    - {name: normal, breach_atr: 0, interval_s: 300, actions: [monitor]}
    - {name: enhanced, breach_atr: 0.5, interval_s: 60, actions: [monitor]}
    - {name: recovery, breach_atr: 1.75, interval_s: 30, actions: [halt_new_positions]}
    - {name: preservation, breach_atr: 2.5, interval_s: 1, actions: [emergency_exit]}
  deescalation: {hysteresis_atr: 0.1, min_dwell_s: 60}
"""
SHADOW_BREAKERS = """\
apiVersion: bastion/v1
kind: BreakerPolicy
metadata: {name: screen-probe}
mode: shadow
spec:
  defaults: {cooldown_s: 60, reset: auto}
  breakers:
    - id: profit_or_deep
      scope: position
      when:
        any:
          - {metric: position.unrealized_profit_pct, op: ">", value: 5}
          - all:
              - {metric: position.breach_atr, op: ">=", value: 1.5}
              - not: {metric: position.loss_pct, op: "<", value: 2}
      action: close_position
    - id: loss_exactly
      scope: position
      when: {metric: position.loss_pct, op: "==", value: 3}
      action: reduce_only
    - id: loss_band
      scope: position
      when:
        all:
          - {metric: position.loss_pct, op: "<=", value: 4}
          - {metric: position.loss_pct, op: "!=", value: 0}
          - {metric: position.breach_atr, op: "<", value: 2}
          - {metric: position.breach_atr, op: ">", value: 0.75}
      action: alert
"""
BREACHES = ("0", "0.5", "0.75", "1", "1.4", "1.5", "1.75", "1.9", "2", "2.5", "2.75", "3", "4")
LOSSES = ("0", "2", "3", "4", "5", "10")


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledPolicySet]:
    folder = tmp_path_factory.mktemp("screen") / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "shadow-escalation.yaml").write_text(SHADOW_ESCALATION)
    (folder / "screen-probe.yaml").write_text(SHADOW_BREAKERS)
    compiled = compile_policy_set(load_policy_set([folder]))
    yield compiled
    compiled.close()


def _near(rng: random.Random, text: str) -> Decimal:
    """A value exactly at, a hair or one float ulp around, or anywhere near `text`."""
    value = Decimal(text)
    pick = rng.randrange(7)
    if pick == 0:
        return value
    if pick in (1, 2):
        return value + (Decimal("1e-20") if pick == 1 else Decimal("-1e-20"))
    if pick in (3, 4):
        return Decimal(math.nextafter(float(value), math.inf if pick == 3 else -math.inf))
    if pick == 5:
        return value + Decimal(rng.randint(-300, 300)) / 1000
    return Decimal(rng.randint(0, 5000)) / 1000


def _document(rng: random.Random, now: datetime, count: int) -> dict[str, Any]:
    symbols = {f"S{index}": rng.choice(("100", "37.5", "2.25", "913")) for index in range(4)}
    atrs = {name: rng.choice(("2.5", "0.01", "1.3", "7")) for name in symbols}
    atrs["S3"] = rng.choice(("0", "2.5"))  # a zero ATR: the breach cannot be measured
    market = {
        name: {
            "price_usd": price,
            "bid_usd": price,
            "ask_usd": price,
            "atr_usd": atrs[name],
            "volume": 1_000_000,
            "avg_volume": 1_000_000,
            "volatility": "0.2",
            "normal_volatility": "0.2",
            "liquidity_usd": "10000000",
            "normal_liquidity_usd": "10000000",
            "correlation": "0.5",
            "normal_correlation": "0.5",
            "data_age_s": 1,
            "quality_score_ratio": 1,
        }
        for name, price in symbols.items()
    }
    positions = []
    for index in range(count):
        name = rng.choice(sorted(symbols))
        mark, atr = Decimal(symbols[name]), Decimal(atrs[name])
        side = rng.choice(("long", "short"))
        if rng.random() < 0.6:  # placed by its breach in ATRs
            move = _near(rng, rng.choice(BREACHES)) * atr
            if rng.random() < 0.2:
                move = -move  # a favourable move
            entry = mark + move if side == "long" else mark - move
            price = mark
        else:  # placed by its loss in % of entry
            entry = mark * Decimal(rng.choice(("1", "1.01", "0.98")))
            loss = _near(rng, rng.choice(LOSSES)) / 100
            price = entry * (1 - loss) if side == "long" else entry * (1 + loss)
        if entry <= 0 or price <= 0:
            entry, price = mark, mark
        positions.append(
            {
                "id": f"P{index:03d}",
                "account_id": f"acc-{index % 3}",
                "symbol": name,
                "asset_class": "equity",
                "quantity": "10",
                "side": side,
                "entry_price_usd": str(entry),
                "entered_at": (NOW - timedelta(days=3)).isoformat(),
                "price_usd": str(price),
                "strategy_id": f"s{index % 2}",
                "manual": False,
            }
        )
    return {
        "version": 1,
        "as_of": now.isoformat(),
        "accounts": [
            {
                "id": f"acc-{index}",
                "type": ("gen", "rev", "com")[index],
                "equity_usd": "100000",
                "cash_usd": "100000",
                "day_start_equity_usd": "100000",
                "peak_equity_usd": "100000",
                "realized_pnl_usd": 0,
                "unrealized_pnl_usd": 0,
                "drift_flag": False,
            }
            for index in range(3)
        ],
        "positions": positions,
        "market": market,
        "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
        "order_flow": [],
        "regime": {"name": "calm", "severity": "low", "changed_at": NOW.isoformat()},
    }


def _previous(rng: random.Random, snapshot: Snapshot, now: datetime) -> State:
    """A random previous state: held levels (any, whatever the breach), manual floors,
    position breaker states."""
    escalations: dict[str, EscalationState] = {}
    breakers: dict[str, BreakerState] = {}
    manual: dict[str, ManualEscalation] = {}
    names = ("normal", "enhanced", "recovery", "preservation")
    for position in snapshot.positions:
        since = now - timedelta(seconds=rng.choice((0, 30, 59, 60, 299, 300, 900)))
        if rng.random() < 0.5:
            level = rng.randint(1, 3)
            escalations[position.id] = EscalationState(
                level, names[level], since, Decimal(level), "default-escalation"
            )
        if rng.random() < 0.3:
            level = rng.randint(1, 3)
            key = f"{position.id}@shadow-escalation"
            escalations[key] = EscalationState(level, names[level], since, Decimal(1), "x")
        if rng.random() < 0.05:
            status = rng.choice((TRIPPED, COOLDOWN, ARMED))
            key = f"screen-probe:profit_or_deep@position:{position.id}"
            breakers[key] = BreakerState(
                status, tripped_at=since, until=since + timedelta(seconds=60), trip_count=1
            )
        if rng.random() < 0.03:
            manual[position.id] = ManualEscalation(
                level="recovery",
                by="ops",
                reason="test",
                since=since,
                until=now + timedelta(hours=1),
            )
    return State(escalations=escalations, breakers=breakers, manual_escalations=manual)


def _both(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    resets: list[ManualReset],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, Any]:
    monkeypatch.setattr(evaluate_module, "SCREEN", True)
    monkeypatch.setattr(evaluate_module, "SCREEN_FROM", 0)  # these snapshots are small
    screened = evaluate(policies, snapshot, state, now, resets=resets)
    monkeypatch.setattr(evaluate_module, "SCREEN", False)
    full = evaluate(policies, snapshot, state, now, resets=resets)
    return screened, full


@pytest.mark.parametrize("seed", range(24))
def test_evaluate_when_screened_then_same_decisions_and_state_as_unscreened(
    policies: CompiledPolicySet, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random snapshots at and around every threshold, random previous states, four
    ticks: with and without the screen, identical decisions and identical states."""
    rng = random.Random(seed)
    now = NOW
    snapshot = Snapshot.from_dict(_document(rng, now, 40))
    state = _previous(rng, snapshot, now)
    for _ in range(4):
        resets = []
        if rng.random() < 0.5 and snapshot.positions:
            target = rng.choice(snapshot.positions).id
            resets.append(ManualReset("profit_or_deep", f"position:{target}", "ops", "test"))
        screened, full = _both(policies, snapshot, state, now, resets, monkeypatch)
        assert screened[0] == full[0]
        assert screened[1] == full[1]
        assert screened[1].to_dict() == full[1].to_dict()
        state = full[1]
        now += timedelta(seconds=rng.choice((0, 45, 61, 301)))
        snapshot = Snapshot.from_dict(_document(rng, now, 40))


def test_screen_when_far_from_every_threshold_then_positions_skip_the_rules_engine(
    policies: CompiledPolicySet,
) -> None:
    """The screen does its job: a steady tick sends only the doubtful positions on."""
    rng = random.Random(3)
    snapshot = Snapshot.from_dict(_document(rng, NOW, 40))
    _, state = evaluate(policies, snapshot, State(), NOW)
    screened = screen(policies, snapshot, state)
    assert screened is not None
    assert len(screened.positions) < len(snapshot.positions)


def test_columns_when_breach_is_one_ulp_from_a_threshold_then_screen_sends_it_on(
    policies: CompiledPolicySet,
) -> None:
    """At a threshold and one ulp either side of it, the float breach is within the
    margin: the position goes the full way, where durable-rules decides."""
    rng = random.Random(0)
    document = _document(rng, NOW, 3)
    document["market"]["S0"].update(price_usd="100", bid_usd="100", ask_usd="100", atr_usd="2.5")
    for index, breach in enumerate(
        (Decimal(1), Decimal(math.nextafter(1.0, 2.0)), Decimal(math.nextafter(1.0, 0.0)))
    ):
        document["positions"][index].update(
            symbol="S0",
            side="long",
            price_usd="100",
            entry_price_usd=str(100 + breach * Decimal("2.5")),
        )
    snapshot = Snapshot.from_dict(document)
    value, slack = position_columns(snapshot).breach()
    assert np.all(np.abs(value - 1.0) <= slack)
    screened = screen(policies, snapshot, State())
    assert screened is not None
    assert {p.id for p in screened.positions} >= {"P000", "P001", "P002"}


def test_screen_when_a_breaker_trails_a_high_then_the_set_is_not_screened(
    tmp_path: Path,
) -> None:
    """A trailing stop's metric depends on marks tracked per position: no screen."""
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "trailing.yaml").write_text(
        "apiVersion: bastion/v1\n"
        "kind: BreakerPolicy\n"
        "metadata: {name: trailing}\n"
        "precedence: 5\n"
        "spec:\n"
        "  breakers:\n"
        "    - {id: trailing_stop, metric: position.drawdown_from_high_pct, comparison: '>',"
        " threshold: 5, action: close_position}\n"
    )
    compiled = compile_policy_set(load_policy_set([folder]))
    try:
        snapshot = Snapshot.from_dict(_document(random.Random(1), NOW, 5))
        assert screen(compiled, snapshot, State()) is None
    finally:
        compiled.close()


def test_screen_when_no_position_is_held_then_nothing_goes_on(
    policies: CompiledPolicySet,
) -> None:
    """An empty book: nothing to screen, nothing carried."""
    document = _document(random.Random(2), NOW, 0)
    screened = screen(policies, Snapshot.from_dict(document), State())
    assert screened is not None
    assert screened.positions == ()
    assert not screened.carried.escalations


def test_columns_when_the_same_snapshot_is_asked_twice_then_built_once() -> None:
    """One build per snapshot (a shadow candidate evaluates the same one); `forget`
    drops it."""
    snapshot = Snapshot.from_dict(_document(random.Random(4), NOW, 5))
    first = position_columns(snapshot)
    assert position_columns(snapshot) is first
    columns_module.forget()
    assert position_columns(snapshot) is not first
