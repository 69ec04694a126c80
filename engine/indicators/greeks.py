"""Black–Scholes–Merton European option value, greeks and implied volatility.

Inputs (keyword-only, so a rate and a yield are never swapped by position):
``spot`` and ``strike`` in the price currency; ``time_years`` to expiry in years;
``rate`` and ``dividend_yield`` (q) continuously compounded per year, as ratios
(0.05 = 5 %); ``volatility`` per √year as a ratio (0.20 = 20 vol points).

Units of the outputs (Hull's conventions):

- ``delta``: ∂V/∂S, per 1 unit of the underlying; ``gamma``: ∂²V/∂S².
- ``theta_per_year``: ∂V/∂t with t calendar time, per year (negative for a long option
  that loses time value); ``theta_per_day`` divides by ``days_per_year`` (365 by default;
  pass 252 for trading days).
- ``vega_per_unit``: ∂V/∂σ per 1.00 of volatility (100 vol points);
  ``vega_per_point`` per 1 vol point (0.01).
- ``rho_per_unit``: ∂V/∂r per 1.00 of rate; ``rho_per_point`` per 1 % (0.01).

Greeks are model outputs computed in binary floating point, not money: quantise a price
to the instrument's tick before it is used as one. The normal CDF uses ``erfc`` so that
deep out-of-the-money values keep their relative precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bastion.engine.errors import DataError

Real = float | Decimal
FloatArray = NDArray[np.float64]
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPSILON = 2.220446049250313e-16
_MAX_VOLATILITY = 100.0  # 10,000 %: beyond it a price is a quote error, not a volatility


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


class ImpliedVolatilityError(DataError):
    """No volatility reproduces the price: it lies outside the no-arbitrage bounds."""


@dataclass(frozen=True, slots=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    theta_per_year: float
    theta_per_day: float
    vega_per_unit: float
    vega_per_point: float
    rho_per_unit: float
    rho_per_point: float


@dataclass(frozen=True, slots=True)
class GreeksArray:
    """:class:`Greeks` for many options at once, one numpy array per field."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    theta_per_year: FloatArray
    theta_per_day: FloatArray
    vega_per_unit: FloatArray
    vega_per_point: FloatArray
    rho_per_unit: FloatArray
    rho_per_point: FloatArray


