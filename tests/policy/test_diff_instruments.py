"""`bastion diff` directions for borrowing and the instrument rules of a LimitPolicy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bastion.engine.policy.diff import diff_sets
from tests.conftest import POLICIES
from tests.policy.test_diff import changed, load, replace_in

BORROWING = "max_per_asset_pct: 150\n    borrowing: {allowed: true, max_leverage: 2}"
RULES = "spec:\n  instruments:\n    '*': {lot_size: 1, min_notional_usd: 10, max_quantity: 100}\n"


@pytest.mark.parametrize(
    ("old", "new", "path", "direction"),
    [
        ("max_per_asset_pct: 5", BORROWING, "spec.risk.borrowing.allowed", "loosens"),
        ("max_per_asset_pct: 5", BORROWING, "spec.risk.borrowing.max_leverage", "loosens"),
        ("spec:\n", RULES, "spec.instruments", "tightens"),
    ],
)
def test_diff_when_borrowing_or_instrument_rules_change_then_direction_follows_meaning(
    tmp_path: Path, old: str, new: str, path: str, direction: str
) -> None:
    """Allowing borrowing loosens; adding instrument rules tightens."""
    diff = changed(tmp_path, replace_in("limits.yaml", old, new))
    found = {c.path: c for c in diff.changes}
    assert path in found, list(found)
    assert found[path].direction == direction, found[path]


def _with_rule(directory: Path, rule: str, value: object) -> Path:
    shutil.copytree(POLICIES, directory)
    limits = directory / "limits.yaml"
    entry = f"spec:\n  instruments:\n    crypto: {{{rule}: {value}}}\n"
    limits.write_text(limits.read_text().replace("spec:\n", entry, 1))
    return directory


@pytest.mark.parametrize(
    ("rule", "old", "new", "direction"),
    [
        ("lot_size", 1, 10, "tightens"),
        ("tick_size", "0.05", "0.01", "loosens"),
        ("min_notional_usd", 10, 100, "tightens"),
        ("max_quantity", 100, 1000, "loosens"),
    ],
)
def test_diff_when_instrument_rule_changed_then_direction_follows_meaning(
    tmp_path: Path, rule: str, old: object, new: object, direction: str
) -> None:
    """A coarser lot or tick, a higher minimum, a lower maximum tighten."""
    before = load(_with_rule(tmp_path / "before", rule, old))
    after = load(_with_rule(tmp_path / "after", rule, new))
    found = {c.path: c for c in diff_sets(before, after, "before", "after").changes}
    path = f"spec.instruments.crypto.{rule}"
    assert path in found, list(found)
    assert found[path].direction == direction, found[path]
