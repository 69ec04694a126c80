"""Order rulesets of a policy set with many limit and protection policies.

The grid comes from bench/check/many_policies.py (`write_grid`): N LimitPolicies and N
ProtectionPolicies, each scoped to its own symbols, so every symbol meets one pair.
Beyond LITERAL_VARIANTS policies of one shape, their differing thresholds are carried
in the fact: the decisions must still name the same policies, thresholds and reasons
as a set that holds that one pair alone (thresholds written in the rules).
"""

from __future__ import annotations

import gc
import importlib
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bastion.engine.authority.check import can_execute
from bastion.engine.evaluation import compiled as compiled_module
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.rules import CompiledRuleset
from bastion.service.reloader import PolicyReloaded, PolicyReloader
from tests.conftest import POLICIES, ROOT

GRID_SIZE = 6  # > LITERAL_VARIANTS: the thresholds that differ move into the fact


def _bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench" / "check"))
    try:
        return importlib.import_module("many_policies")
    finally:
        sys.path.remove(str(ROOT / "bench" / "check"))


BENCH = _bench()


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = BENCH.write_grid(tmp_path_factory.mktemp("grid") / "policies", GRID_SIZE)
    return path


@pytest.fixture(scope="module")
def grid(grid_dir: Path) -> Iterator[CompiledPolicySet]:
    compiled = compile_policy_set(load_policy_set([grid_dir]))
    yield compiled
    compiled.close()


@pytest.fixture(scope="module")
def workload() -> Any:
    snapshot = BENCH.make_snapshot()
    return snapshot, BENCH.make_requests(snapshot, 600), BENCH.start_state()


def _one_pair(grid_dir: Path, target: Path, protection: str, limits: str) -> CompiledPolicySet:
    """The shipped set with only this (protection, limit) pair of the grid."""
    target.mkdir()
    for source in grid_dir.glob("*.yaml"):
        if source.stem.startswith(("limits-", "protection-")) and source.stem not in (
            protection,
            limits,
        ):
            continue
        shutil.copy(source, target / source.name)
    return compile_policy_set(load_policy_set([target]))


def _seen(result: Any) -> tuple[Any, ...]:
    decision = result.decision
    return (
        result.outcome,
        result.approved_size,
        result.blocking,
        result.override_applied,
        decision.policy,
        decision.rule,
        decision.reasons,
        decision.trace,
        decision.inputs,
    )


def test_can_execute_when_thresholds_in_fact_then_same_decisions_as_the_pair_alone(
    grid: CompiledPolicySet, grid_dir: Path, workload: Any, tmp_path: Path
) -> None:
    """Every request on the grid's symbols: the outcome, sizes, blocking rules, reasons
    (with their thresholds), trace and inputs, and the policy named, are those of a
    set holding only the pair that governs it (its thresholds written in the rules)."""
    snapshot, work, state = workload
    alone: dict[tuple[str, str], CompiledPolicySet] = {}
    symbols = set(BENCH.grid_symbols(GRID_SIZE))
    checked = 0
    try:
        for request, now in zip(work.requests, work.times, strict=True):
            if request.symbol not in symbols:
                continue
            account = next(a for a in snapshot.accounts if a.id == request.account_id)
            pair = grid.governing_order_rules(account.type, request.symbol, request.strategy_id)
            assert pair.protection is not None and pair.limits is not None
            names = (pair.protection.name, pair.limits.name)
            if names not in alone:
                alone[names] = _one_pair(grid_dir, tmp_path / f"{len(alone)}", *names)
            on_grid = can_execute(grid, request, snapshot, state, now)
            by_itself = can_execute(alone[names], request, snapshot, state, now)
            assert _seen(on_grid) == _seen(by_itself), (request, names)
            checked += 1
    finally:
        for compiled in alone.values():
            compiled.close()
    assert checked > 50 and len(alone) > 5
    cache = grid.order_rulesets
    assert cache is not None
    assert cache.compiled < len(alone) * 6  # shared: fewer than one per pair and action


