"""BST502-BST505: limits must be consistent and trading states must mean something."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.model import Policy

_NEW_RISK = ("open", "increase")


def check(policy: Policy) -> Iterator[Finding]:
    spec: LimitSpec = policy.spec
    if spec.max_risk_per_trade_pct > spec.max_portfolio_risk_pct:
        yield finding(
            policy,
            "BST502",
            "/spec/risk/max_risk_per_trade_pct",
            f"max_risk_per_trade_pct {spec.max_risk_per_trade_pct} is above "
            f"max_portfolio_risk_pct {spec.max_portfolio_risk_pct}",
        )
    allowed = dict(spec.allowed_actions)
    for state in ("REDUCING", "HALTED"):
        bad = [action for action in _NEW_RISK if action in allowed[state]]
        if bad:
            yield finding(
                policy,
                "BST503",
                f"/spec/trading_states/{state}",
                f"{state} allows {', '.join(bad)}, which adds risk; {state} must not",
            )
    missing = [action for action in ("close", "cancel") if action not in allowed["ACTIVE"]]
    if missing:
        yield finding(
            policy,
            "BST504",
            "/spec/trading_states/ACTIVE",
            f"ACTIVE does not allow {', '.join(missing)}: positions could not be exited",
        )
    yield from _sector_caps(policy, spec)


def _sector_caps(policy: Policy, spec: LimitSpec) -> Iterator[Finding]:
    """BST505: sectors classify equities, so a sector cap above the equity asset-class
    cap never binds (the equities together are already held below it)."""
    classes = dict(spec.max_per_asset_class_pct)
    equity = classes.get("equity", classes.get("*"))
    if equity is None:
        return
    for sector, cap in spec.max_per_sector_pct:
        if cap > equity:
            yield finding(
                policy,
                "BST505",
                f"/spec/risk/max_per_sector_pct/{sector.replace('~', '~0').replace('/', '~1')}",
                f"sector cap {sector} {cap} % is above the equity asset-class cap {equity} %: "
                "it never binds",
            )
