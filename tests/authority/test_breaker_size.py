"""reduce_size breakers cut orders: the `breaker.<id>` size limit (controls/breaker_size.py).

While a reduce_size breaker is tripped (or cooling down) for a subject, an order adding
exposure in that subject may add `size_factor` (default 0.5) of the units it asks for;
several covering breakers: the strictest factor. The default snapshot: equity 100 000,
XYZ at 100 USD; the loose limits cut nothing, so every cut here is the breaker's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.state import ARMED, COOLDOWN, TRIPPED, BreakerState, State
from tests.authority.builders import (
    ACCOUNT,
    NOW,
    SYMBOL,
    D,
    account,
    decide,
    market,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import LOOSE_LIMITS, SHIPPED, PolicyFactory, merged

SHIPPED_SET = "default-breakers"
TRIPPED_AT = NOW - timedelta(minutes=5)


def tripped(*keys: str, status: str = TRIPPED) -> State:
    """A state in which the breakers under these keys ("policy:id@scope:id") are in force."""
    return State(breakers={key: BreakerState(status, tripped_at=TRIPPED_AT) for key in keys})


def shipped(breaker: str, subject: str) -> str:
    return f"{SHIPPED_SET}:{breaker}@{subject}"


def breaker(id: str, metric: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "metric": metric,
        "comparison": ">=",
        "threshold": 5,
        "action": "reduce_size",
        **fields,
    }


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A set of the shipped ProtectionPolicy, the loose limits and the given breakers."""
    built: list[CompiledPolicySet] = []

    def build(
        breakers: list[dict[str, Any]],
        *,
        mode: str = "enforce",
        limits: Mapping[str, Any] | None = None,
        limits_mode: str = "enforce",
    ) -> CompiledPolicySet:
        folder: Path = tmp_path_factory.mktemp("breaker-size")
        for stem, spec in (
            ("protection", SHIPPED["protection"]["spec"]),
            ("limits", merged(merged(SHIPPED["limits"]["spec"], LOOSE_LIMITS), limits or {})),
        ):
            document = {**SHIPPED[stem], "spec": spec}
            if stem == "limits":
                document["mode"] = limits_mode
            (folder / f"{stem}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        document = {
            "apiVersion": "bastion/v1",
            "kind": "BreakerPolicy",
            "metadata": {"name": "test-breakers"},
            "mode": mode,
            "spec": {"breakers": breakers},
        }
        (folder / "breakers.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        declaration = {
            "apiVersion": "bastion/v1",
            "kind": "PolicySet",
            "metadata": {"name": "breaker-size-tests"},
            "spec": {  # a kind only in shadow mode cannot be required (BST606)
                "required_kinds": ["ProtectionPolicy"]
                + (["LimitPolicy"] if limits_mode == "enforce" else [])
                + (["BreakerPolicy"] if mode == "enforce" else [])
            },
        }
        (folder / "bastion.yaml").write_text(yaml.safe_dump(declaration), encoding="utf-8")
        built.append(compile_policy_set(load_policy_set([folder])))
        return built[-1]

    yield build
    for compiled in built:
        compiled.close()


@pytest.fixture(scope="module")
def with_breakers(policies: PolicyFactory) -> CompiledPolicySet:
    """The shipped ProtectionPolicy and BreakerPolicy with the loose limits."""
    return policies(breakers=True)


def test_can_execute_when_symbol_breaker_tripped_then_open_is_halved(
    with_breakers: CompiledPolicySet,
) -> None:
    """volatility_spike tripped on XYZ: an open of 30 XYZ becomes 15, the reason says why."""
    result = decide(
        with_breakers,
        request(target_size=30),
        memory=tripped(shipped("volatility_spike", f"symbol:{SYMBOL}")),
    )
    assert summary(result) == ("downsized", True, D(15), ())
    assert result.reasons == (
        "downsized from 30 to 15 units to meet breaker volatility_spike (symbol:XYZ) tripped "
        "at 2026-11-20T15:25:00+00:00: reduce_size × 0.5 allows 15 of the 30 units the "
        "order adds",
    )


def test_can_execute_when_breaker_cooling_down_then_still_cut(
    with_breakers: CompiledPolicySet,
) -> None:
    """A breaker whose condition cleared but whose cooldown runs is still in force."""
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"), status=COOLDOWN)
    result = decide(with_breakers, request(target_size=30), memory=memory)
    assert summary(result) == ("downsized", True, D(15), ())


def test_can_execute_when_breaker_re_armed_then_order_unchanged(
    with_breakers: CompiledPolicySet,
) -> None:
    """A re-armed breaker (still in the state, armed) cuts nothing."""
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"), status=ARMED)
    result = decide(with_breakers, request(target_size=30), memory=memory)
    assert summary(result) == ("approved", True, D(30), ())


