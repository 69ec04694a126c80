"""`diff_sets`: what changed in meaning between two loaded policy sets, and where."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bastion.engine.policy.diff import Change, SetDiff, diff_policies, diff_sets, same
from bastion.engine.policy.loader import load_policies
from bastion.engine.policy.model import PolicySet
from tests.conftest import POLICIES

Edit = Callable[[Path], None]


def load(directory: Path) -> PolicySet:
    """The set the engine would load from `directory` (no error allowed)."""
    result = load_policies([directory])
    assert not [f for f in result.findings if f.severity == "error"], result.findings
    declaration = result.declarations[0] if result.declarations else None
    return PolicySet(tuple(result.policies), declaration)


SHIPPED = load(POLICIES)


def replace_in(name: str, old: str, new: str) -> Edit:
    """An edit replacing the first `old` of policies/<name> with `new`."""

    def edit(directory: Path) -> None:
        path = directory / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    return edit


def changed(tmp_path: Path, *edits: Edit) -> SetDiff:
    """The shipped set against a copy with `edits` applied."""
    directory = tmp_path / "candidate"
    shutil.copytree(POLICIES, directory)
    for edit in edits:
        edit(directory)
    return diff_sets(SHIPPED, load(directory), "policies", "candidate")


def only(diff: SetDiff, policy: str) -> list[Change]:
    """The changes of one policy (by kind/name); fails when that policy did not change."""
    found = [p for p in diff.policies if p.key == policy]
    assert found, f"{policy} not in {[p.key for p in diff.policies]}"
    return list(found[0].changes)


def test_diff_when_same_set_then_no_change() -> None:
    """The shipped set against itself changes nothing."""
    diff = diff_sets(SHIPPED, SHIPPED)
    assert not diff.changed and diff.changes == ()


def test_diff_when_reformatted_and_reordered_then_no_change(tmp_path: Path) -> None:
    """Comments, flow style, key order and 5 vs 5.0 are not changes in meaning."""
    flow = (
        "apiVersion: bastion/v1\nkind: BreakerPolicy\n"
        "# rewritten, same meaning\n"
        "scope: {account_types: [com]}\nextends: default-breakers\n"
        "metadata: {owner: risk-office, name: com-breakers, description: reworded}\n"
        "spec:\n  breakers:\n"
        "    - {threshold: 500, id: daily_loss_usd}\n"
        "    - {id: drawdown_emergency, threshold: 15.0}\n"
        "    - {id: daily_loss_pct, threshold: 3}\n"
        "    - {id: drawdown, threshold: 10}\n"
    )

    def rewrite(directory: Path) -> None:
        (directory / "com-accounts.yaml").write_text(flow)

    diff = changed(tmp_path, rewrite)
    assert not diff.changed, diff.changes


def test_diff_when_defaults_moved_into_breaker_then_no_change(tmp_path: Path) -> None:
    """Writing the default cooldown on a breaker is what `defaults` already gave it."""
    diff = changed(
        tmp_path,
        replace_in(
            "breakers.yaml",
            "      action: halt_all\n",
            "      action: halt_all\n      cooldown_s: 3600\n",
        ),
    )
    assert not diff.changed, diff.changes


def test_diff_when_threshold_raised_then_loosens_with_old_new_and_line(tmp_path: Path) -> None:
    """A >= threshold raised in the overlay: loosens, 3 -> 4, at the overlay's line."""
    diff = changed(tmp_path, replace_in("com-accounts.yaml", "threshold: 3\n", "threshold: 4\n"))
    (change,) = only(diff, "BreakerPolicy/com-breakers")
    assert change.path == "spec.breakers[daily_loss_pct].threshold"
    assert (change.change, change.old, change.new) == ("changed", 3, 4)
    assert change.direction == "loosens"
    assert change.where.endswith("com-accounts.yaml:19:18")
    assert [p.key for p in diff.policies] == ["BreakerPolicy/com-breakers"]


