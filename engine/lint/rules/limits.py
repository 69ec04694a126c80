"""BST502-BST504: limits must be consistent and trading states must mean something."""

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