def test_can_execute_when_breaker_on_other_symbol_then_order_unchanged(
    with_breakers: CompiledPolicySet,
) -> None:
    """A symbol breaker covers its own symbol only."""
    result = decide(
        with_breakers,
        request(target_size=30),
        memory=tripped(shipped("volatility_spike", "symbol:ABC")),
    )
    assert summary(result) == ("approved", True, D(30), ())


def test_can_execute_when_account_breaker_tripped_then_only_that_account_is_cut(
    with_breakers: CompiledPolicySet,
) -> None:
    """slippage (account scope) tripped for acct-1: its open is halved, acct-2's is not."""
    snap = snapshot(extra_accounts=[account("acct-2")])
    memory = tripped(shipped("slippage", f"account:{ACCOUNT}"))
    mine = decide(with_breakers, request(target_size=30, account_id=ACCOUNT), snap, memory)
    other = decide(with_breakers, request(target_size=30, account_id="acct-2"), snap, memory)
    assert summary(mine) == ("downsized", True, D(15), ())
    assert summary(other) == ("approved", True, D(30), ())


def test_can_execute_when_strategy_breaker_tripped_then_only_its_orders_are_cut(
    with_breakers: CompiledPolicySet,
) -> None:
    """consecutive_losses tripped for meanrev: its opens are halved; other strategies' and
    orders naming no strategy are not."""
    memory = tripped(shipped("consecutive_losses", "strategy:meanrev"))
    ours = decide(with_breakers, request(target_size=30, strategy_id="meanrev"), memory=memory)
    theirs = decide(with_breakers, request(target_size=30, strategy_id="trend"), memory=memory)
    unnamed = decide(with_breakers, request(target_size=30), memory=memory)
    assert summary(ours) == ("downsized", True, D(15), ())
    assert summary(theirs) == ("approved", True, D(30), ())
    assert summary(unnamed) == ("approved", True, D(30), ())


def test_can_execute_when_position_breaker_tripped_then_increase_of_that_position_is_cut(
    custom: Any,
) -> None:
    """A position breaker covers its account, symbol and side: the long's increase from 10
    to 30 may add 10 of its 20 units; a short in the same symbol is not cut."""
    policies = custom([breaker("position_drop", "position.loss_pct")])
    snap = snapshot(positions=[position(quantity=10)])
    memory = tripped(f"test-breakers:position_drop@position:{ACCOUNT}-{SYMBOL}-long-s1")
    increase = decide(policies, request("increase", target_size=30), snap, memory)
    short = decide(policies, request(target_size=30, side="short"), snap, memory)
    assert summary(increase) == ("downsized", True, D(20), ())
    assert summary(short) == ("approved", True, D(30), ())


def test_can_execute_when_portfolio_breaker_tripped_then_every_order_is_cut(
    custom: Any,
) -> None:
    """A portfolio (or system) breaker covers every order that adds exposure."""
    policies = custom([breaker("book_loss", "portfolio.loss_pct")])
    snap = snapshot(markets={SYMBOL: market(), "ABC": market()})
    memory = tripped("test-breakers:book_loss@portfolio:all")
    for symbol in (SYMBOL, "ABC"):
        result = decide(policies, request(symbol=symbol, target_size=30), snap, memory)
        assert summary(result) == ("downsized", True, D(15), ())


def test_can_execute_when_size_factor_set_then_that_share_is_allowed(custom: Any) -> None:
    """size_factor 0.25: an open of 40 may add 10."""
    policies = custom([breaker("vol", "market.volatility_multiple", size_factor=0.25)])
    memory = tripped(f"test-breakers:vol@symbol:{SYMBOL}")
    result = decide(policies, request(target_size=40), memory=memory)
    assert summary(result) == ("downsized", True, D(10), ())
    assert "reduce_size × 0.25 allows 10 of the 40 units" in result.reasons[0]


def test_can_execute_when_several_breakers_cover_then_strictest_factor_wins(
    custom: Any,
) -> None:
    """Factors 0.5 and 0.25 on one order: 0.25 (not the product 0.125); both are named."""
    policies = custom(
        [
            breaker("vol", "market.volatility_multiple", size_factor=0.5),
            breaker("volume", "market.volume_multiple", size_factor=0.25),
        ]
    )
    memory = tripped(f"test-breakers:vol@symbol:{SYMBOL}", f"test-breakers:volume@symbol:{SYMBOL}")
    result = decide(policies, request(target_size=40), memory=memory)
    assert summary(result) == ("downsized", True, D(10), ())
    assert "breaker vol (symbol:XYZ)" in result.reasons[0]
    assert "breaker volume (symbol:XYZ)" in result.reasons[0]


