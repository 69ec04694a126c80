"""Black–Scholes–Merton greeks: textbook values, an independent reference, identities, IV."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bastion.engine.errors import DataError
from bastion.engine.indicators.greeks import (
    Greeks,
    ImpliedVolatilityError,
    OptionType,
    bsm_greeks,
    bsm_greeks_array,
    bsm_price,
    implied_volatility,
    norm_cdf,
    norm_cdf_array,
)

# -- an independent reference -------------------------------------------------------------
# Written from different identities on purpose: the forward form of the price, the CDF
# from erf (not erfc), gamma and vega through K·e^(−rT)·φ(d2) (= S·e^(−qT)·φ(d1)), and
# theta from the Black–Scholes PDE rather than from its closed form.


def ref_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ref_pdf(x: float) -> float:
    return math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def reference(
    kind: str, s: float, k: float, t: float, r: float, q: float, v: float
) -> dict[str, float]:
    forward = s * math.exp((r - q) * t)
    d1 = (math.log(forward / k) + v * v * t / 2.0) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    discount = math.exp(-r * t)
    if kind == "call":
        price = discount * (forward * ref_cdf(d1) - k * ref_cdf(d2))
        delta = math.exp(-q * t) * ref_cdf(d1)
        rho = k * t * discount * ref_cdf(d2)
    else:
        price = discount * (k * ref_cdf(-d2) - forward * ref_cdf(-d1))
        delta = math.exp(-q * t) * (ref_cdf(d1) - 1.0)
        rho = -k * t * discount * ref_cdf(-d2)
    gamma = k * discount * ref_pdf(d2) / (s * s * v * math.sqrt(t))
    vega = k * discount * ref_pdf(d2) * math.sqrt(t)
    theta = r * price - (r - q) * s * delta - 0.5 * v * v * s * s * gamma  # BSM PDE
    return {
        "price": price,
        "delta": delta,
        "gamma": gamma,
        "vega": vega,
        "theta": theta,
        "rho": rho,
    }


def greeks(kind: str, s: float, k: float, t: float, r: float, q: float, v: float) -> Greeks:
    return bsm_greeks(kind, spot=s, strike=k, time_years=t, rate=r, volatility=v, dividend_yield=q)


# -- textbook values (Hull, Options, Futures and Other Derivatives) -------------------------


def test_bsm_price_when_hull_example_then_call_4_76_put_0_81() -> None:
    """Hull: S=42, K=40, r=10%, σ=20%, T=0.5 gives c = 4.76 and p = 0.81."""
    inputs = {"spot": 42, "strike": 40, "time_years": 0.5, "rate": 0.1, "volatility": 0.2}
    assert round(bsm_price("call", **inputs), 2) == 4.76
    assert round(bsm_price("put", **inputs), 2) == 0.81


def test_bsm_greeks_when_hull_delta_hedging_example_then_textbook_greeks() -> None:
    """Hull's running example: S=49, K=50, r=5%, σ=20%, T=20 weeks."""
    g = greeks("call", 49, 50, 20 / 52, 0.05, 0.0, 0.2)
    assert round(g.price, 2) == 2.40
    assert round(g.delta, 3) == 0.522
    assert round(g.gamma, 3) == 0.066
    assert round(g.theta_per_year, 2) == -4.31
    assert round(g.theta_per_day, 4) == -0.0118  # per calendar day
    assert round(g.vega_per_unit, 1) == 12.1
    assert round(g.vega_per_point, 3) == 0.121  # per 1 vol point
    assert round(g.rho_per_unit, 2) == 8.91


def test_bsm_price_when_hull_index_option_with_yield_then_51_83() -> None:
    """Hull: index 930, K=900, r=8%, q=3%, σ=20%, two months: c = 51.83."""
    price = bsm_price(
        "call",
        spot=930,
        strike=900,
        time_years=2 / 12,
        rate=0.08,
        volatility=0.2,
        dividend_yield=0.03,
    )
    assert round(price, 2) == 51.83


def test_implied_volatility_when_hull_example_then_about_23_5_percent() -> None:
    """Hull: a call at 1.875 with S=21, K=20, r=10%, T=0.25 implies σ ≈ 0.235."""
    sigma = implied_volatility(1.875, "call", spot=21, strike=20, time_years=0.25, rate=0.1)
    assert round(sigma, 3) == 0.235


# -- agreement with the reference, identities -------------------------------------------------

Market = tuple[str, float, float, float, float, float, float]
markets = st.tuples(
    st.sampled_from(["call", "put"]),
    st.floats(1.0, 1000.0),  # spot
    st.floats(0.5, 2.0),  # strike / spot
    st.floats(1 / 365, 5.0),  # years
    st.floats(-0.01, 0.15),  # rate
    st.floats(0.0, 0.1),  # dividend yield
    st.floats(0.05, 1.5),  # volatility
)