def test_diff_when_base_threshold_lowered_then_overlay_shows_it_too(tmp_path: Path) -> None:
    """Compared after `extends`: the com overlay inherits the base's portfolio_loss."""
    diff = changed(
        tmp_path,
        replace_in(
            "breakers.yaml",
            'metric: portfolio.loss_pct\n      comparison: ">="\n      threshold: 5',
            'metric: portfolio.loss_pct\n      comparison: ">="\n      threshold: 4',
        ),
    )
    for policy in ("BreakerPolicy/default-breakers", "BreakerPolicy/com-breakers"):
        (change,) = only(diff, policy)
        assert change.path == "spec.breakers[portfolio_loss].threshold"
        assert change.direction == "tightens"
        assert change.where.endswith("breakers.yaml:20:18")  # the base file wrote it


def test_diff_when_overlay_stops_overriding_then_base_value_shows(tmp_path: Path) -> None:
    """The overlay drops its drawdown override: the effective 10 becomes the base's 15."""
    diff = changed(
        tmp_path, replace_in("com-accounts.yaml", "    - id: drawdown\n      threshold: 10\n", "")
    )
    (change,) = only(diff, "BreakerPolicy/com-breakers")
    assert (change.path, change.old, change.new) == ("spec.breakers[drawdown].threshold", 10, 15)
    assert change.direction == "loosens"


def test_diff_when_breaker_removed_then_loosens_at_old_line(tmp_path: Path) -> None:
    """A breaker gone from the base: removed, loosens, located in the old file."""
    block = (
        "    - id: volume_anomaly\n      metric: market.volume_multiple\n"
        '      comparison: ">="\n      threshold: 5       # five times average volume\n'
        "      action: alert\n      severity: warning\n      reset: auto\n"
    )
    diff = changed(tmp_path, replace_in("breakers.yaml", block, ""))
    (change,) = only(diff, "BreakerPolicy/default-breakers")
    assert (change.path, change.change, change.new) == (
        "spec.breakers[volume_anomaly]",
        "removed",
        None,
    )
    assert change.direction == "loosens"
    assert change.where.startswith(str(POLICIES / "breakers.yaml"))


def test_diff_when_mode_set_to_shadow_then_loosens(tmp_path: Path) -> None:
    """enforce -> shadow: the policy stops blocking."""
    diff = changed(tmp_path, replace_in("escalation.yaml", "mode: enforce", "mode: shadow"))
    (change,) = only(diff, "EscalationPolicy/default-escalation")
    assert (change.path, change.old, change.new, change.direction) == (
        "mode",
        "enforce",
        "shadow",
        "loosens",
    )


