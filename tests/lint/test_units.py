"""Unit slips everywhere a number is read in a unit: breaker thresholds, `when` values,
escalation thresholds, limit and sizing fields (BST501, BST511, BST512)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.units_scale import (
    FIELD_REFERENCE,
    LEVEL_REFERENCE,
    METRIC_REFERENCE,
    PER_CENT,
    is_slip,
    metric_scale,
)
from bastion.engine.lint.runner import lint_paths
from tests.conftest import POLICIES, ROOT

UNIT_CODES = {"BST501", "BST511", "BST512"}

REV_OVERLAY = """\
# Overlay for revenue (rev) accounts: the officer meant a 3 % daily loss limit.
apiVersion: bastion/v1
kind: BreakerPolicy
metadata:
  name: rev-breakers
  owner: risk-office
extends: default-breakers
scope:
  account_types: [rev]
spec:
  breakers:
    - id: daily_loss_pct
      threshold: 0.03
"""


def _unit_findings(*paths: Path) -> list[Finding]:
    return [f for f in lint_paths(list(paths)).findings if f.code in UNIT_CODES]


def _policy(tmp_path: Path, kind: str, spec: dict[str, object]) -> Path:
    path = tmp_path / "p.yaml"
    document = {"apiVersion": "bastion/v1", "kind": kind, "metadata": {"name": "p"}, "spec": spec}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _breaker(threshold: object, metric: str = "account.daily_loss_pct") -> dict[str, object]:
    return {
        "breakers": [
            {
                "id": "b",
                "metric": metric,
                "comparison": ">=",
                "threshold": threshold,
                "action": "halt_all",
            }
        ]
    }


def _when(value: object) -> dict[str, object]:
    leaf = {"metric": "account.drawdown_pct", "op": ">=", "value": value}
    volume = {"metric": "market.volume_multiple", "op": ">=", "value": 3}
    return {
        "breakers": [
            {"id": "w", "scope": "position", "when": {"all": [volume, leaf]}, "action": "alert"}
        ]
    }


def _levels(enhanced: object) -> dict[str, object]:
    return {
        "levels": [
            {"name": "normal", "breach_atr": 0, "interval_s": 300},
            {"name": "enhanced", "breach_atr": enhanced, "interval_s": 60},
            {"name": "recovery", "breach_atr": 2, "interval_s": 30},
        ]
    }


# place -> (kind, spec with the slip, spec with a deliberate small value, code, pointer)
PLACES = {
    "breaker threshold": (
        "BreakerPolicy",
        _breaker(0.03),
        _breaker(0.5),
        "BST511",
        "/spec/breakers/0/threshold",
    ),
    "when leaf": (
        "BreakerPolicy",
        _when(0.15),
        _when(0.5),
        "BST511",
        "/spec/breakers/0/when/all/1/value",
    ),
    "escalation threshold": (
        "EscalationPolicy",
        _levels(0.01),
        _levels(0.5),
        "BST512",
        "/spec/levels/1/breach_atr",
    ),
    "limit field": (
        "LimitPolicy",
        {"kill_switch": {"max_daily_drawdown_pct": 0.1}},
        {"kill_switch": {"max_daily_drawdown_pct": 2}},
        "BST501",
        "/spec/kill_switch/max_daily_drawdown_pct",
    ),
    "sizing field": (
        "LimitPolicy",
        {"sizing": {"atr_multiple": 0.02}},
        {"sizing": {"atr_multiple": 0.5}},
        "BST512",
        "/spec/sizing/atr_multiple",
    ),
}


@pytest.mark.parametrize("place", PLACES)
def test_lint_when_a_fraction_is_written_in_each_place_then_one_warning_there(
    tmp_path: Path, place: str
) -> None:
    """A golden case per place: the slip is one warning at the number; a deliberate
    small value in the same place is not reported."""
    kind, slip, deliberate, code, pointer = PLACES[place]
    (finding,) = _unit_findings(_policy(tmp_path, kind, slip))
    assert (finding.code, finding.severity, finding.path) == (code, "warning", pointer)
    assert finding.file.endswith("p.yaml") and finding.line > 0 and finding.column > 0
    assert " is written " in finding.message
    assert _unit_findings(_policy(tmp_path, kind, deliberate)) == []


def test_lint_when_rev_overlay_writes_0_03_for_daily_loss_then_warning_at_the_number(
    tmp_path: Path,
) -> None:
    """The bug as measured: the overlay's 0.03 is read against the metric its base gives
    the breaker, and reported at the overlay's file:line:col; --strict fails."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "rev-accounts.yaml").write_text(REV_OVERLAY)
    result = lint_paths([policies])
    (finding,) = [f for f in result.findings if f.code in UNIT_CODES]
    assert (finding.file, finding.line, finding.column) == (
        str(policies / "rev-accounts.yaml"),
        13,
        18,
    )
    assert finding.code == "BST511" and finding.policy == "rev-breakers"
    assert "3 % is written 3; 0.03 means 0.03 %" in finding.message
    assert "account.daily_loss_pct" in finding.message
    assert not result.failed() and result.failed(strict=True)


