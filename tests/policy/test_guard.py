"""The policy-set guard: which protections a candidate set would remove, by stable key."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.guard import Removal, removed_protection, unaccepted
from bastion.engine.policy.model import PolicySet
from tests.conftest import POLICIES

SERVING = load_policy_set([POLICIES])
NO_MINIMUM = (
    "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: bastion}\n"
    "spec: {required_kinds: [%s]}\n"
)

Edit = Callable[[Path], None]


def candidate(tmp_path: Path, edit: Edit, kinds: str = "") -> PolicySet:
    """The shipped set with `edit` applied (and a declaration without a minimum)."""
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    (directory / "bastion.yaml").write_text(NO_MINIMUM % kinds)
    edit(directory)
    return load_policy_set([directory])


def replace_in(name: str, old: str, new: str) -> Edit:
    def edit(directory: Path) -> None:
        path = directory / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    return edit


def keys(removals: tuple[Removal, ...]) -> list[str]:
    return [removal.key for removal in removals]


def test_guard_when_sets_identical_then_nothing_removed() -> None:
    """The serving set compared with itself loses nothing."""
    assert removed_protection(SERVING, SERVING) == ()


def test_guard_when_breaker_removed_from_base_then_overlay_loses_it_too(tmp_path: Path) -> None:
    """Compared resolved: the com overlay inherited the breaker, so both lose it."""
    edit = replace_in(
        "breakers.yaml",
        '    - id: volume_anomaly\n      metric: market.volume_multiple\n      comparison: ">="\n'
        "      threshold: 5       # five times average volume\n      action: alert\n"
        "      severity: warning\n      reset: auto\n",
        "",
    )
    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == [
        "BreakerPolicy/com-breakers:breaker/volume_anomaly",
        "BreakerPolicy/default-breakers:breaker/volume_anomaly",
    ]
    assert all(r.what == "breaker" for r in removals)
    assert "breakers.yaml" in removals[1].message


def test_guard_when_breaker_disabled_then_counted_as_removed(tmp_path: Path) -> None:
    """`enabled: false` protects no more than a deleted breaker."""
    edit = replace_in(
        "com-accounts.yaml", "    - id: drawdown\n", "    - id: drawdown\n      enabled: false\n"
    )
    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == ["BreakerPolicy/com-breakers:breaker/drawdown"]


def test_guard_when_overlay_stops_overriding_then_nothing_removed(tmp_path: Path) -> None:
    """An overlay that drops an override still has the base's breaker: a change, no loss."""
    edit = replace_in("com-accounts.yaml", "    - id: drawdown\n      threshold: 10\n", "")
    assert removed_protection(SERVING, candidate(tmp_path, edit)) == ()


def test_guard_when_strategy_limit_removed_then_limit_key(tmp_path: Path) -> None:
    """A limit without a default that disappears is a removed limit."""
    edit = replace_in("limits.yaml", "      mean_reversion_v1: 30\n", "")
    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == [
        "LimitPolicy/default-limits:limit/risk.max_per_strategy_pct.mean_reversion_v1"
    ]


def test_guard_when_protection_disabled_and_core_asset_dropped_then_both_keys(
    tmp_path: Path,
) -> None:
    """A disabled protection and a core asset no longer immune are both removals."""

    def edit(directory: Path) -> None:
        replace_in(
            "protection.yaml",
            "  whipsaw_protection:\n    enabled: true",
            "  whipsaw_protection:\n    enabled: false",
        )(directory)
        replace_in("protection.yaml", "[SPY, QQQ, BTC/USD]", "[QQQ, BTC/USD]")(directory)

    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == [
        "ProtectionPolicy/default-protection:protection/whipsaw_protection",
        "ProtectionPolicy/default-protection:core_asset/SPY",
    ]


def test_guard_when_escalation_level_removed_then_level_key(tmp_path: Path) -> None:
    """Dropping the last escalation level removes it."""

    def edit(directory: Path) -> None:
        path = directory / "escalation.yaml"
        text = path.read_text()
        start, end = text.index("    - name: preservation"), text.index("  deescalation:")
        path.write_text(text[:start] + text[end:])

    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == ["EscalationPolicy/default-escalation:level/preservation"]
    assert removals[0].what == "level"


def test_guard_when_policy_goes_to_shadow_then_mode_key_only(tmp_path: Path) -> None:
    """enforce -> shadow is one removal; its items are not listed again."""
    edit = replace_in(
        "com-accounts.yaml",
        "extends: default-breakers\n",
        "extends: default-breakers\nmode: shadow\n",
    )
    removals = removed_protection(SERVING, candidate(tmp_path, edit))
    assert keys(removals) == ["BreakerPolicy/com-breakers:mode/enforce"]
    assert "enforce -> shadow" in removals[0].message


def test_guard_when_only_roll_left_then_every_kind_policy_and_item_listed(
    tmp_path: Path,
) -> None:
    """Four kinds gone: the kinds first, then each policy and each of its items."""

    def edit(directory: Path) -> None:
        for path in directory.glob("*.yaml"):
            if path.name not in ("roll.yaml", "bastion.yaml"):
                path.unlink()

    removals = removed_protection(SERVING, candidate(tmp_path, edit, "RollPolicy"))
    found = keys(removals)
    assert found[:4] == [
        "kind/BreakerPolicy",
        "kind/EscalationPolicy",
        "kind/LimitPolicy",
        "kind/ProtectionPolicy",
    ]
    assert "LimitPolicy/default-limits" in found
    assert "LimitPolicy/default-limits:limit/orders.max_notional_per_order_usd" in found
    assert "ProtectionPolicy/default-protection:core_asset/SPY" in found
    assert "BreakerPolicy/default-breakers:breaker/daily_loss_usd" in found
    assert "EscalationPolicy/default-escalation:level/normal" in found
    assert not any(key.startswith("RollPolicy") for key in found)
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    ("accepted", "left"),
    [
        (frozenset(), ["a", "b"]),
        (frozenset({"a"}), ["b"]),
        (frozenset({"a", "b", "unrelated"}), []),
        (frozenset({"*"}), ["a", "b"]),
    ],
)
def test_unaccepted_when_keys_given_then_exact_keys_only(
    accepted: frozenset[str], left: list[str]
) -> None:
    """Acceptance is by exact key; "*" is not a wildcard; extra keys change nothing."""
    removals = (Removal("a", "breaker", "a"), Removal("b", "limit", "b"))
    assert keys(unaccepted(removals, accepted)) == left
