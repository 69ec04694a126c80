"""The reload guard counts sector and asset-class caps as protection, like strategy caps."""

from __future__ import annotations

from pathlib import Path

from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.guard import removed_protection
from tests.policy.test_guard import candidate, keys, replace_in

CAPS = (
    "    max_per_sector_pct: {technology: 20, '*': 30}\n    max_per_asset_class_pct: {crypto: 10}\n"
)


def test_guard_when_sector_and_asset_class_caps_removed_then_limit_keys(tmp_path: Path) -> None:
    """Serving caps that disappear from the candidate are removals an officer must accept."""
    add = replace_in(
        "limits.yaml", "    max_per_asset_pct: 5\n", "    max_per_asset_pct: 5\n" + CAPS
    )
    serving = candidate(tmp_path / "serving", add)
    removals = removed_protection(serving, load_policy_set([tmp_path / "serving" / "policies"]))
    assert removals == ()
    shipped = candidate(tmp_path / "candidate", lambda _: None)  # the caps are gone
    assert sorted(keys(removed_protection(serving, shipped))) == [
        "LimitPolicy/default-limits:limit/risk.max_per_asset_class_pct.crypto",
        "LimitPolicy/default-limits:limit/risk.max_per_sector_pct.*",
        "LimitPolicy/default-limits:limit/risk.max_per_sector_pct.technology",
    ]
