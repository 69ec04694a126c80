"""Shared inputs for the roll tests: the shipped policy, a fixed clock, a leg builder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.policy.loader import load_policies
from bastion.engine.roll import OptionLeg, Side
from tests.conftest import POLICIES

# A Thursday; the test clock every roll test shares.
NOW = datetime(2026, 10, 1, 14, 30, tzinfo=UTC)
EXPIRY = datetime(2026, 10, 16, 20, 0, tzinfo=UTC)  # a Friday, 15 days out


@cache
def shipped_spec() -> RollSpec:
    """policies/roll.yaml as the engine sees it."""
    result = load_policies([POLICIES / "roll.yaml"])
    assert not result.findings
    spec = result.policies[0].spec
    assert isinstance(spec, RollSpec)
    return spec


def spec_with(**changes: Any) -> RollSpec:
    return replace(shipped_spec(), **changes)


def make_leg(**changes: Any) -> OptionLeg:
    """A short SPY put, 445 strike, 15 days out, spot 440, IV 20 %; override any field."""
    fields: dict[str, Any] = {
        "symbol": "SPY",
        "option_type": OptionType.PUT,
        "side": Side.SHORT,
        "strike": Decimal(445),
        "expiry": EXPIRY,
        "quantity": Decimal(1),
        "underlying_price": Decimal(440),
        "implied_vol": Decimal("0.20"),
    }
    fields.update(changes)
    return OptionLeg(**fields)
