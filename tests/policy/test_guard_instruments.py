"""The reload guard counts each `instruments` rule of a LimitPolicy as protection."""

from __future__ import annotations

from pathlib import Path

from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.guard import removed_protection
from tests.policy.test_guard import candidate, keys, replace_in

RULES = "  instruments:\n    '*': {min_notional_usd: 10}\n    BTC/USD: {lot_size: 0.0001}\n"


def test_guard_when_instrument_rules_removed_then_limit_keys(tmp_path: Path) -> None:
    """Serving instrument rules that disappear from the candidate must be accepted."""
    add = replace_in("limits.yaml", "spec:\n", "spec:\n" + RULES)
    serving = candidate(tmp_path / "serving", add)
    assert removed_protection(serving, load_policy_set([tmp_path / "serving" / "policies"])) == ()
    shipped = candidate(tmp_path / "candidate", lambda _: None)  # the rules are gone
    assert sorted(keys(removed_protection(serving, shipped))) == [
        "LimitPolicy/default-limits:limit/instruments.*.min_notional_usd",
        "LimitPolicy/default-limits:limit/instruments.BTC/USD.lot_size",
    ]
