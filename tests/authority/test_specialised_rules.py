"""The rules per action (AuthorityRuleset) answer exactly what the rules as written do."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.authority import rules as r
from bastion.engine.authority.request import INCREASING, REDUCING
from bastion.engine.evaluation import compiled as compiled_module
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.policy.vocabulary import ORDER_ACTIONS, TRADING_STATES
from bastion.engine.rules import AllOf, AnyOf, Compare, Not, RuleSpec, compile_rules
from bastion.engine.rules.spec import specialize
from tests.conftest import POLICIES

numbers = st.decimals(min_value=-5, max_value=200_000, places=2, allow_nan=False)


def _fact(draw: Any) -> dict[str, Any]:
    action = draw(st.sampled_from(ORDER_ACTIONS))
    fact: dict[str, Any] = {
        "action": action,
        # a modify adds exposure or not by its sizes: the fact says which
        "increasing": action in INCREASING or (action == "modify" and draw(st.booleans())),
        "reducing": action in REDUCING,
        "trading_state": draw(st.sampled_from(TRADING_STATES)),
        "strategy": draw(st.sampled_from(["", "mean_reversion_v1", "trend_following_v1", "x"])),
        "severity": draw(st.integers(0, 3)),
        "round_trips": draw(st.integers(0, 5)),
        "open_positions": draw(st.integers(0, 40)),
        "submits": draw(st.integers(0, 200)),
    }
    for name in ("sector", "asset_class"):
        fact[name] = draw(st.sampled_from(["", "technology", "energy", "equity", "crypto"]))
    for name in (
        "core",
        "has_score",
        "has_entry",
        "drift",
        "opens_short",
        "off_increment",
        "sector_unknown",
        "asset_class_unknown",
        *r.ORDER_SHAPE_FLAGS,
    ):
        fact[name] = draw(st.booleans())
    for name in r.FIELDS:
        fact.setdefault(name, draw(numbers))
    return fact


facts = st.composite(_fact)()


@pytest.fixture(scope="module")
def shipped() -> Iterator[CompiledPolicySet]:
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    yield compiled
    compiled.close()


@settings(max_examples=400, deadline=None)
@given(fact=facts)
def test_rules_per_action_when_any_fact_then_same_rules_fire_as_written(
    shipped: CompiledPolicySet, fact: dict[str, Any]
) -> None:
    """Every (protection, limit) pair of the shipped policies, against random facts."""
    for pair in shipped.authority.values():
        specs = r.protection_rules(pair.protection.spec) if pair.protection else []
        if pair.limits is not None:
            specs += r.limit_rules(pair.limits.spec)
        else:
            specs += r.trading_state_rules(tuple(r.DEFAULT_ALLOWED.items()))
        with compile_rules(specs) as written:
            assert pair.rules.match_one(fact) == written.match_one(fact)


def test_rules_per_action_when_action_cannot_break_a_limit_then_fact_is_smaller(
    default_policies: CompiledPolicySet,
) -> None:
    """A decrease is matched without the limits only an increase can break."""
    pair = default_policies.governing_order_rules("gen", "SPY", None)
    fields = {action: set(pair.rules.by_action[action].field_keys) for action in ORDER_ACTIONS}
    assert "asset_pct" in fields["open"] and "asset_pct" not in fields["decrease"]
    fixed = [names for action, names in fields.items() if action != "modify"]
    assert not {"action", "increasing", "reducing"} & set().union(*fixed)
    # A modify adds units or not by its sizes: its fact says which, and it reads its rate.
    assert {"increasing", "modifies"} <= fields["modify"] and "submits" not in fields["modify"]
    assert len(fields["cancel"]) < len(fields["decrease"]) < len(fields["open"])


@pytest.mark.parametrize(
    ("condition", "known", "expected"),
    [
        (Compare("action", "==", "open"), {"action": "open"}, True),
        (Compare("action", "!=", "open"), {"action": "open"}, False),
        (Compare("x", ">", 1), {"action": "open"}, Compare("x", ">", 1)),
        (
            AllOf(Compare("action", "==", "open"), Compare("x", ">", 1)),
            {"action": "open"},
            Compare("x", ">", 1),
        ),
        (AllOf(Compare("action", "==", "open"), Compare("x", ">", 1)), {"action": "close"}, False),
        (AnyOf(Compare("action", "==", "open"), Compare("x", ">", 1)), {"action": "open"}, True),
        (
            AnyOf(Compare("action", "==", "open"), Compare("x", ">", 1)),
            {"action": "close"},
            Compare("x", ">", 1),
        ),
        (Not(Compare("increasing", "==", True)), {"increasing": True}, False),
        (
            Not(AllOf(Compare("reducing", "==", True), Compare("x", "<", 2))),
            {"reducing": True},
            Not(Compare("x", "<", 2)),
        ),
        (AllOf(Compare("a", "==", "x"), Compare("b", "==", True)), {"a": "x", "b": True}, True),
        (Compare("action", ">", 1), {"action": "open"}, Compare("action", ">", 1)),  # kept
    ],
)
def test_specialize_when_fields_known_then_decided_or_reduced(
    condition: Any, known: dict[str, Any], expected: Any
) -> None:
    assert specialize(condition, known) == expected


def test_specialize_when_rule_always_holds_for_an_action_then_kept_as_written() -> None:
    """A rule that holds for every fact of an action still fires: kept unspecialised."""
    always = RuleSpec("always", AnyOf(Compare("action", "==", "cancel"), Compare("x", ">", 0)))
    (kept,) = r.specialized([always], "cancel")
    assert kept is always
    assert r.specialized([always], "open") == [RuleSpec("always", Compare("x", ">", 0))]


def test_authority_ruleset_when_closed_then_every_action_closed() -> None:
    rules = r.AuthorityRuleset([RuleSpec("big", Compare("x", ">", Decimal(1)))])
    rules.close()
    assert all(ruleset.closed for ruleset in rules.by_action.values())


def test_governing_order_rules_when_many_symbols_then_cache_bounded(
    shipped: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One cached lookup per (account type, symbol, strategy), but never without bound."""
    monkeypatch.setattr(compiled_module, "GOVERNING_CACHE", 8)
    first = shipped.governing_order_rules("gen", "SPY", None)
    for index in range(50):
        assert shipped.governing_order_rules("gen", f"SYM{index}", None).rules is first.rules
        assert len(shipped._governing) <= 8
    assert shipped.governing_order_rules("gen", "SPY", None) is first
