"""The controls registry: one module per control, one shape, the check order kept."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.authority import controls
from bastion.engine.authority import rules as r
from bastion.engine.authority.controls.base import Limit, Protection
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.rules import compile_rules
from bastion.engine.snapshot import Snapshot, validate_snapshot
from tests.authority.builders import (
    D,
    decide,
    market,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import PolicyFactory
from tests.authority.test_paths_agree import cases as path_cases

SECTOR_CAPS = {"risk": {"max_per_sector_pct": {"technology": 20, "*": 30}}}
INSTRUMENTS = {
    "XYZ": {"asset_class": "equity", "sector": "technology"},
    "ABC": {"asset_class": "equity", "sector": "technology"},
    "OIL": {"asset_class": "equity", "sector": "energy"},
}


def _clock() -> Callable[[], int]:
    ticks = itertools.count(10**9, 1_000)
    return lambda: next(ticks)


def _sector_snapshot(instruments: dict[str, Any] | None = None) -> Snapshot:
    """technology holds 15,000 USD (ABC), energy 10,000 (OIL); equity 100,000."""
    document = snapshot(
        positions=[position("ABC", 150), position("OIL", 100)],
        markets={"XYZ": market(), "ABC": market(), "OIL": market()},
    ).to_dict()
    document["instruments"] = INSTRUMENTS if instruments is None else instruments
    return validate_snapshot(document)


def test_registry_when_listed_then_the_check_order_of_the_limits_is_kept() -> None:
    """The limits that block come first, then the size limits, as before the restructure."""
    assert r.LIMIT_ORDER == (
        r.KILL_DRAWDOWN,
        r.KILL_DRIFT,
        r.EXPIRY,
        r.REDUCE_ONLY,
        r.INSTRUMENT_PRICE,
        r.SHORTING,
        r.LIQUIDITY,
        r.OPEN_POSITIONS,
        r.SUBMIT_RATE,
        r.MODIFY_RATE,
        r.MIN_QUANTITY,
        r.MIN_NOTIONAL,
        r.TRADE_RISK,
        r.PORTFOLIO_RISK,
        r.PER_ASSET,
        r.PER_STRATEGY,
        r.PER_SECTOR,
        r.PER_ASSET_CLASS,
        r.ORDER_NOTIONAL,
        r.MAX_NOTIONAL,
        r.MAX_QUANTITY,
        r.SYMBOL_POSITION,
        r.MARGIN,
        r.SIZE_INCREMENT,
        r.LOT_SIZE,
    )
    assert set(r.BLOCKING_LIMITS) == {c.id for c in controls.LIMITS if c.blocking}


def test_registry_when_read_then_every_control_has_the_one_shape() -> None:
    """Each control names its id, the fact fields it reads (all in FIELDS) and its wording."""
    ids = [c.id for c in (*controls.PROTECTIONS.values(), controls.TRADING_STATE, *controls.LIMITS)]
    assert len(ids) == len(set(ids))
    for control in controls.PROTECTIONS.values():
        assert isinstance(control, Protection) and control.label
    for limit in controls.LIMITS:
        assert isinstance(limit, Limit)
        assert limit.fields and set(limit.fields) <= set(r.FIELDS), limit.id
        assert limit.shown_field in limit.fields, limit.id


def test_sector_cap_when_within_then_passing_check_worded_in_the_trace(
    policies: PolicyFactory,
) -> None:
    """A recorded check shows the sector, its exposure after the order and the cap."""
    compiled = policies(limits=SECTOR_CAPS)
    result = decide(
        compiled, request("open", target_size=10), _sector_snapshot(), clock_ns=_clock()
    )
    assert summary(result) == ("approved", True, D(10), ())
    (check,) = [c for c in result.checks if c.name == r.PER_SECTOR]
    assert check.passed and check.detail == "sector technology: sector_pct 16 ≤ 20"


def test_sector_cap_when_every_sector_cap_then_energy_capped_too(
    policies: PolicyFactory,
) -> None:
    """The "*" cap holds every sector not named: energy at 30 % of 100,000."""
    compiled = policies(limits=SECTOR_CAPS)
    result = decide(compiled, request("increase", "OIL", target_size=400), _sector_snapshot())
    assert summary(result) == ("downsized", True, D(300), ())
    assert "sector energy exposure 40000 USD > max_per_sector 30 % (30000 USD)" in result.reason


def test_sector_cap_when_equity_without_sector_then_denied_fail_closed(
    policies: PolicyFactory,
) -> None:
    """An equity instrument with no sector may be in a capped sector: denied."""
    instruments = {**INSTRUMENTS, "XYZ": {"asset_class": "equity"}}
    result = decide(
        policies(limits=SECTOR_CAPS), request("open", target_size=1), _sector_snapshot(instruments)
    )
    assert summary(result) == ("denied", False, None, (r.PER_SECTOR,))
    assert "fail closed" in result.reason


def test_sector_rules_when_specialised_then_same_answers_as_written(
    policies: PolicyFactory,
) -> None:
    """The per-action rulesets of a sector-capped pair fire what the rules as written do."""
    compiled: CompiledPolicySet = policies(limits=SECTOR_CAPS)
    pair = compiled.governing_order_rules("gen", "XYZ", None)
    assert pair.limits is not None
    specs = r.limit_rules(pair.limits.spec)
    base: dict[str, Any] = {name: Decimal(0) for name in r.FIELDS}
    base.update(strategy="", trading_state="ACTIVE", off_increment=False, core=False)
    base.update(drift=False, opens_short=False, has_score=False, has_entry=False)
    base.update(sector_unknown=False, asset_class_unknown=False, asset_class="equity")
    base.update(dict.fromkeys(r.ORDER_SHAPE_FLAGS, False))
    with compile_rules(specs) as written:
        for action, sector, pct, unknown in itertools.product(
            ("open", "increase", "decrease"),
            ("", "technology", "energy"),
            (10, 25, 35),
            (False, True),
        ):
            fact = {
                **base,
                "action": action,
                "increasing": action != "decrease",
                "reducing": action == "decrease",
                "sector": sector,
                "sector_pct": Decimal(pct),
                "sector_unknown": unknown,
            }
            assert pair.rules.match_one(fact) == written.match_one(fact), fact


@pytest.mark.parametrize("on_breach", ["downsize", "deny"])
def test_on_breach_when_order_over_notional_then_downsized_or_denied(
    policies: PolicyFactory, on_breach: str
) -> None:
    """downsize (the default) cuts the order to the limit; deny refuses it, saying so."""
    limits = {"orders": {"max_notional_per_order_usd": 1000}, "on_breach": on_breach}
    result = decide(policies(limits=limits), request("open", target_size=15))
    if on_breach == "downsize":
        assert summary(result) == ("downsized", True, D(10), ())
    else:
        assert summary(result) == ("denied", False, None, (r.ORDER_NOTIONAL,))
        assert result.reasons[-1] == "on_breach is deny: denied rather than downsized to 10 units"


def test_on_breach_deny_when_order_within_every_limit_then_approved(
    policies: PolicyFactory,
) -> None:
    """deny changes nothing for an order no size limit touches."""
    limits = {"orders": {"max_notional_per_order_usd": 1000}, "on_breach": "deny"}
    result = decide(policies(limits=limits), request("open", target_size=10))
    assert summary(result) == ("approved", True, D(10), ())


@st.composite
def grouped_cases(draw: Any) -> tuple[Any, Any, Any, Any]:
    """A case of test_paths_agree with instruments, sector caps and on_breach drawn too."""
    order, snap, memory = draw(path_cases())
    document = snap.to_dict()
    document["instruments"] = draw(
        st.sampled_from(
            [
                {},
                {"XYZ": {"asset_class": "equity", "sector": "technology"}},
                {"XYZ": {"asset_class": "equity"}, "SPY": {"asset_class": "equity"}},
                {"XYZ": {"asset_class": "crypto"}},
            ]
        )
    )
    if draw(st.booleans()):  # a size that is off the increment
        order = replace(order, size_increment=D("0.7"))
    limits = {
        "risk": {
            "max_per_sector_pct": draw(st.sampled_from([{}, {"technology": 1}, {"*": 3}])),
            "max_per_asset_class_pct": draw(st.sampled_from([{}, {"equity": 2, "*": 50}])),
        },
        "on_breach": draw(st.sampled_from(["downsize", "deny"])),
    }
    return limits, order, validate_snapshot(document), memory


@settings(max_examples=150, deadline=None)
@given(case=grouped_cases())
def test_fast_and_recorded_paths_when_group_caps_and_on_breach_then_same_answer(
    policies: PolicyFactory, case: tuple[Any, Any, Any, Any]
) -> None:
    """The new controls decide alike on the fast path and the recorded one."""
    limits, order, snap, memory = case
    compiled = policies(limits=limits, loose=False)
    fast = decide(compiled, order, snap, memory)
    clocked = decide(compiled, order, snap, memory, clock_ns=_clock())
    assert summary(fast) == summary(clocked)
    assert fast.reasons == clocked.reasons == fast.decision.reasons
    assert [c.name for c in fast.checks] == [c.name for c in clocked.checks]
    failed = {check.name for check in fast.checks if not check.passed}
    assert set(fast.blocking) <= failed | {"error"}
    assert "error" not in fast.blocking, fast.reasons