@given(markets)
def test_bsm_greeks_when_any_market_then_agree_with_reference_to_1e_10(market: Market) -> None:
    """Every output matches the independent reference within 1e-10."""
    kind, s, moneyness, t, r, q, v = market
    k = s * moneyness
    ours, ref = greeks(kind, s, k, t, r, q, v), reference(kind, s, k, t, r, q, v)
    scale = max(1.0, s)
    for name, value in (
        ("price", ours.price),
        ("delta", ours.delta),
        ("gamma", ours.gamma),
        ("vega", ours.vega_per_unit),
        ("theta", ours.theta_per_year),
        ("rho", ours.rho_per_unit),
    ):
        assert math.isclose(value, ref[name], rel_tol=1e-10, abs_tol=1e-10 * scale), name


@given(markets)
# Far out of the money: the put's two subnormal terms once differed by -5e-324.
@example(("call", 1.0, 0.5, 0.06446161794416626, 0.078125, 0.0625, 0.07123391871381624))
def test_bsm_greeks_when_any_market_then_identities_hold(market: Market) -> None:
    """Put–call parity, delta bounds and parity, shared gamma and vega ≥ 0."""
    _, s, moneyness, t, r, q, v = market
    k = s * moneyness
    call, put = greeks("call", s, k, t, r, q, v), greeks("put", s, k, t, r, q, v)
    carry = math.exp(-q * t)
    tolerance = 1e-10 * max(1.0, s)
    assert abs((call.price - put.price) - (s * carry - k * math.exp(-r * t))) <= tolerance
    assert 0.0 <= call.delta <= carry and -carry <= put.delta <= 0.0
    assert abs((call.delta - put.delta) - carry) <= 1e-12
    assert math.isclose(call.gamma, put.gamma, rel_tol=1e-12, abs_tol=1e-300)
    assert call.vega_per_unit == put.vega_per_unit >= 0.0
    assert call.price >= 0.0 and put.price >= 0.0


@given(st.floats(1.0, 1000.0), st.floats(-3.0, 3.0), st.floats(7 / 365, 3.0), st.floats(0.05, 1.0))
def test_bsm_greeks_when_strike_within_three_sigma_then_vega_and_gamma_positive(
    s: float, z: float, t: float, v: float
) -> None:
    """Where the density does not underflow, vega and gamma are strictly positive."""
    k = s * math.exp(z * v * math.sqrt(t))
    g = greeks("call", s, k, t, 0.03, 0.01, v)
    assert g.vega_per_unit > 0.0 and g.gamma > 0.0


def test_bsm_greeks_when_bumped_then_match_finite_differences() -> None:
    """Signs and units: theta is −∂V/∂T per year, vega per 1.00 σ, rho per 1.00 r."""
    base = {
        "spot": 100.0,
        "strike": 105.0,
        "time_years": 0.75,
        "rate": 0.04,
        "dividend_yield": 0.02,
    }
    for kind in OptionType:

        def price(**bump: float) -> float:
            return bsm_price(kind, **({**base, "volatility": 0.25} | bump))  # noqa: B023

        g = bsm_greeks(kind, volatility=0.25, **base)
        h = 1e-4
        s, t, r = base["spot"], base["time_years"], base["rate"]
        assert math.isclose(
            g.delta, (price(spot=s + h) - price(spot=s - h)) / (2 * h), rel_tol=1e-6
        )
        assert math.isclose(
            g.vega_per_unit,
            (price(volatility=0.25 + h) - price(volatility=0.25 - h)) / (2 * h),
            rel_tol=1e-6,
        )
        assert math.isclose(
            g.theta_per_year,
            -(price(time_years=t + h) - price(time_years=t - h)) / (2 * h),
            rel_tol=1e-6,
        )
        assert math.isclose(
            g.rho_per_unit, (price(rate=r + h) - price(rate=r - h)) / (2 * h), rel_tol=1e-6
        )


def test_bsm_greeks_when_days_per_year_252_then_theta_per_trading_day() -> None:
    """theta_per_day divides by the day count asked for; points are /100."""
    g = bsm_greeks(
        "put", spot=50, strike=50, time_years=1, rate=0.02, volatility=0.3, days_per_year=252
    )
    assert g.theta_per_day == g.theta_per_year / 252
    assert g.vega_per_point == g.vega_per_unit / 100 and g.rho_per_point == g.rho_per_unit / 100


def test_bsm_greeks_when_decimal_inputs_then_same_as_floats() -> None:
    """Decimal prices convert once at the boundary."""
    as_decimal = bsm_greeks(
        "call",
        spot=Decimal("49"),
        strike=Decimal("50"),
        time_years=Decimal("0.5"),
        rate=Decimal("0.05"),
        volatility=Decimal("0.2"),
    )
    assert as_decimal == bsm_greeks(
        "call", spot=49, strike=50, time_years=0.5, rate=0.05, volatility=0.2
    )