def norm_cdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails."""
    return 0.5 * math.erfc(-x / _SQRT_2)


def bsm_price(
    option_type: OptionType | str,
    *,
    spot: Real,
    strike: Real,
    time_years: Real,
    rate: Real,
    volatility: Real,
    dividend_yield: Real = 0.0,
) -> float:
    """Black–Scholes–Merton value of a European option."""
    return _price(
        OptionType(option_type) is OptionType.CALL,
        _positive("spot", spot),
        _positive("strike", strike),
        _positive("time_years", time_years),
        _finite("rate", rate),
        _finite("dividend_yield", dividend_yield),
        _positive("volatility", volatility),
    )


def bsm_greeks(
    option_type: OptionType | str,
    *,
    spot: Real,
    strike: Real,
    time_years: Real,
    rate: Real,
    volatility: Real,
    dividend_yield: Real = 0.0,
    days_per_year: float = 365.0,
) -> Greeks:
    """Value and greeks of a European option (see the module docstring for units)."""
    is_call = OptionType(option_type) is OptionType.CALL
    s, k, t, sigma = (
        _positive("spot", spot),
        _positive("strike", strike),
        _positive("time_years", time_years),
        _positive("volatility", volatility),
    )
    r, q = _finite("rate", rate), _finite("dividend_yield", dividend_yield)
    sqrt_t = math.sqrt(t)
    vol_sqrt_t = sigma * sqrt_t
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    spot_pv, strike_pv = s * math.exp(-q * t), k * math.exp(-r * t)
    density = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    decay = -spot_pv * density * sigma / (2.0 * sqrt_t)
    if is_call:
        n1, n2 = norm_cdf(d1), norm_cdf(d2)
        price = spot_pv * n1 - strike_pv * n2
        delta = math.exp(-q * t) * n1
        theta = decay - r * strike_pv * n2 + q * spot_pv * n1
        rho = k * t * math.exp(-r * t) * n2
    else:
        n1, n2 = norm_cdf(-d1), norm_cdf(-d2)
        price = strike_pv * n2 - spot_pv * n1
        delta = -math.exp(-q * t) * n1
        theta = decay + r * strike_pv * n2 - q * spot_pv * n1
        rho = -k * t * math.exp(-r * t) * n2
    vega = spot_pv * density * sqrt_t
    return Greeks(
        # Never below 0 (a BSM value is not): far out of the money, the difference of two
        # subnormal terms can round to -5e-324 (found by tests/indicators/test_greeks.py).
        price=max(price, 0.0),
        delta=delta,
        gamma=math.exp(-q * t) * density / (s * vol_sqrt_t),
        theta_per_year=theta,
        theta_per_day=theta / days_per_year,
        vega_per_unit=vega,
        vega_per_point=vega / 100.0,
        rho_per_unit=rho,
        rho_per_point=rho / 100.0,
    )


def implied_volatility(
    price: Real,
    option_type: OptionType | str,
    *,
    spot: Real,
    strike: Real,
    time_years: Real,
    rate: Real,
    dividend_yield: Real = 0.0,
    tolerance: float = 1e-15,
    max_iterations: int = 200,
) -> float:
    """The volatility whose BSM value equals ``price``, by Brent's bracketed method.

    Raises :class:`ImpliedVolatilityError` when the price is outside the no-arbitrage
    bounds (so no volatility exists) or needs more than 10,000 % volatility.
    """
    kind = quoted = OptionType(option_type)
    s, k, t = _positive("spot", spot), _positive("strike", strike), _positive("time", time_years)
    r, q = _finite("rate", rate), _finite("dividend_yield", dividend_yield)
    target = _finite("price", price)
    spot_pv, strike_pv = s * math.exp(-q * t), k * math.exp(-r * t)
    if kind is OptionType.CALL:
        lower, upper, bound_text = max(spot_pv - strike_pv, 0.0), spot_pv, "S·e^(−qT)"
    else:
        lower, upper, bound_text = max(strike_pv - spot_pv, 0.0), strike_pv, "K·e^(−rT)"
    if not lower < target < upper:
        raise ImpliedVolatilityError(
            f"{kind.value} price {target:.10g} is outside the no-arbitrage bounds "
            f"({lower:.10g}, {upper:.10g}) — the price must exceed the discounted intrinsic "
            f"value and stay below {bound_text}; no volatility reproduces it. Check the "
            "quote, the expiry, the rate and the dividend yield"
        )
    # Put–call parity gives the same σ for both; the out-of-the-money side is far better
    # conditioned (its whole value is time value).
    intrinsic_pv = lower
    if intrinsic_pv > 0:
        target -= intrinsic_pv
        kind = OptionType.PUT if kind is OptionType.CALL else OptionType.CALL

    is_call = kind is OptionType.CALL

    def excess(sigma: float) -> float:
        if sigma == 0.0:
            return -target  # the OTM option is worth nothing at zero volatility
        return _price(is_call, s, k, t, r, q, sigma) - target

    high = 1.0
    while excess(high) < 0.0:
        high *= 2.0
        if high > _MAX_VOLATILITY:
            raise ImpliedVolatilityError(
                f"{quoted.value} price {float(price):g} needs a volatility above "
                f"{_MAX_VOLATILITY:.0%}; the price is too close to its upper bound {upper:.10g}"
            )
    return _brent(excess, 0.0, high, -target, excess(high), tolerance, max_iterations)


def _price(is_call: bool, s: float, k: float, t: float, r: float, q: float, sigma: float) -> float:
    """The value alone, for the solver's inner loop (same formula as bsm_greeks)."""
    vol_sqrt_t = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    spot_pv, strike_pv = s * math.exp(-q * t), k * math.exp(-r * t)
    if is_call:
        return spot_pv * norm_cdf(d1) - strike_pv * norm_cdf(d2)
    return strike_pv * norm_cdf(-d2) - spot_pv * norm_cdf(-d1)


def _brent(
    function: Callable[[float], float],
    a: float,
    b: float,
    fa: float,
    fb: float,
    tolerance: float,
    max_iterations: int,
) -> float:
    """Brent's root finder (inverse quadratic / secant steps, bisection safeguard)."""
    c, fc = a, fa
    d = e = b - a
    for _ in range(max_iterations):
        if (fb > 0) == (fc > 0):
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2.0 * _EPSILON * abs(b) + 0.5 * tolerance
        half = 0.5 * (c - b)
        if abs(half) <= tol or fb == 0.0:
            return b
        if abs(e) >= tol and abs(fa) > abs(fb):
            ratio = fb / fa
            if a == c:  # secant
                p, q = 2.0 * half * ratio, 1.0 - ratio
            else:  # inverse quadratic interpolation
                qa, rb = fa / fc, fb / fc
                p = ratio * (2.0 * half * qa * (qa - rb) - (b - a) * (rb - 1.0))
                q = (qa - 1.0) * (rb - 1.0) * (ratio - 1.0)
            if p > 0:
                q = -q
            p = abs(p)
            if 2.0 * p < min(3.0 * half * q - abs(tol * q), abs(e * q)):
                e, d = d, p / q
            else:
                d = e = half
        else:
            d = e = half
        a, fa = b, fb
        b += d if abs(d) > tol else math.copysign(tol, half)
        fb = function(b)
    raise ImpliedVolatilityError(f"implied volatility did not converge in {max_iterations} steps")