def test_compile_policy_set_when_policies_have_equal_specs_then_one_ruleset_shared(
    grid: CompiledPolicySet,
) -> None:
    """Pairs whose rules are equal once the differing thresholds are parameters share
    each action's ruleset; the parameters differ."""
    first = grid.governing_order_rules("gen", "S000", None).rules  # protection-00, limits-00
    second = grid.governing_order_rules("gen", "S001", None).rules  # protection-00, limits-01
    for action in ("open", "close", "decrease", "cancel"):
        assert first.load(action) is second.load(action), action
    assert first._loaded["open"].params != second._loaded["open"].params


def test_compile_policy_set_when_two_policies_equal_then_share_without_parameters(
    tmp_path: Path,
) -> None:
    """Two LimitPolicies with equal specs (different names and scopes) share one ruleset
    per action, with the thresholds written in the rules (no parameters)."""
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    text = (POLICIES / "limits.yaml").read_text()
    (directory / "limits.yaml").unlink()
    for name, symbol in (("a", "AAA"), ("b", "BBB")):
        scoped = text.replace("name: default-limits", f"name: limits-{name}").replace(
            "spec:\n", f"scope:\n  symbols: [{symbol}]\nspec:\n", 1
        )
        (directory / f"limits-{name}.yaml").write_text(scoped)
    compiled = compile_policy_set(load_policy_set([directory]))
    try:
        one = compiled.governing_order_rules("gen", "AAA", None)
        other = compiled.governing_order_rules("gen", "BBB", None)
        assert one.limits is not None and other.limits is not None
        assert one.limits.name != other.limits.name
        for action in ("open", "increase", "decrease", "modify"):
            ruleset = one.rules.load(action)
            assert ruleset is other.rules.load(action)
            assert not ruleset.param_keys
    finally:
        compiled.close()


def test_order_rulesets_when_cache_bound_exceeded_then_evicted_ones_recompile_the_same(
    grid_dir: Path, grid: CompiledPolicySet, workload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 2 rulesets, the requests cycle through more: evicted rulesets are
    closed, recompiled when met again, and every decision is the unbounded set's."""
    monkeypatch.setattr(compiled_module, "ORDER_RULESETS", 2)
    small = compile_policy_set(load_policy_set([grid_dir]))
    snapshot, work, state = workload
    try:
        for request, now in list(zip(work.requests, work.times, strict=True))[:150]:
            expected = can_execute(grid, request, snapshot, state, now)
            got = can_execute(small, request, snapshot, state, now)
            assert _seen(got) == _seen(expected), request
        cache = small.order_rulesets
        assert cache is not None
        assert len(cache) <= 2 and cache.evicted > 0
    finally:
        small.close()


def _live_rulesets() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, CompiledRuleset) and not o.closed)


@pytest.mark.slow
def test_reload_when_50x50_policies_then_rulesets_replaced_without_leak(tmp_path: Path) -> None:
    """Reloads of a 50 × 50 grid (a limit's threshold changed each time) swap in new
    sets whose rulesets replace the old ones: the live count stays flat."""
    directory: Path = BENCH.write_grid(tmp_path / "policies")
    before = _live_rulesets()  # other tests' sets may be alive in this process
    reloader = PolicyReloader(directory, now=lambda: datetime(2026, 11, 20, tzinfo=UTC))
    reloader.load_initial()
    target = directory / "limits-07.yaml"
    text = target.read_text()
    counts = []
    for round_ in range(4):
        target.write_text(
            text.replace("max_open_positions: 13", f"max_open_positions: {20 + round_}")
        )
        event = reloader.reload()
        assert isinstance(event, PolicyReloaded), event
        reloader.current.compiled.governing_order_rules("gen", "S007", None).rules.load("open")
        counts.append(_live_rulesets())
    reloader.stop()
    assert counts[-1] == counts[1], counts  # flat: each reload frees what it replaces
    cache = reloader.current.compiled.order_rulesets
    assert cache is not None and len(cache) <= compiled_module.ORDER_RULESETS
    assert counts[-1] - before < 300  # a few dozen per set, not one per pair and action