@pytest.mark.parametrize(
    ("name", "old", "new", "path", "direction"),
    [
        ("limits.yaml", "max_open_positions: 10", "max_open_positions: 12",
         "spec.risk.max_open_positions", "loosens"),
        ("limits.yaml", "min_liquidity_24h_usd: 100000", "min_liquidity_24h_usd: 200000",
         "spec.liquidity.min_liquidity_24h_usd", "tightens"),
        ("limits.yaml", "submit_rate: 100/1s", "submit_rate: 50/1s",
         "spec.orders.submit_rate", "tightens"),
        ("limits.yaml", "modify_rate: 100/1s", "modify_rate: 200/1s",
         "spec.orders.modify_rate", "loosens"),
        ("limits.yaml", "HALTED: [cancel]", "HALTED: [cancel, close]",
         "spec.trading_states.HALTED", "loosens"),
        ("limits.yaml", "      mean_reversion_v1: 30\n", "",
         "spec.risk.max_per_strategy_pct.mean_reversion_v1", "loosens"),
        ("limits.yaml", "shorting_allowed: true", "shorting_allowed: false",
         "spec.region.shorting_allowed", "tightens"),
        ("escalation.yaml", "breach_atr: 3.0", "breach_atr: 3.5",
         "spec.levels[preservation].breach_atr", "loosens"),
        ("escalation.yaml", "actions: [halt_new_positions, emergency_exit]",
         "actions: [halt_new_positions]", "spec.levels[preservation].actions", "loosens"),
        ("breakers.yaml", "threshold: 0.5", "threshold: 0.4",
         "spec.breakers[data_quality].threshold", "loosens"),
        ("breakers.yaml", "action: halt_all\n      severity: critical\n    - id: position_loss",
         "action: alert\n      severity: critical\n    - id: position_loss",
         "spec.breakers[portfolio_loss].action", "loosens"),
        ("breakers.yaml", "reset: manual      # auto-resume off", "reset: auto",
         "spec.breakers[portfolio_loss].reset", "loosens"),
        ("breakers.yaml", "value: 1.5}", "value: 1.2}",
         "spec.breakers[vol_and_volume_surge].when.all[0].value", "tightens"),
        ("protection.yaml", "core_assets: [SPY, QQQ, BTC/USD]", "core_assets: [SPY, QQQ]",
         "spec.core_asset_immunity.core_assets", "loosens"),
        ("protection.yaml", "min_severity: high", "min_severity: medium",
         "spec.regime_override.min_severity", "loosens"),
        ("protection.yaml", "min_holding_days: 5", "min_holding_days: 3",
         "spec.holding_period.min_holding_days", "loosens"),
        ("protection.yaml", "may_bypass: [grace_period, holding_period, whipsaw_protection]",
         "may_bypass: [grace_period, holding_period]",
         "spec.regime_override.may_bypass", "tightens"),
        ("com-accounts.yaml", "account_types: [com]", "account_types: [com, rev]",
         "scope.account_types", "tightens"),
        ("com-accounts.yaml", "scope:\n  account_types: [com]\n", "",
         "scope.account_types", "tightens"),
        ("limits.yaml", "spec:\n", "scope:\n  account_types: [gen]\nspec:\n",
         "scope.account_types", "loosens"),
        ("roll.yaml", "emergency_abs_delta: 0.70", "emergency_abs_delta: 0.80",
         "spec.triggers.emergency_abs_delta", "loosens"),
    ],
)  # fmt: skip
def test_diff_when_field_changed_then_direction_follows_its_meaning(
    tmp_path: Path, name: str, old: str, new: str, path: str, direction: str
) -> None:
    """Each field's direction is decided from what it does (README lists the rules)."""
    diff = changed(tmp_path, replace_in(name, old, new))
    found = {c.path: c for c in diff.changes}
    assert path in found, list(found)
    assert found[path].direction == direction, found[path]


def test_diff_when_breaker_cooldown_deleted_then_where_points_at_defaults(tmp_path: Path) -> None:
    """A breaker's own cooldown deleted: it takes spec.defaults', and the change says so."""
    diff = changed(tmp_path, replace_in("breakers.yaml", "      cooldown_s: 300\n", ""))
    change = next(c for c in diff.changes if c.path == "spec.breakers[order_rate].cooldown_s")
    assert (change.old, change.new, change.direction) == (300, 3600, "tightens")
    assert change.where.endswith("candidate/breakers.yaml:14:17")  # spec.defaults.cooldown_s


def test_diff_when_line_deleted_to_schema_default_then_where_names_the_old_line(
    tmp_path: Path,
) -> None:
    """A value no file writes any more is "default", with the line that used to set it."""
    diff = changed(
        tmp_path,
        replace_in("breakers.yaml", "      action: close_risky\n      severity: warning\n",
                   "      action: close_risky\n"),
    )  # fmt: skip
    (change,) = only(diff, "BreakerPolicy/default-breakers")
    assert (change.path, change.old, change.new) == (
        "spec.breakers[position_loss].severity",
        "warning",
        "critical",
    )
    assert change.where.startswith("default (was set at ")
    assert change.where.endswith("policies/breakers.yaml:28:17)")


