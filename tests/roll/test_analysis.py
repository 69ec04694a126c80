"""analyse_roll end to end: reasons, ranking, determinism, JSON output, random legs."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from decimal import ROUND_DOWN, Context, Decimal, localcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll import (
    MIN_CANDIDATES,
    URGENCIES,
    OptionLeg,
    Side,
    analyse_roll,
    rank_key,
)
from tests.roll.conftest import NOW, make_leg, shipped_spec, spec_with

D = Decimal


def test_analyse_when_high_and_every_in_band_roll_costs_too_much_then_no_economic_roll() -> None:
    """The reason names the most economical in-band candidate, its debit and the maximum."""
    analysis = analyse_roll(make_leg(strike=D(450), delta=D("0.55")), shipped_spec(), NOW)
    assert analysis.urgency == "high"
    assert analysis.recommended is None
    assert analysis.reasons[-1] == (
        "no economic roll: the best in-band candidate (SPY 2026-11-27 P 430, |Δ| 0.3412) "
        "costs a $4.74 debit, above the $0.50 maximum"
    )


def test_analyse_when_medium_and_best_roll_is_a_debit_then_says_a_credit_is_needed() -> None:
    """At medium urgency a debit never qualifies, however small."""
    analysis = analyse_roll(make_leg(strike=D(443), delta=D("0.42")), shipped_spec(), NOW)
    assert analysis.recommended is None
    assert analysis.reasons[-1] == (
        "no economic roll: the best in-band candidate (SPY 2026-11-27 P 430, |Δ| 0.3412) "
        "costs a $0.28 debit; medium urgency rolls only for a net credit of at least $0.10"
    )


def test_analyse_when_credit_below_minimum_by_less_than_a_cent_then_shows_four_decimals() -> None:
    """A $0.2664 credit against a $0.27 minimum is not printed as "$0.27 … below $0.27"."""
    spec = spec_with(min_net_credit_usd=D("0.27"))
    analysis = analyse_roll(make_leg(strike=D(442), delta=D("0.42")), spec, NOW)
    assert analysis.recommended is None
    assert analysis.reasons[-1].endswith("yields a $0.2664 net credit, below the $0.27 minimum")


def test_analyse_when_no_candidate_in_band_then_no_recommendation_and_says_so() -> None:
    """An emergency with an unreachable band asks for a manual close or hedge."""
    spec = spec_with(min_abs_delta=D("0.25"), max_abs_delta=D("0.25"))
    analysis = analyse_roll(make_leg(strike=D(480)), spec, NOW)
    assert analysis.urgency == "emergency" and analysis.recommended is None
    assert analysis.reasons[-1] == (
        "no roll recommended: none of the 60 candidates lands in the |Δ| band 0.25–0.25 "
        "— close or hedge by hand"
    )


def test_analyse_when_ranked_then_keys_never_decrease_and_the_pick_is_first() -> None:
    """Acceptable, in band, rest; then |Δ| to target, credit, P(ITM), expiry, strike."""
    analysis = analyse_roll(
        make_leg(strike=D(443), bid=D("8.28"), ask=D("8.48")), shipped_spec(), NOW
    )
    target = shipped_spec().target_abs_delta
    keys = [rank_key(candidate, target) for candidate in analysis.candidates]
    assert all(a < b for a, b in itertools.pairwise(keys))  # strict: a total order
    assert analysis.recommended is analysis.candidates[0]
    groups = [key[0] for key in keys]
    assert groups[0] == 0 and 1 in groups and 2 in groups


def test_analyse_when_run_twice_or_under_another_decimal_context_then_identical() -> None:
    """Same inputs, same output: equal records and byte-identical JSON."""
    leg = make_leg(strike=D(443), bid=D("8.28"), ask=D("8.48"), dividend_yield=D("0.013"))
    first = analyse_roll(leg, shipped_spec(), NOW)
    with localcontext(Context(prec=6, rounding=ROUND_DOWN)):
        second = analyse_roll(leg, shipped_spec(), NOW)
    assert first == second
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())


def test_to_dict_when_rendered_then_json_ready_with_decimals_as_strings() -> None:
    """Money and ratios are strings (no float rounding); flags stay booleans."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW)
    data = json.loads(json.dumps(analysis.to_dict()))
    assert data["abs_delta"] == "0.5852"
    assert data["delta_source"] == "computed"
    assert data["urgency"] == "high"
    assert data["leg"]["contract"] == "SPY 2026-10-16 P 445"
    assert data["current_quote"] == {
        "bid_usd": "9.43",  # model value 9.5280 ± 1 %, rounded outward to the cent
        "ask_usd": "9.63",
        "mid_usd": "9.53",
        "spread_usd": "0.20",
        "source": "model",
    }
    candidate = data["candidates"][0]
    assert isinstance(candidate["net_credit_usd"], str)
    assert isinstance(candidate["in_band"], bool)
    assert data["recommended"] is None  # high urgency, every in-band roll a big debit
    assert data["reasons"] == list(analysis.reasons)


# -- property: random valid legs and policies ----------------------------------------------

prices = st.decimals(min_value="0.05", max_value="5000", places=2)


@st.composite
def legs(draw: st.DrawFn) -> OptionLeg:
    bid = draw(st.none() | st.decimals(min_value="0", max_value="500", places=2))
    ask = None if bid is None else bid + draw(st.decimals(min_value="0", max_value="5", places=2))
    return OptionLeg(
        symbol="XYZ",
        option_type=draw(st.sampled_from(OptionType)),
        side=draw(st.sampled_from(Side)),
        strike=draw(prices),
        expiry=NOW + timedelta(seconds=draw(st.integers(-30 * 86400, 400 * 86400))),
        quantity=draw(st.decimals(min_value="1", max_value="500", places=0)),
        underlying_price=draw(prices),
        implied_vol=draw(st.decimals(min_value="0.01", max_value="3", places=4)),
        dividend_yield=draw(st.none() | st.decimals(min_value="-0.02", max_value="0.2", places=4)),
        delta=draw(st.none() | st.decimals(min_value="-1", max_value="1", places=4)),
        bid=bid,
        ask=ask,
    )


@st.composite
def specs(draw: st.DrawFn) -> RollSpec:
    band = sorted(draw(st.lists(st.decimals("0.01", "0.99", places=2), min_size=3, max_size=3)))
    changes: dict[str, Any] = {
        "min_abs_delta": band[0],
        "target_abs_delta": band[1],
        "max_abs_delta": band[2],
        "min_dte_days": draw(st.integers(0, 90)),
        "max_dte_days": draw(st.integers(1, 120)),
        "strikes_per_expiry": draw(st.integers(1, 12)),
        "risk_free_rate_pct": draw(st.decimals("0", "10", places=2)),
    }
    return spec_with(**changes)


@settings(max_examples=150, deadline=None)
@given(legs(), specs())
def test_analyse_when_random_valid_leg_then_never_raises_and_pick_is_in_band(
    leg: OptionLeg, spec: RollSpec
) -> None:
    """Any valid leg and policy: ≥ 10 candidates, JSON-ready, a pick only if in band."""
    analysis = analyse_roll(leg, spec, NOW)
    assert analysis.urgency in URGENCIES
    assert len(analysis.candidates) >= MIN_CANDIDATES
    assert all(candidate.strike > 0 for candidate in analysis.candidates)
    if analysis.recommended is not None:
        assert analysis.recommended.in_band and analysis.recommended.acceptable
        assert spec.min_abs_delta <= analysis.recommended.abs_delta <= spec.max_abs_delta
        assert analysis.recommended is analysis.candidates[0]
    json.dumps(analysis.to_dict())