def test_can_execute_when_breaker_policy_in_shadow_mode_then_order_unchanged(
    custom: Any,
) -> None:
    """A shadow-mode BreakerPolicy's trips restrict nothing (as for the trading state)."""
    policies = custom([breaker("vol", "market.volatility_multiple")], mode="shadow")
    memory = tripped(f"test-breakers:vol@symbol:{SYMBOL}")
    result = decide(policies, request(target_size=30), memory=memory)
    assert summary(result) == ("approved", True, D(30), ())


def test_can_execute_when_breaker_disabled_or_gone_then_order_unchanged(custom: Any) -> None:
    """A state entry of a disabled breaker, or of one no longer in the set, cuts nothing."""
    policies = custom([breaker("vol", "market.volatility_multiple", enabled=False)])
    memory = tripped(
        f"test-breakers:vol@symbol:{SYMBOL}",
        f"test-breakers:removed@symbol:{SYMBOL}",
        f"old-breakers:vol@symbol:{SYMBOL}",
    )
    result = decide(policies, request(target_size=30), memory=memory)
    assert summary(result) == ("approved", True, D(30), ())


def test_can_execute_when_breaker_action_is_not_reduce_size_then_no_cut(
    with_breakers: CompiledPolicySet,
) -> None:
    """volume_anomaly (action alert) tripped on XYZ restricts no order."""
    memory = tripped(shipped("volume_anomaly", f"symbol:{SYMBOL}"))
    result = decide(with_breakers, request(target_size=30), memory=memory)
    assert summary(result) == ("approved", True, D(30), ())


@pytest.mark.parametrize(
    ("action", "current", "target"), [("decrease", 30, 10), ("close", 30, None)]
)
def test_can_execute_when_order_reduces_then_breaker_cuts_nothing(
    with_breakers: CompiledPolicySet, action: str, current: int, target: int | None
) -> None:
    """Orders that take exposure off are never cut by a reduce_size breaker."""
    snap = snapshot(positions=[position(quantity=current)])
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"))
    result = decide(with_breakers, request(action, target_size=target), snap, memory)
    assert result.outcome == "approved"


def test_can_execute_when_no_limit_policy_then_breaker_still_cuts(
    policies: PolicyFactory,
) -> None:
    """Without a LimitPolicy the cut still applies (the breakers enforce it)."""
    compiled = policies(limits=False, breakers=True)
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"))
    result = decide(compiled, request(target_size=30), memory=memory)
    assert summary(result) == ("downsized", True, D(15), ())


def test_can_execute_when_on_breach_deny_then_cut_is_a_denial(policies: PolicyFactory) -> None:
    """Under on_breach: deny the order the breaker would cut is denied, naming it."""
    compiled = policies(limits={"on_breach": "deny"}, breakers=True)
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"))
    result = decide(compiled, request(target_size=30), memory=memory)
    assert summary(result) == ("denied", False, None, ("breaker.volatility_spike",))
    assert result.reasons[-1] == "on_breach is deny: denied rather than downsized to 15 units"


def test_can_execute_when_limit_policy_in_shadow_with_deny_then_still_downsized(
    custom: Any,
) -> None:
    """A shadow-mode LimitPolicy neither weakens the cut nor turns it into a denial."""
    policies = custom(
        [breaker("vol", "market.volatility_multiple")],
        limits={"on_breach": "deny"},
        limits_mode="shadow",
    )
    memory = tripped(f"test-breakers:vol@symbol:{SYMBOL}")
    result = decide(policies, request(target_size=30), memory=memory)
    assert summary(result) == ("downsized", True, D(15), ())


def test_can_execute_when_nothing_left_after_increment_then_denied_naming_breaker(
    with_breakers: CompiledPolicySet,
) -> None:
    """Half of 1 unit floored to an increment of 1 is nothing: denied, the breaker named."""
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"))
    result = decide(with_breakers, request(target_size=1, size_increment=1), memory=memory)
    assert summary(result) == ("denied", False, None, ("breaker.volatility_spike",))


def test_can_execute_when_cut_then_audit_trace_has_the_breaker_check(
    with_breakers: CompiledPolicySet,
) -> None:
    """The audit record's trace lists the breaker's failing check with its wording."""
    memory = tripped(shipped("volatility_spike", f"symbol:{SYMBOL}"))
    result = decide(with_breakers, request(target_size=30), memory=memory)
    checks = {check.name: check for check in result.checks}
    assert checks["breaker.volatility_spike"].passed is False
    assert "reduce_size × 0.5" in checks["breaker.volatility_spike"].detail