def test_diff_when_policy_added_or_removed_then_whole_policy_change(tmp_path: Path) -> None:
    """A whole enforce policy gone loosens; the same one coming back tightens."""

    def drop(directory: Path) -> None:
        (directory / "roll.yaml").unlink()

    directory = tmp_path / "candidate"
    shutil.copytree(POLICIES, directory)
    drop(directory)
    without = load(directory)
    gone = diff_sets(SHIPPED, without)
    (removed,) = only(gone, "RollPolicy/default-roll")
    assert (removed.path, removed.change, removed.direction) == ("", "removed", "loosens")
    back = diff_sets(without, SHIPPED)
    (added,) = only(back, "RollPolicy/default-roll")
    assert (added.change, added.direction) == ("added", "tightens")


def test_same_when_numbers_and_bools_then_compared_by_meaning() -> None:
    """5 == 5.0, but true is never 1, and descriptions never count."""
    assert same(5, 5.0)
    assert not same(True, 1)
    assert same({"a": 1, "description": "x"}, {"a": 1.0, "description": "y"})
    assert not same([1, 2], [2, 1])


def test_diff_when_only_compiled_spec_differs_then_reported_for_review() -> None:
    """Fail closed: same documents but a different built spec is never "no change"."""
    policy = SHIPPED.get("LimitPolicy", "default-limits")
    assert policy is not None
    other = replace(policy, spec=replace(policy.spec, max_open_positions=11))
    result = diff_policies(policy, other)
    assert result is not None
    (change,) = result.changes
    assert (change.path, change.direction) == ("spec", "neutral")
    assert "compiled policy differs" in change.reason


def test_diff_when_only_descriptions_differ_then_no_change() -> None:
    """A breaker's description is text for people: not a change in meaning."""
    policy = SHIPPED.get("BreakerPolicy", "default-breakers")
    assert policy is not None
    first, *rest = policy.spec.breakers
    spec = replace(policy.spec, breakers=(replace(first, description="reworded"), *rest))
    assert diff_policies(policy, replace(policy, spec=spec)) is None


def test_diff_when_policy_stays_in_shadow_then_changes_are_neutral(tmp_path: Path) -> None:
    """A shadow policy never blocks: raising its threshold is shown, not counted as loosening."""
    diff = changed(
        tmp_path,
        replace_in("com-accounts.yaml", "scope:\n", "mode: shadow\nscope:\n"),
        replace_in("com-accounts.yaml", "threshold: 3\n", "threshold: 4\n"),
    )
    base = diff_sets(load(_shadowed(tmp_path)), load(tmp_path / "candidate"), "shadow", "candidate")
    (change,) = base.changes
    assert (change.path, change.direction) == ("spec.breakers[daily_loss_pct].threshold", "neutral")
    assert "never blocks" in change.reason
    assert diff.count("loosens") == 2  # from the shipped set: enforce -> shadow, and 3 -> 4


def _shadowed(tmp_path: Path) -> Path:
    """The shipped set with the com overlay in shadow mode."""
    directory = tmp_path / "shadow"
    shutil.copytree(POLICIES, directory)
    replace_in("com-accounts.yaml", "scope:\n", "mode: shadow\nscope:\n")(directory)
    return directory


def test_diff_when_disabled_breaker_added_then_neutral(tmp_path: Path) -> None:
    """A breaker added with enabled: false changes nothing the engine does."""
    added = (
        "  breakers:\n    - id: extra_loss\n      metric: portfolio.loss_pct\n"
        '      comparison: ">="\n      threshold: 7\n      action: halt_all\n'
        "      enabled: false\n"
    )
    diff = changed(tmp_path, replace_in("breakers.yaml", "  breakers:\n", added))
    change = next(c for c in diff.changes if c.path == "spec.breakers[extra_loss]")
    assert (change.change, change.direction) == ("added", "neutral")
