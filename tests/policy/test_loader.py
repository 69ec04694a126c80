"""Loading policies: defaults, Decimal models, versions, `extends` overlays."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bastion.engine.policy.loader import load_policies
from bastion.engine.policy.model import PolicySet, Scope
from tests.conftest import POLICIES

ROLL = """apiVersion: bastion/v1
kind: RollPolicy
metadata: {name: r}
spec:
  triggers: {normal_abs_delta: 0.5}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_when_spec_partial_then_schema_defaults_fill_the_rest(tmp_path: Path) -> None:
    """Unwritten fields take the schema's defaults; money and ratios are Decimal."""
    policy = load_policies([_write(tmp_path, "r.yaml", ROLL)]).policies[0]
    assert policy.spec.normal_abs_delta == Decimal("0.5")
    assert policy.spec.max_net_debit_usd == Decimal("0.5")
    assert policy.spec.min_net_credit_usd == Decimal("0.1")
    assert isinstance(policy.spec.commission_per_contract_usd, Decimal)
    assert policy.mode == "enforce" and policy.precedence == 0


def test_version_when_only_comments_and_layout_change_then_unchanged(tmp_path: Path) -> None:
    """The version hashes content, not formatting."""
    first = load_policies([_write(tmp_path, "a.yaml", ROLL)]).policies[0]
    reformatted = ROLL.replace("{normal_abs_delta: 0.5}", "\n    normal_abs_delta: 0.50  # x")
    second = load_policies([_write(tmp_path, "b.yaml", "# hi\n" + reformatted)]).policies[0]
    assert first.version == second.version and first.version.startswith("sha256:")


def test_version_when_a_value_changes_then_changes(tmp_path: Path) -> None:
    """Any change of meaning is a new version."""
    first = load_policies([_write(tmp_path, "a.yaml", ROLL)]).policies[0]
    changed = ROLL.replace("0.5}", "0.55}")
    second = load_policies([_write(tmp_path, "b.yaml", changed)]).policies[0]
    assert first.version != second.version


def test_extends_when_breakers_overlaid_then_merged_by_id(tmp_path: Path) -> None:
    """The shipped com overlay changes four thresholds and keeps every other breaker."""
    result = load_policies([POLICIES])
    assert result.findings == []
    base = next(p for p in result.policies if p.name == "default-breakers")
    com = next(p for p in result.policies if p.name == "com-breakers")
    thresholds = {b.id: b.condition for b in com.spec.breakers}
    assert [b.id for b in com.spec.breakers] == [b.id for b in base.spec.breakers]
    assert thresholds["daily_loss_pct"].value == Decimal(3)  # type: ignore[union-attr]
    assert thresholds["portfolio_loss"].value == Decimal(5)  # type: ignore[union-attr]
    assert com.scope == Scope(account_types=frozenset({"com"}))
    assert com.extends == "default-breakers"


def test_extends_when_overlay_value_located_then_points_into_overlay_file() -> None:
    """Findings about overlaid values point at the overlay; inherited ones at the base."""
    com = next(p for p in load_policies([POLICIES]).policies if p.name == "com-breakers")
    daily = next(i for i, b in enumerate(com.spec.breakers) if b.id == "daily_loss_pct")
    portfolio = next(i for i, b in enumerate(com.spec.breakers) if b.id == "portfolio_loss")
    assert com.locate(f"/spec/breakers/{daily}/threshold").file.endswith("com-accounts.yaml")
    assert com.locate(f"/spec/breakers/{portfolio}/threshold").file.endswith("breakers.yaml")


def test_extends_when_base_changes_then_overlay_version_changes(tmp_path: Path) -> None:
    """An overlay's version covers what it inherits."""
    overlay = ROLL.replace("name: r}", "name: o}\nextends: r\nscope: {account_types: [com]}")
    overlay = overlay.replace(
        "triggers: {normal_abs_delta: 0.5}", "economics: {max_net_debit_usd: 0.3}"
    )
    _write(tmp_path, "o.yaml", overlay)
    _write(tmp_path, "r.yaml", ROLL)
    before = {p.name: p.version for p in load_policies([tmp_path]).policies}
    _write(tmp_path, "r.yaml", ROLL.replace("0.5}", "0.45}"))
    after = {p.name: p.version for p in load_policies([tmp_path]).policies}
    assert before["o"] != after["o"]


def test_policy_set_when_member_changes_then_set_version_changes() -> None:
    """The set's version hashes every member's version."""
    policies = tuple(load_policies([POLICIES]).policies)
    full, partial = PolicySet(policies), PolicySet(policies[1:])
    assert full.version != partial.version
    assert full.version == PolicySet(tuple(reversed(policies))).version


def test_scope_when_dimensions_disjoint_then_no_overlap() -> None:
    """Scopes overlap only if every dimension intersects (missing = all)."""
    gen = Scope(account_types=frozenset({"gen"}))
    com_spy = Scope(account_types=frozenset({"com"}), symbols=frozenset({"SPY"}))
    assert not gen.overlaps(com_spy)
    assert Scope().overlaps(com_spy)
    assert com_spy.covers(account_type="com", symbol="SPY")
    assert not com_spy.covers(account_type="com", symbol="QQQ")


def test_shipped_defaults_when_loaded_then_encode_the_seed_numbers() -> None:
    """The numbers of the design documents, as shipped."""
    policies = {p.name: p for p in load_policies([POLICIES]).policies}
    escalation = policies["default-escalation"].spec
    assert [level.breach_atr for level in escalation.levels] == [0, 1, 2, 3]
    assert [level.interval_s for level in escalation.levels] == [300, 60, 30, 1]
    assert escalation.atr_period == 14
    roll = policies["default-roll"].spec
    assert (roll.normal_abs_delta, roll.emergency_abs_delta) == (Decimal("0.5"), Decimal("0.7"))
    assert (roll.min_abs_delta, roll.target_abs_delta, roll.max_abs_delta) == (
        Decimal("0.15"),
        Decimal("0.25"),
        Decimal("0.35"),
    )
    assert (roll.min_net_credit_usd, roll.max_net_debit_usd) == (Decimal("0.1"), Decimal("0.5"))
    breakers = {b.id: b for b in policies["default-breakers"].spec.breakers}
    assert breakers["portfolio_loss"].condition.value == 5  # type: ignore[union-attr]
    assert breakers["drawdown_emergency"].condition.value == 20  # type: ignore[union-attr]
    assert all(b.cooldown_s == 3600 for b in breakers.values() if b.id in ("drawdown",))
    assert policies["default-protection"].spec.hierarchy[0] == "core_asset_immunity"
    limits = policies["default-limits"].spec
    assert limits.max_risk_per_trade_pct == 1 and limits.max_open_positions == 10
    assert limits.submit_rate.count == 100 and limits.submit_rate.window_s == 1
