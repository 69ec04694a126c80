"""The `size_factor` breaker field: read into the model, bounded, and judged by the guard.

The cut itself is tested in test_breaker_size.py and the golden cases
tests/cases/check/breaker-size-*; lint in tests/cases/lint/breaker-size-factor-*.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.policy.diff_direction import LOOSENS, NEUTRAL, TIGHTENS, Delta, judge
from bastion.engine.policy.kinds import breakers as kind

PATH = ("spec", "breakers", "0", "size_factor")
GENERIC = ("spec", "breakers", "*", "size_factor")


def spec(**fields: Any) -> dict[str, Any]:
    item = {
        "id": "vol",
        "metric": "market.volatility_multiple",
        "comparison": ">=",
        "threshold": 2,
        "action": "reduce_size",
        "severity": "warning",
        "enabled": True,
        **fields,
    }
    return {"defaults": {"cooldown_s": 3600, "reset": "manual"}, "breakers": [item]}


def test_build_when_size_factor_given_then_model_holds_it() -> None:
    """A written factor is kept exactly; the effective factor is that factor."""
    (breaker,) = kind.build(spec(size_factor=0.25)).breakers
    assert breaker.size_factor == Decimal("0.25")
    assert breaker.effective_size_factor == Decimal("0.25")


def test_build_when_size_factor_absent_then_default_half() -> None:
    """Not written: None in the model (lint can tell), 0.5 in effect."""
    (breaker,) = kind.build(spec()).breakers
    assert breaker.size_factor is None
    assert breaker.effective_size_factor == kind.DEFAULT_SIZE_FACTOR == Decimal("0.5")


def test_schema_when_size_factor_read_then_bounded_above_zero_at_most_one() -> None:
    """0 < f ≤ 1: the schema refuses 0 and anything above 1 (lint BST013)."""
    field = kind.BREAKER_SCHEMA["properties"]["size_factor"]
    assert field["exclusiveMinimum"] == 0
    assert field["maximum"] == 1
    assert "default" not in field  # no default written into every breaker's canonical form


@pytest.mark.parametrize(
    ("change", "old", "new", "direction"),
    [
        ("changed", 0.5, 0.9, LOOSENS),
        ("changed", 0.5, 0.25, TIGHTENS),
        ("added", None, 0.9, LOOSENS),
        ("added", None, 0.25, TIGHTENS),
        ("added", None, 0.5, NEUTRAL),
        ("removed", 0.25, None, LOOSENS),
    ],
)
def test_judge_when_size_factor_changes_then_higher_loosens(
    change: str, old: float | None, new: float | None, direction: str
) -> None:
    """A higher factor lets more through (loosens); absent counts as the default 0.5."""
    delta = Delta("BreakerPolicy", PATH, GENERIC, change, old, new, {}, {})
    assert judge(delta).direction == direction
