"""Borrowing: `risk.borrowing` lets max_per_asset_pct pass 100 % of equity, up to
100 × max_leverage; without it the cap applied is never above 100 (fail closed).
"""

from __future__ import annotations

from dataclasses import replace

from bastion.engine.authority import rules as r
from bastion.engine.authority.controls.per_asset import cap_pct
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.policy.kinds.limits import LimitSpec
from tests.authority.builders import SYMBOL, D, decide, request, summary
from tests.authority.conftest import PolicyFactory


def _limits(compiled: CompiledPolicySet) -> LimitSpec:
    pair = compiled.governing_order_rules("gen", SYMBOL, None)
    assert pair.limits is not None
    return pair.limits.spec


def test_per_asset_when_borrowing_allowed_then_exposure_above_equity_approved(
    policies: PolicyFactory,
) -> None:
    """Equity 100 000 USD, cap 200 %: 2 000 units at 100 USD (200 000 USD) pass."""
    compiled = policies(
        limits={
            "risk": {"max_per_asset_pct": 200, "borrowing": {"allowed": True, "max_leverage": 2}}
        }
    )
    assert summary(decide(compiled, request("open", target_size=2000))) == (
        "approved",
        True,
        D(2000),
        (),
    )


def test_per_asset_when_borrowing_allowed_and_above_cap_then_downsized(
    policies: PolicyFactory,
) -> None:
    """One unit over 200 % is cut back to the cap."""
    compiled = policies(
        limits={
            "risk": {"max_per_asset_pct": 200, "borrowing": {"allowed": True, "max_leverage": 2}}
        }
    )
    result = decide(compiled, request("open", target_size=2001))
    assert summary(result) == ("downsized", True, D(2000), ())
    assert "max_per_asset 200 %" in result.reasons[0]


def test_per_asset_when_no_borrowing_then_cap_never_above_100(policies: PolicyFactory) -> None:
    """A spec built without the linter (max 250, no borrowing) still caps at 100 %."""
    spec = replace(_limits(policies()), max_per_asset_pct=D(250))
    assert cap_pct(spec) == 100
    allowed = replace(spec, borrowing_allowed=True, max_leverage=D(2))
    assert cap_pct(allowed) == 200  # and never above 100 × max_leverage


def test_per_asset_when_no_borrowing_then_exposure_above_equity_downsized(
    policies: PolicyFactory,
) -> None:
    """The default: 100 % of equity at most."""
    result = decide(policies(), request("open", target_size=1500))
    assert summary(result) == ("downsized", True, D(1000), ())
    assert r.PER_ASSET not in result.blocking
