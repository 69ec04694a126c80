"""The leg's |delta|: given by the snapshot, computed with BSM, or intrinsic once expired."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.errors import SnapshotError
from bastion.engine.indicators.greeks import OptionType, bsm_greeks
from bastion.engine.roll import DeltaSource, analyse_roll, leg_abs_delta
from bastion.engine.roll.pricing import years_between
from tests.roll.conftest import EXPIRY, NOW, make_leg, shipped_spec, spec_with

D = Decimal


def test_delta_when_snapshot_gives_one_then_its_size_is_used_as_is() -> None:
    """A given delta wins over the model, whatever its sign convention."""
    for given in (D("-0.4321"), D("0.4321")):
        abs_delta, source = leg_abs_delta(make_leg(delta=given), shipped_spec(), NOW)
        assert (abs_delta, source) == (D("0.4321"), DeltaSource.SNAPSHOT)


def test_delta_when_missing_then_computed_with_bsm_act365_and_policy_rates() -> None:
    """BSM at the leg's IV, ACT/365 from now, r 4 % and q 0 from the policy, 4 decimals."""
    abs_delta, source = leg_abs_delta(make_leg(), shipped_spec(), NOW)
    expected = bsm_greeks(
        "put",
        spot=440,
        strike=445,
        time_years=(EXPIRY - NOW).total_seconds() / (365 * 86400),
        rate=0.04,
        volatility=0.2,
        dividend_yield=0.0,
    ).delta
    assert source is DeltaSource.COMPUTED
    assert abs_delta == round(D(abs(expected)), 4) == D("0.5852")


def test_delta_when_leg_gives_dividend_yield_then_it_overrides_the_policy() -> None:
    """q from the leg (3 %) beats the policy's dividend_yield_pct (here 10 %)."""
    spec = spec_with(dividend_yield_pct=D(10))
    from_leg, _ = leg_abs_delta(make_leg(dividend_yield=D("0.03")), spec, NOW)
    time_years = years_between(NOW, EXPIRY)
    expected = bsm_greeks(
        "put",
        spot=440,
        strike=445,
        time_years=time_years,
        rate=0.04,
        volatility=0.2,
        dividend_yield=0.03,
    ).delta
    assert from_leg == round(D(abs(expected)), 4)
    from_policy, _ = leg_abs_delta(make_leg(), spec, NOW)
    assert from_policy > from_leg  # a higher yield lowers the forward: the put's |Δ| grows


@pytest.mark.parametrize(
    ("option_type", "strike", "expected"),
    [
        (OptionType.PUT, "445", "1"),  # in the money (spot 440)
        (OptionType.PUT, "435", "0"),
        (OptionType.PUT, "440", "0"),  # at the money finishes worthless
        (OptionType.CALL, "435", "1"),
        (OptionType.CALL, "445", "0"),
    ],
)
def test_delta_when_expired_then_intrinsic_one_or_zero(
    option_type: OptionType, strike: str, expected: str
) -> None:
    """After expiry there is no time value: |Δ| is 1 in the money, else 0."""
    leg = make_leg(option_type=option_type, strike=D(strike), expiry=NOW - timedelta(days=2))
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    assert (analysis.abs_delta, analysis.delta_source) == (D(expected), DeltaSource.COMPUTED)
    assert analysis.expired
    assert "expired at 2026-09-29T14:30:00+00:00" in analysis.reasons[0]
    assert len(analysis.candidates) >= 10


def test_analyse_when_expiry_is_exactly_now_then_intrinsic_and_no_crash() -> None:
    """Zero time to expiry is the expired case, not a division by zero."""
    analysis = analyse_roll(make_leg(expiry=NOW), shipped_spec(), NOW)
    assert analysis.abs_delta == D(1)
    assert analysis.urgency == "emergency"
    assert (analysis.current_quote.bid_usd, analysis.current_quote.ask_usd) == (
        D("4.95"),
        D("5.05"),
    )


def test_analyse_when_one_second_to_expiry_then_bsm_still_answers() -> None:
    """A second before expiry BSM is well defined and already ~intrinsic."""
    leg = make_leg(expiry=NOW + timedelta(seconds=1))
    assert analyse_roll(leg, shipped_spec(), NOW).abs_delta == D(1)


def test_delta_when_now_in_another_zone_then_same_instant_same_delta() -> None:
    """Time to expiry is measured between instants, not wall clocks."""
    new_york = timezone(timedelta(hours=-4))
    assert leg_abs_delta(make_leg(), shipped_spec(), NOW.astimezone(new_york)) == leg_abs_delta(
        make_leg(), shipped_spec(), NOW
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"strike": D(0)}, "strike"),
        ({"underlying_price": D("-1")}, "underlying_price"),
        ({"quantity": D(0)}, "quantity"),
        ({"implied_vol": D(25)}, "implied_vol"),  # per cent given where a ratio belongs
        ({"implied_vol": D("NaN")}, "implied_vol"),
        ({"delta": D("1.2")}, "delta"),
        ({"bid": D("2"), "ask": D("1")}, "crossed"),
        ({"expiry": datetime(2026, 10, 16, 20, 0)}, "timezone-aware"),
        ({"strike": 445.0}, "strike"),
        ({"side": "short"}, "side"),
    ],
)
def test_leg_when_invalid_then_snapshot_error_names_the_field(
    changes: dict[str, Any], field: str
) -> None:
    """Unreadable input is refused up front, with the field and the fix."""
    with pytest.raises(SnapshotError, match=field):
        make_leg(**changes)


def test_analyse_when_now_is_naive_then_value_error() -> None:
    """A naive clock is a programmer error, never guessed at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        analyse_roll(make_leg(), shipped_spec(), datetime(2026, 10, 1, 14, 30))
