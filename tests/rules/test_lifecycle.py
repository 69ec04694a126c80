"""Who owns durable-rules, and proof that recompiling leaves threads and memory flat."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import AllOf, Compare, Not, RuleSpec, compile_rules

ENGINE = Path(__file__).resolve().parents[2] / "engine"
RSS_GROWTH_BOUND_MB = 20.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _os_threads() -> int:
    """Threads as the kernel counts them: C threads too, not only Python's."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def _policy_like_specs() -> list[RuleSpec]:
    return [
        RuleSpec(
            f"breaker_{k}",
            AllOf(Compare(f"metric_{k % 10}", ">=", k * 0.5), Not(Compare("manual", "==", True))),
        )
        for k in range(20)
    ]


def test_compile_when_used_then_no_thread_started() -> None:
    """durable.engine.Host is never created, so its two timer threads never start."""
    before = (threading.active_count(), _os_threads())
    with compile_rules([RuleSpec("r", Compare("x", ">", 1))]) as rules:
        rules.match([{"x": 2}])
        assert (threading.active_count(), _os_threads()) == before


def test_compile_when_1000_reloads_then_thread_count_identical_and_memory_flat() -> None:
    """1,000 compile+match+release cycles: same thread count, RSS growth under 20 MB."""
    specs = _policy_like_specs()
    facts = [
        {**{f"metric_{j}": float((i * 7 + j) % 13) for j in range(10)}, "manual": i % 3 == 0}
        for i in range(40)
    ]
    expected = compile_rules(specs).match(facts)
    for _ in range(100):  # warm-up: allocator pools, caches, lazy imports
        compile_rules(specs).match(facts)
    gc.collect()
    threads_before, os_threads_before, rss_before = (
        threading.active_count(),
        _os_threads(),
        _rss_mb(),
    )
    for reload in range(1000):
        rules = compile_rules(specs)
        assert rules.match(facts) == expected
        if reload % 2:
            rules.close()  # half closed explicitly, half released by the garbage collector
        del rules
    gc.collect()
    growth_mb = _rss_mb() - rss_before
    assert (threading.active_count(), _os_threads()) == (threads_before, os_threads_before)
    assert growth_mb < RSS_GROWTH_BOUND_MB, f"RSS grew {growth_mb:.1f} MB over 1,000 reloads"


def test_match_when_batches_match_nothing_across_reloads_then_process_survives() -> None:
    """Regression: durable-rules frees an uninitialised pointer when a session that never
    ran an action is deleted; our sentinel rule prevents it. A crash kills the subprocess."""
    script = textwrap.dedent(
        """
        from bastion.engine.rules import Compare, RuleSpec, compile_rules
        specs = [RuleSpec(f"r{k}", Compare(f"m{k % 10}", ">", 1e9)) for k in range(15)]
        for reload in range(150):
            rules = compile_rules(specs)
            for batch in (1, 100, 1000, 17):
                facts = [{f"m{j}": float(i + j) for j in range(10)} for i in range(batch)]
                assert not any(rules.match(facts))
            del rules
        print("survived")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "survived"), result.stderr[-2000:]


def test_close_when_called_twice_then_idempotent_and_match_refused() -> None:
    """close() frees the C ruleset once; a closed ruleset refuses to match."""
    rules = compile_rules([RuleSpec("r", Compare("x", ">", 1))])
    rules.close()
    rules.close()
    assert rules.closed
    with pytest.raises(RuleEngineError, match="is closed"):
        rules.match([{"x": 2}])


def test_compile_when_over_500_conditions_then_refused_before_engine_hangs() -> None:
    """durable-rules spins forever past 511 distinct conditions under one node: refuse first."""
    specs = [RuleSpec(f"r{k}", Compare(f"m{k % 150}", ">", k)) for k in range(500)]
    with pytest.raises(RuleEngineError, match=r"501 comparisons and `any` groups.*split them"):
        compile_rules(specs)
    compile_rules(specs[:499]).close()


def test_compile_when_engine_limit_hit_then_error_explains_the_code() -> None:
    """The C engine's own limits come back as RuleEngineError with the code explained."""
    specs = [RuleSpec(f"r{k}", Compare("x", ">", 1)) for k in range(300)]  # 300 rules, one node
    with pytest.raises(RuleEngineError, match=r"cannot compile the ruleset: .*error 108"):
        compile_rules(specs)


def test_engine_modules_when_scanned_then_only_rules_native_imports_durable() -> None:
    """One module owns durable-rules: nothing else in engine/ imports it."""
    importers = {
        path.relative_to(ENGINE).as_posix()
        for path in ENGINE.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+durable|import_module\(.durable", path.read_text(), re.M)
    }
    assert importers == {"rules/_native.py"}
