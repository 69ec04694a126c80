"""Policy fixtures for can_execute: the shipped policies, and copies with changed values.

`policies(protection={...}, limits={...})` writes policies/protection.yaml and
policies/limits.yaml into a temporary folder with the given values changed (nested
mappings merge; None removes a key; `protection=False` / `limits=False` leaves that
policy out; `breakers=True` adds the shipped BreakerPolicy), lints and compiles them.
Limits start from LOOSE_LIMITS — the shipped
limits with every size cap opened up — so that a test tightens only the limit it
is about. Each distinct set is compiled once per session and closed at the end.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from tests.conftest import POLICIES

SHIPPED = {
    stem: yaml.safe_load((POLICIES / f"{stem}.yaml").read_text(encoding="utf-8"))
    for stem in ("protection", "limits")
}

# The baseline of the limit tests: the shipped LimitPolicy with no size cap binding
# (100 % everywhere, no notional / position cap, a generous submit rate, margin allowed).
# Kill switch (10 % drawdown, drift), liquidity (100 000 USD) and trading states as shipped.
LOOSE_LIMITS: dict[str, Any] = {
    "risk": {
        "max_risk_per_trade_pct": 100,
        "max_portfolio_risk_pct": 100,
        "max_open_positions": 100,
        "max_per_asset_pct": 100,
    },
    "orders": {
        "max_notional_per_order_usd": None,
        "max_position_per_symbol_usd": None,
        "submit_rate": "1000/1s",
    },
    "region": {"margin_allowed": True},
}

PolicyFactory = Callable[..., CompiledPolicySet]


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.fixture(scope="session")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyFactory]:
    built: dict[str, CompiledPolicySet] = {}

    def build(
        *,
        protection: Mapping[str, Any] | bool = True,
        limits: Mapping[str, Any] | bool = True,
        loose: bool = True,
        fresh: bool = False,
        breakers: bool = False,
    ) -> CompiledPolicySet:
        key = json.dumps([protection, limits, loose], sort_keys=True)
        if breakers:
            key += "+breakers"
        if fresh:  # a second, independent compile of the same policies
            key += f"#{len(built)}"
        if key in built:
            return built[key]
        folder: Path = tmp_path_factory.mktemp("policies")
        if protection is not False:
            spec = merged(
                SHIPPED["protection"]["spec"], protection if protection is not True else {}
            )
            document = {**SHIPPED["protection"], "spec": spec}
            (folder / "protection.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        if limits is not False:
            base = (
                merged(SHIPPED["limits"]["spec"], LOOSE_LIMITS)
                if loose
                else SHIPPED["limits"]["spec"]
            )
            spec = merged(base, limits if limits is not True else {})
            document = {**SHIPPED["limits"], "spec": spec}
            (folder / "limits.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        if breakers:
            text = (POLICIES / "breakers.yaml").read_text(encoding="utf-8")
            (folder / "breakers.yaml").write_text(text, encoding="utf-8")
        # The set declares the kinds it holds (a folder without bastion.yaml needs all five).
        kinds = [
            kind
            for kind, written in (("ProtectionPolicy", protection), ("LimitPolicy", limits))
            if written is not False
        ] + (["BreakerPolicy"] if breakers else [])
        declaration = {
            "apiVersion": "bastion/v1",
            "kind": "PolicySet",
            "metadata": {"name": "authority-tests"},
            "spec": {"required_kinds": kinds},
        }
        (folder / "bastion.yaml").write_text(yaml.safe_dump(declaration), encoding="utf-8")
        built[key] = compile_policy_set(load_policy_set([folder]))
        return built[key]

    yield build
    for compiled in built.values():
        compiled.close()


@pytest.fixture(scope="session")
def default_policies(policies: PolicyFactory) -> CompiledPolicySet:
    """policies/protection.yaml and the loose limits."""
    return policies()