@pytest.mark.parametrize(
    ("value", "reported"),
    [
        ("0.03", True),
        ("0.15", True),  # 33× below the 5 % default
        ("0.16", False),  # 31× below: nearer a deliberate tenth than the slip
        ("0.5", False),  # a tight but plausible half per cent
        ("0", False),
        ("1", False),
    ],
)
def test_is_slip_when_against_the_5_pct_default_then_only_far_below_is_reported(
    value: str, reported: bool
) -> None:
    """The boundary: below 1 and more than 10^1.5 (31.6) times below the reference."""
    assert is_slip(Decimal(value), PER_CENT, Decimal(5)) is reported


@pytest.mark.parametrize(
    ("metric", "threshold"),
    [
        ("market.volume_multiple", 0.1),  # a multiple: volume at a tenth of normal
        ("market.quality_score_ratio", 0.05),  # a ratio: 0 to 1 is its unit
        ("account.daily_loss_usd", 0.5),  # dollars
    ],
)
def test_lint_when_small_value_on_a_metric_without_a_fraction_unit_then_clean(
    tmp_path: Path, metric: str, threshold: float
) -> None:
    """Multiples, ratios and dollars have no fraction-for-per-cent slip to find."""
    comparison = "<=" if "ratio" in metric or "multiple" in metric else ">="
    spec = _breaker(threshold, metric)
    spec["breakers"][0]["comparison"] = comparison  # type: ignore[index]
    assert _unit_findings(_policy(tmp_path, "BreakerPolicy", spec)) == []


def test_lint_when_pct_metric_has_no_shipped_breaker_then_smallest_pct_default_is_used(
    tmp_path: Path,
) -> None:
    """portfolio.drawdown_pct has no shipped threshold: it is read against the smallest
    shipped per-cent default (5), and the message says so."""
    (finding,) = _unit_findings(
        _policy(tmp_path, "BreakerPolicy", _breaker(0.1, "portfolio.drawdown_pct"))
    )
    assert "10 % is written 10; 0.1 means 0.1 %" in finding.message
    assert "the smallest shipped threshold in per cent" in finding.message


def test_lint_when_overlay_inherits_a_slip_then_reported_once_at_the_base(
    tmp_path: Path,
) -> None:
    """A slip in the base is read by the base and by its overlay: one finding, at the
    base file's number."""
    base = _policy(tmp_path, "BreakerPolicy", _breaker(0.03))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "apiVersion: bastion/v1\nkind: BreakerPolicy\nmetadata: {name: o}\nextends: p\n"
        "scope: {account_types: [rev]}\nspec:\n  breakers:\n    - {id: b, severity: warning}\n"
    )
    findings = _unit_findings(base, overlay)
    assert [(f.file, f.code) for f in findings] == [(str(base), "BST511")]


def test_lint_when_shipped_policies_strict_then_clean() -> None:
    """`bastion lint --strict policies/` stays clean with the unit checks."""
    result = lint_paths([POLICIES])
    assert result.findings == () and not result.failed(strict=True)


def test_lint_when_every_policy_folder_of_the_repository_then_no_unit_warning() -> None:
    """No false positive in any example or golden case folder (the lint unit-slip
    cases excepted: they are the true positives)."""
    folders = {
        path.parent
        for path in ROOT.glob("tests/cases/**/*.yaml")
        if "apiVersion: bastion/v1" in path.read_text(errors="replace")
        and not path.parent.name.startswith("unit-slip")
    } | {path.parent for path in ROOT.glob("examples/**/*.yaml")}
    assert len(folders) > 20
    found = [f for folder in sorted(folders) for f in _unit_findings(folder)]
    assert found == []


def test_reference_when_compared_with_the_shipped_files_then_equal() -> None:
    """The reference scale is the shipped default: each entry equals a shipped threshold
    of its metric (a metric shipped without an entry is at least not flagged at its own
    default); levels, hysteresis_atr and atr_multiple equal escalation.yaml, limits.yaml."""
    shipped = yaml.safe_load((POLICIES / "breakers.yaml").read_text())["spec"]["breakers"]
    thresholds: dict[str, set[Decimal]] = {}
    for breaker in shipped:
        leaves = breaker["when"].get("all", []) if "when" in breaker else [breaker]
        for leaf in leaves:
            value = leaf.get("threshold", leaf.get("value"))
            thresholds.setdefault(leaf["metric"], set()).add(Decimal(str(value)))
    escalation = yaml.safe_load((POLICIES / "escalation.yaml").read_text())["spec"]
    levels = {level["name"]: Decimal(str(level["breach_atr"])) for level in escalation["levels"]}
    thresholds["position.breach_atr"] = {levels["enhanced"]}
    for metric, values in thresholds.items():
        scale = metric_scale(metric)
        if scale is None:
            continue
        if metric in METRIC_REFERENCE:
            assert METRIC_REFERENCE[metric] in values, metric
        else:  # a metric newly shipped: at least its own default is never a slip
            assert not any(is_slip(v, scale.unit, scale.reference) for v in values), metric
    assert {m: v for m, v in METRIC_REFERENCE.items() if m not in thresholds} == {}
    assert {name: v for name, v in levels.items() if name != "normal"} == LEVEL_REFERENCE
    limits = yaml.safe_load((POLICIES / "limits.yaml").read_text())["spec"]
    assert {
        "hysteresis_atr": Decimal(str(escalation["deescalation"]["hysteresis_atr"])),
        "atr_multiple": Decimal(str(limits["sizing"]["atr_multiple"])),
    } == FIELD_REFERENCE