def _positive(name: str, value: Real) -> float:
    number = _finite(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return number


def _finite(name: str, value: Real) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return number


# -- vectorised -------------------------------------------------------------------------


def bsm_greeks_array(
    is_call: ArrayLike,
    *,
    spot: ArrayLike,
    strike: ArrayLike,
    time_years: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
    days_per_year: float = 365.0,
) -> GreeksArray:
    """:func:`bsm_greeks` over broadcastable arrays; ``is_call`` is a bool (array)."""
    call, s, k, t, r, sigma, q = np.broadcast_arrays(
        np.asarray(is_call, dtype=bool),
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, time_years, rate, volatility)),
        np.asarray(dividend_yield, dtype=np.float64),
    )
    for name, values in (("spot", s), ("strike", k), ("time_years", t), ("volatility", sigma)):
        if not np.all(values > 0):  # also rejects NaN
            first_bad = values[~(values > 0)][0]
            raise ValueError(f"{name} must be > 0 everywhere; found {first_bad}")
    sqrt_t = np.sqrt(t)
    vol_sqrt_t = sigma * sqrt_t
    d1 = (np.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    growth_q, discount = np.exp(-q * t), np.exp(-r * t)
    spot_pv, strike_pv = s * growth_q, k * discount
    density = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    sign = np.where(call, 1.0, -1.0)
    n1, n2 = norm_cdf_array(sign * d1), norm_cdf_array(sign * d2)
    theta = -spot_pv * density * sigma / (2.0 * sqrt_t) + sign * (
        q * spot_pv * n1 - r * strike_pv * n2
    )
    vega = spot_pv * density * sqrt_t
    rho = sign * k * t * discount * n2
    return GreeksArray(
        price=np.maximum(sign * (spot_pv * n1 - strike_pv * n2), 0.0),  # as bsm_greeks
        delta=sign * growth_q * n1,
        gamma=growth_q * density / (s * vol_sqrt_t),
        theta_per_year=theta,
        theta_per_day=theta / days_per_year,
        vega_per_unit=vega,
        vega_per_point=vega / 100.0,
        rho_per_unit=rho,
        rho_per_point=rho / 100.0,
    )


def norm_cdf_array(x: FloatArray) -> FloatArray:
    """Vectorised :func:`norm_cdf` (fdlibm's erfc, within an ulp or two of math.erfc)."""
    scaled = np.abs(x) / _SQRT_2
    upper_tail = 0.5 * _erfc_nonnegative(scaled)
    return np.where(x < 0, upper_tail, 1.0 - upper_tail)


# fdlibm s_erf.c coefficients. Copyright (C) 1993 by Sun Microsystems, Inc. All rights
# reserved. Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use,
# copy, modify, and distribute this software is freely granted, provided that this notice
# is preserved.
_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)  # fmt: skip
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)  # fmt: skip
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)  # fmt: skip
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02,
       1.19844998467991074170e-02)  # fmt: skip
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e01,
       -6.23753324503260060396e01, -1.62396669462573470355e02, -1.84605092906711035994e02,
       -8.12874355063065934246e01, -9.81432934416914548592e00)  # fmt: skip
_SA = (1.0, 1.96512716674392571292e01, 1.37657754143519042600e02, 4.34565877475229228821e02,
       6.45387271733267880336e02, 4.29008140027567833386e02, 1.08635005541779435134e02,
       6.57024977031928170135e00, -6.04244152148580987438e-02)  # fmt: skip
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e01,
       -1.60636384855821916062e02, -6.37566443368389627722e02, -1.02509513161107724954e03,
       -4.83519191608651397019e02)  # fmt: skip
_SB = (1.0, 3.03380607434824582924e01, 3.25792512996573918826e02, 1.53672958608443695994e03,
       3.19985821950859553908e03, 2.55305040643316442583e03, 4.74528541206955367215e02,
       -2.24409524465858183362e01)  # fmt: skip


def _poly(coefficients: tuple[float, ...], x: FloatArray) -> FloatArray:
    result = np.full_like(x, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        result = result * x + coefficient
    return result


def _erfc_nonnegative(x: FloatArray) -> FloatArray:
    """erfc(x) for x ≥ 0, region by region as in fdlibm."""
    out = np.zeros_like(x)  # erfc underflows to 0 from x = 28 up
    near = x < 0.84375
    if near.any():
        v = x[near]
        y = _poly(_PP, v * v) / _poly(_QQ, v * v)
        out[near] = np.where(v < 0.25, 1.0 - (v + v * y), 0.5 - (v * y + (v - 0.5)))
    middle = (x >= 0.84375) & (x < 1.25)
    if middle.any():
        v = x[middle] - 1.0
        out[middle] = 1.0 - _ERX - _poly(_PA, v) / _poly(_QA, v)
    tail = (x >= 1.25) & (x < 28.0)
    if tail.any():
        v = x[tail]
        inv_sq = 1.0 / (v * v)
        inner = v < 1.0 / 0.35
        ratio = np.where(
            inner, _poly(_RA, inv_sq) / _poly(_SA, inv_sq), _poly(_RB, inv_sq) / _poly(_SB, inv_sq)
        )
        # Split x² exactly: z keeps the high 32 bits of x, so z·z carries no rounding.
        z = (v.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
        out[tail] = np.exp(-z * z - 0.5625) * np.exp((z - v) * (z + v) + ratio) / v
    return out