@pytest.mark.parametrize("field", ["spot", "strike", "time_years", "volatility"])
def test_bsm_greeks_when_input_not_positive_then_value_error_names_it(field: str) -> None:
    """Zero or negative spot, strike, time or volatility is refused by name."""
    inputs = {"spot": 10.0, "strike": 10.0, "time_years": 1.0, "rate": 0.0, "volatility": 0.2}
    with pytest.raises(ValueError, match=field):
        bsm_greeks("call", **(inputs | {field: 0.0}))


# -- implied volatility ---------------------------------------------------------------------


@given(markets)
def test_implied_volatility_when_price_from_model_then_recovers_it(market: Market) -> None:
    """IV(price(σ)) reprices to 1e-10 and returns σ wherever vega carries information."""
    kind, s, moneyness, t, r, q, v = market
    k = s * moneyness
    g = greeks(kind, s, k, t, r, q, v)
    forward_gap = s * math.exp(-q * t) - k * math.exp(-r * t)
    lower_bound = max(forward_gap if kind == "call" else -forward_gap, 0.0)
    assume(g.price - lower_bound > 1e-9 * s)  # else the price is the bound, to rounding
    sigma = implied_volatility(
        g.price, kind, spot=s, strike=k, time_years=t, rate=r, dividend_yield=q
    )
    repriced = greeks(kind, s, k, t, r, q, sigma).price
    assert math.isclose(repriced, g.price, rel_tol=1e-10, abs_tol=1e-10 * s)
    if g.vega_per_unit > 1e-3 * s:
        assert math.isclose(sigma, v, rel_tol=1e-8)


@pytest.mark.parametrize(
    ("kind", "price", "bound"),
    [
        ("call", 4.0, "outside the no-arbitrage bounds"),  # below intrinsic 100 − 95
        ("call", 100.0, "outside the no-arbitrage bounds"),  # a call is worth less than S
        ("put", 0.0, "outside the no-arbitrage bounds"),  # zero time value
        ("put", 96.0, "outside the no-arbitrage bounds"),  # a put is worth less than K
        ("call", -1.0, "outside the no-arbitrage bounds"),
    ],
)
def test_implied_volatility_when_price_breaks_bounds_then_clear_error(
    kind: str, price: float, bound: str
) -> None:
    """No solution: the error names the bounds and what to check."""
    with pytest.raises(ImpliedVolatilityError, match=bound) as caught:
        implied_volatility(price, kind, spot=100, strike=95, time_years=0.5, rate=0.0)
    assert "Check the quote" in str(caught.value) and isinstance(caught.value, DataError)


def test_implied_volatility_when_price_a_hair_inside_the_bounds_then_solves() -> None:
    """One cent above intrinsic, deep in the money, still solves (via the OTM side)."""
    sigma = implied_volatility(20.01, "call", spot=120, strike=100, time_years=0.1, rate=0.0)
    repriced = bsm_price("call", spot=120, strike=100, time_years=0.1, rate=0.0, volatility=sigma)
    assert 0 < sigma < 1 and math.isclose(repriced, 20.01, rel_tol=1e-12)


# -- vectorised ------------------------------------------------------------------------------


def test_norm_cdf_array_when_grid_with_tails_then_matches_math_erfc() -> None:
    """The fdlibm port agrees with math.erfc to a few ulps, tails included."""
    x = np.concatenate([np.linspace(-40, 40, 40_001), [-1e-300, 0.0, 1e-300, 0.84375, 1.25]])
    reference_values = np.array([norm_cdf(value) for value in x])
    ours = norm_cdf_array(x)
    positive = reference_values > 0
    relative = np.abs(ours[positive] - reference_values[positive]) / reference_values[positive]
    assert relative.max() < 1e-15 and np.all(ours[~positive] == 0.0)


def test_bsm_greeks_array_when_random_book_then_equals_scalar_path() -> None:
    """One vectorised call equals the scalar function element by element."""
    rng = np.random.default_rng(5)
    n = 500
    spot = rng.uniform(5, 500, n)
    inputs = {
        "spot": spot,
        "strike": spot * rng.uniform(0.6, 1.6, n),
        "time_years": rng.uniform(0.01, 3, n),
        "rate": rng.uniform(-0.01, 0.1, n),
        "volatility": rng.uniform(0.05, 1.2, n),
        "dividend_yield": rng.uniform(0, 0.05, n),
    }
    is_call = rng.random(n) < 0.5
    batch = bsm_greeks_array(is_call, **inputs)
    for i in range(n):
        one = bsm_greeks(
            "call" if is_call[i] else "put",
            **{key: float(value[i]) for key, value in inputs.items()},
        )
        for field in Greeks.__slots__:
            assert math.isclose(
                getattr(batch, field)[i],
                getattr(one, field),
                rel_tol=1e-12,
                abs_tol=1e-12 * spot[i],
            ), field


def test_bsm_greeks_array_when_volatility_not_positive_then_value_error() -> None:
    """Bad inputs are refused in the vectorised path too."""
    with pytest.raises(ValueError, match="volatility"):
        bsm_greeks_array(
            True, spot=[1.0], strike=[1.0], time_years=[1.0], rate=0.0, volatility=[0.0]
        )
