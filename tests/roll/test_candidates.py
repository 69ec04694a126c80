"""The synthetic chain: Friday expiries in the DTE window, strikes around the target delta."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.roll import MIN_CANDIDATES, RollCandidate, analyse_roll
from bastion.engine.roll.chain import candidate_expiries, strike_ladder
from bastion.engine.roll.pricing import strike_increment
from tests.roll.conftest import NOW, make_leg, shipped_spec, spec_with

D = Decimal


def by_expiry(candidates: tuple[RollCandidate, ...]) -> dict[datetime, list[RollCandidate]]:
    groups: dict[datetime, list[RollCandidate]] = defaultdict(list)
    for candidate in candidates:
        groups[candidate.expiry].append(candidate)
    return {expiry: sorted(group, key=lambda c: c.strike) for expiry, group in groups.items()}


def test_chain_when_shipped_policy_then_six_fridays_of_ten_strikes() -> None:
    """21–60 DTE from Thursday 2026-10-01 holds six Fridays (22 … 57 DTE), 10 strikes each."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW)
    groups = by_expiry(analysis.candidates)
    assert len(analysis.candidates) == 60 >= MIN_CANDIDATES
    assert sorted(group[0].dte_days for group in groups.values()) == [22, 29, 36, 43, 50, 57]
    for expiry, group in groups.items():
        assert expiry.weekday() == 4  # Friday
        assert expiry.timetz() == make_leg().expiry.timetz()  # the current contract's time
        assert len(group) == 10
        assert {candidate.option_type for candidate in group} == {OptionType.PUT}


def test_chain_when_one_strike_per_expiry_and_one_expiry_then_still_ten_candidates() -> None:
    """The strike count per expiry is raised until the chain holds at least ten."""
    spec = spec_with(strikes_per_expiry=1, min_dte_days=22, max_dte_days=22)
    analysis = analyse_roll(make_leg(), spec, NOW)
    assert len(analysis.candidates) == 10
    assert {candidate.dte_days for candidate in analysis.candidates} == {22}


def test_chain_when_window_holds_no_friday_then_next_friday_and_reason_says_so() -> None:
    """A 30–30 DTE window lands on a Saturday: the Friday after it (36 DTE) is used."""
    spec = spec_with(min_dte_days=30, max_dte_days=30)
    analysis = analyse_roll(make_leg(), spec, NOW)
    assert {candidate.dte_days for candidate in analysis.candidates} == {36}
    assert len(analysis.candidates) >= MIN_CANDIDATES
    assert "no Friday lies 30–30 days out, so the next one (36 DTE) is used" in analysis.reasons[2]


def test_chain_when_window_starts_today_after_the_close_then_today_is_skipped() -> None:
    """A 0-DTE Friday whose expiry time has passed is no candidate."""
    friday_evening = datetime(2026, 10, 2, 21, 0, tzinfo=UTC)
    expiries, outside = candidate_expiries(friday_evening, make_leg().expiry, 0, 7)
    assert [expiry.date().isoformat() for expiry in expiries] == ["2026-10-09"]
    assert not outside


def test_expiries_when_leg_expires_in_new_york_time_then_candidates_keep_its_zone() -> None:
    """Candidate expiries take the current contract's time of day and UTC offset."""
    new_york = timezone(timedelta(hours=-4))
    leg = make_leg(expiry=datetime(2026, 10, 16, 16, 0, tzinfo=new_york))
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    assert {candidate.expiry.timetz() for candidate in analysis.candidates} == {leg.expiry.timetz()}


def test_strikes_when_synthesized_then_on_the_increment_and_centred_on_the_target_delta() -> None:
    """Per expiry: $5 strikes (spot 440); the |Δ| nearest 0.25 sits mid-ladder (index 5)."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW)
    target = shipped_spec().target_abs_delta
    for group in by_expiry(analysis.candidates).values():
        strikes = [candidate.strike for candidate in group]
        assert all(strike % 5 == 0 for strike in strikes)
        assert [b - a for a, b in itertools.pairwise(strikes)] == [D(5)] * 9
        nearest = min(group, key=lambda candidate: abs(candidate.abs_delta - target))
        assert nearest is group[5]  # ladder: centre, −1, +1, …, −5 → centre − 5 … centre + 4


def test_strikes_when_call_leg_then_calls_above_spot() -> None:
    """A call leg gets call candidates; a 0.25-delta call is out of the money (above spot)."""
    leg = make_leg(option_type=OptionType.CALL, strike=D(430))
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    assert {candidate.option_type for candidate in analysis.candidates} == {OptionType.CALL}
    assert analysis.recommended is None or analysis.recommended.strike > 440


def test_chain_when_current_contract_is_on_the_ladder_then_it_is_skipped() -> None:
    """Rolling into the same contract is no roll: it is replaced by the next strike out."""
    same_expiry = datetime(2026, 10, 30, 20, 0, tzinfo=UTC)
    first = analyse_roll(make_leg(expiry=same_expiry), shipped_spec(), NOW)
    on_ladder = by_expiry(first.candidates)[same_expiry][5].strike
    analysis = analyse_roll(make_leg(expiry=same_expiry, strike=on_ladder), shipped_spec(), NOW)
    group = by_expiry(analysis.candidates)[same_expiry]
    assert len(group) == 10
    assert on_ladder not in {candidate.strike for candidate in group}


@pytest.mark.parametrize(
    ("price", "increment"),
    [
        ("24.99", "0.5"),
        ("25", "1"),
        ("199.99", "1"),
        ("200", "5"),
        ("999.99", "5"),
        ("1000", "10"),
    ],
)
def test_strike_increment_when_price_at_a_tier_edge_then_standard_step(
    price: str, increment: str
) -> None:
    """$0.50 below $25, $1 below $200, $5 below $1,000, else $10."""
    assert strike_increment(D(price)) == D(increment)


def test_strike_ladder_when_centre_near_zero_then_only_positive_strikes() -> None:
    """Strikes at or below zero are skipped and the ladder grows upward instead."""
    assert strike_ladder(D("0.5"), D("0.5"), 4) == (D("0.5"), D("1.0"), D("1.5"), D("2.0"))


def test_chain_when_penny_underlying_then_still_ten_positive_strikes() -> None:
    """A $0.40 stock still gets a ten-strike chain on the $0.50 grid, all above zero."""
    leg = make_leg(strike=D("0.5"), underlying_price=D("0.40"), implied_vol=D("1.2"))
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    assert len(analysis.candidates) >= MIN_CANDIDATES
    assert all(candidate.strike > 0 for candidate in analysis.candidates)
