"""evaluate(): determinism, fail-safe, state round trip, properties, reload flatness."""

from __future__ import annotations

import json
import resource
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.engine.evaluation import passes
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.evaluation.facts import build_facts
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, load_snapshot
from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

EXAMPLES = sorted((ROOT / "examples" / "snapshots").glob("*.json"))
POLICY_SET = load_policy_set([POLICIES])


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledPolicySet]:
    result = compile_policy_set(POLICY_SET)
    yield result
    result.close()


def _bytes(decisions: Any, state: State) -> bytes:
    payload = {"decisions": [d.to_dict() for d in decisions], "state": state.to_dict()}
    return json.dumps(payload, sort_keys=True).encode()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_evaluate_when_same_inputs_twice_then_byte_identical(
    compiled: CompiledPolicySet, example: Path
) -> None:
    """Same policies, snapshot, state and time: the same bytes, even from a fresh compile."""
    snapshot = load_snapshot(example)
    first = _bytes(*evaluate(compiled, snapshot, State(), snapshot.as_of))
    again = _bytes(*evaluate(compiled, snapshot, State(), snapshot.as_of))
    fresh = compile_policy_set(POLICY_SET)
    other = _bytes(*evaluate(fresh, snapshot, State(), snapshot.as_of))
    fresh.close()
    assert first == again == other


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_state_when_serialised_and_read_back_then_equal(
    compiled: CompiledPolicySet, example: Path
) -> None:
    """State survives JSON: to_dict -> from_dict is lossless."""
    snapshot = load_snapshot(example)
    _, state = evaluate(compiled, snapshot, State(), snapshot.as_of)
    assert State.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_evaluate_when_a_pass_raises_then_error_decision_and_every_account_reducing(
    compiled: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error inside evaluation fails safe: no new risk anywhere, never an approval."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "calm.json")

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("bastion.engine.evaluation.evaluate.escalation_pass", broken)
    halted = State(trading_states={"gen-01": "HALTED"})
    decisions, state = evaluate(compiled, snapshot, halted, snapshot.as_of)
    assert [(d.kind, d.outcome) for d in decisions] == [("evaluation", "error")]
    assert "ZeroDivisionError: boom" in decisions[0].reasons[0]
    assert decisions[0].actions == ("halt_new_positions",)
    assert set(state.trading_states.values()) <= {"REDUCING", "HALTED"}
    assert state.trading_states["gen-01"] == "HALTED"  # never relaxed by an error
    assert len(state.trading_states) == len(snapshot.accounts) + 0


def test_evaluate_when_clock_injected_then_latency_recorded(compiled: CompiledPolicySet) -> None:
    """Latency comes from the injected clock only."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "atr-breach.json")
    ticks = iter([1_000_000, 3_500_000])
    decisions, _ = evaluate(
        compiled, snapshot, State(), snapshot.as_of, clock_ns=lambda: next(ticks)
    )
    assert decisions and {d.latency_us for d in decisions} == {2500}


def test_evaluate_when_run_again_later_then_transitions_not_repeated(
    compiled: CompiledPolicySet,
) -> None:
    """Decisions are transitions: an unchanged market a minute later decides nothing new."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "atr-breach.json")
    first, state = evaluate(compiled, snapshot, State(), snapshot.as_of)
    second, _ = evaluate(compiled, snapshot, state, snapshot.as_of + timedelta(minutes=1))
    assert first and second == ()


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    numbers = st.decimals(
        min_value=Decimal("0.01"),
        max_value=Decimal("1e7"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
    return st.fixed_dictionaries(
        {
            "example": st.sampled_from([p.name for p in EXAMPLES]),
            "price_factor": st.decimals(Decimal("0.5"), Decimal("1.5"), places=3),
            "equity_factor": st.decimals(Decimal("0.5"), Decimal("1.2"), places=3),
            "error_rate_pct": st.decimals(Decimal(0), Decimal(100), places=1),
            "data_age_s": numbers,
            "zero_baselines": st.booleans(),
            "delta": st.one_of(st.none(), st.decimals(Decimal(-1), Decimal(0), places=3)),
            "minutes_later": st.integers(0, 600),
        }
    )


def _mutated(spec: dict[str, Any]) -> Snapshot:
    data = json.loads((ROOT / "examples" / "snapshots" / spec["example"]).read_text())
    for market in data["market"].values():
        market["price_usd"] = str(Decimal(str(market["price_usd"])) * spec["price_factor"])
        if spec["zero_baselines"]:
            market["normal_volatility"] = 0
            market["avg_volume"] = 0
    for position in data["positions"]:
        position["price_usd"] = str(Decimal(str(position["price_usd"])) * spec["price_factor"])
        if position.get("option") and spec["delta"] is not None:
            position["option"]["delta"] = str(spec["delta"])
    for account in data["accounts"]:
        account["equity_usd"] = str(Decimal(str(account["equity_usd"])) * spec["equity_factor"])
    data["system"]["error_rate_pct"] = str(spec["error_rate_pct"])
    data["system"]["data_age_s"] = str(spec["data_age_s"])
    return Snapshot.from_dict(data)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spec=_mutations())
def test_evaluate_when_random_valid_snapshot_then_never_errors_and_never_loosens(
    compiled: CompiledPolicySet, spec: dict[str, Any]
) -> None:
    """Random valid snapshots evaluate without falling into the error path, twice in a row."""
    snapshot = _mutated(spec)
    decisions, state = evaluate(compiled, snapshot, State(), snapshot.as_of)
    assert all(d.kind != "evaluation" for d in decisions), [d.reasons for d in decisions]
    later = snapshot.as_of + timedelta(minutes=spec["minutes_later"])
    decisions, _ = evaluate(compiled, snapshot, state, later)
    assert all(d.kind != "evaluation" for d in decisions)


def test_compile_when_policy_set_recompiled_200_times_then_threads_and_memory_flat() -> None:
    """Reloads do not leak: thread count identical, memory growth bounded."""
    snapshot = load_snapshot(ROOT / "examples" / "snapshots" / "crash-day.json")
    threads = threading.active_count()
    for _ in range(20):  # warm-up
        compiled = compile_policy_set(POLICY_SET)
        evaluate(compiled, snapshot, State(), snapshot.as_of)
        compiled.close()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(200):
        compiled = compile_policy_set(POLICY_SET)
        evaluate(compiled, snapshot, State(), snapshot.as_of)
        compiled.close()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert threading.active_count() == threads
    assert grown_mib < 30


def test_passes_module_when_imported_then_has_no_wall_clock() -> None:
    """engine/ never reads the wall clock: time is passed in."""
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text()
        assert "datetime.now(" not in text and "time.time(" not in text, path
    assert passes  # the module under test imports cleanly


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_assign_when_cached_then_same_subjects_per_policy_and_cache_bounded(
    compiled: CompiledPolicySet, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which policies evaluate a subject is kept per coordinates across evaluations:
    the cached answer is the one computed afresh, and the cache never grows unbounded."""
    facts = build_facts(load_snapshot(example))
    monkeypatch.setattr(passes, "ASSIGNMENT_CACHE", 3)
    cache: dict[tuple[object, ...], tuple[str, ...]] = {}
    for kind in ("EscalationPolicy", "RollPolicy", "BreakerPolicy"):
        for scope in ("position", "account", "symbol"):
            fresh = passes.assign(compiled.of_kind(kind), facts.of(scope))
            for _ in range(2):
                cached = passes.assign(compiled.of_kind(kind), facts.of(scope), cache)
                assert [(c.policy.name, [s.subject for s in items]) for c, items in cached] == [
                    (c.policy.name, [s.subject for s in items]) for c, items in fresh
                ]
            assert len(cache) <= 3 + len(facts.of(scope))
