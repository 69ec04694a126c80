"""The `history:` entries as policy: defaults, the schema's required parameters, the
worked example lints clean, the shipped policies hold none."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.engine.authority.history.evolve import longest_lookback_s
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import lint_paths, load_policy_set
from bastion.engine.policy.kinds.history import build_entry
from tests.conftest import POLICIES, ROOT
from tests.protections.conftest import PolicyFactory, entry


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("stoploss_guard", "account"),
        ("cooldown", "symbol"),
        ("low_profit", "symbol"),
        ("max_drawdown", "account"),
    ],
)
def test_entry_when_scope_left_out_then_method_default(method: str, scope: str) -> None:
    """Without `scope`, freqtrade's: a guard and a drawdown lock everything, a cooldown
    and a low-profit floor the pair; trade_limit defaults to 1."""
    built = build_entry({"id": "x", "method": method, "lookback_s": 60, "lock_s": 60})
    assert built.scope == scope and built.trade_limit == 1


def test_entry_when_lock_end_worded_then_duration_or_clock() -> None:
    """Reasons say how a lock ends: "for 1800 s" or "until 05:00 UTC"."""
    assert build_entry(entry("cooldown", lookback_s=60, lock_s=1800)).lock_end == "for 1800 s"
    clock = build_entry(entry("cooldown", lookback_s=60, unlock_at="05:00"))
    assert clock.lock_end == "until 05:00 UTC"


def test_lint_when_worked_example_then_clean_and_shipped_has_no_history() -> None:
    """examples/protections/policies lints without a finding; the shipped set has no
    history protection (an officer opts in)."""
    assert not lint_paths([ROOT / "examples" / "protections" / "policies"]).findings
    shipped = load_policy_set([POLICIES])
    assert all(not p.spec.history for p in shipped.of_kind("ProtectionPolicy"))


def test_longest_lookback_when_entries_then_the_longest_enabled(policies: PolicyFactory) -> None:
    """What the snapshot builder must keep: the longest enabled lookback (None: none)."""
    compiled = policies(
        entry("cooldown", lookback_s=600, lock_s=60),
        entry("low_profit", "lp", lookback_s=7200, lock_s=60, required_profit_pct=0),
        entry("max_drawdown", lookback_s=99999, lock_s=60, max_drawdown_pct=5, enabled=False),
    )
    assert longest_lookback_s(compiled) == Decimal(7200)
    shipped = compile_policy_set(load_policy_set([POLICIES]))
    try:
        assert longest_lookback_s(shipped) is None
    finally:
        shipped.close()
