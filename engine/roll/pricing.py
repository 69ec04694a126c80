"""Option values, deltas and quotes for the roll analysis (Black–Scholes–Merton).

Conventions: time to expiry is ACT/365 in seconds (``(expiry − now) / 365 days``);
rate and dividend yield are continuously compounded ratios. Model outputs are floats
from :mod:`bastion.engine.indicators.greeks`; they become Decimal here, rounded
half-even to 4 decimals (``QUANTUM``) so that equal inputs give equal digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from statistics import NormalDist

from bastion.engine.indicators.greeks import OptionType, bsm_greeks, norm_cdf
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll.model import OptionLeg, Quote, QuoteSource

QUANTUM = Decimal("0.0001")
CENT = Decimal("0.01")
DEFAULT_RELATIVE_SPREAD = Decimal("0.02")  # of mid, when the leg has no bid/ask
_SECONDS_PER_YEAR = 365 * 24 * 3600
# A target-delta strike more than e^5 ≈ 148× away from spot means the target cannot be
# reached (e.g. q·T is large); clamping keeps the chain finite instead of overflowing.
_MAX_LOG_MONEYNESS = 5.0
_STANDARD_NORMAL = NormalDist()
# (price below, strike increment): the listed-option convention for most US underlyings.
STRIKE_INCREMENTS = (
    (Decimal(25), Decimal("0.5")),
    (Decimal(200), Decimal(1)),
    (Decimal(1000), Decimal(5)),
)
LARGEST_STRIKE_INCREMENT = Decimal(10)


@dataclass(frozen=True, slots=True)
class Market:
    """The market an option is priced in: one volatility (flat for the leg and its
    synthetic candidates; each listed candidate gets its own listed implied vol)."""

    spot: float
    volatility: float
    rate: float
    dividend_yield: float


@dataclass(frozen=True, slots=True)
class Valuation:
    """One option's model value and the figures the analysis reports, all per share."""

    value: float
    delta: float
    theta_per_day: float
    probability_itm: float


def market_for(leg: OptionLeg, spec: RollSpec) -> Market:
    """r from the policy (per cent → ratio); q from the leg, else from the policy."""
    dividend_yield = (
        leg.dividend_yield if leg.dividend_yield is not None else spec.dividend_yield_pct / 100
    )
    return Market(
        spot=float(leg.underlying_price),
        volatility=float(leg.implied_vol),
        rate=float(spec.risk_free_rate_pct / 100),
        dividend_yield=float(dividend_yield),
    )


def years_between(start: datetime, end: datetime) -> float:
    """ACT/365 year fraction; negative when ``end`` is before ``start``."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / _SECONDS_PER_YEAR


def value_option(
    option_type: OptionType, market: Market, strike: float, time_years: float
) -> Valuation:
    """BSM value and figures; at or after expiry, intrinsic value (delta ±1 or 0)."""
    is_call = option_type is OptionType.CALL
    if time_years <= 0:
        in_the_money = market.spot > strike if is_call else market.spot < strike
        intrinsic = max(market.spot - strike, 0.0) if is_call else max(strike - market.spot, 0.0)
        delta = (1.0 if is_call else -1.0) if in_the_money else 0.0
        return Valuation(intrinsic, delta, 0.0, 1.0 if in_the_money else 0.0)
    greeks = bsm_greeks(
        option_type,
        spot=market.spot,
        strike=strike,
        time_years=time_years,
        rate=market.rate,
        volatility=market.volatility,
        dividend_yield=market.dividend_yield,
    )
    vol_sqrt_t = market.volatility * math.sqrt(time_years)
    drift = market.rate - market.dividend_yield - 0.5 * market.volatility**2
    d2 = (math.log(market.spot / strike) + drift * time_years) / vol_sqrt_t
    probability_itm = norm_cdf(d2) if is_call else norm_cdf(-d2)
    return Valuation(greeks.price, greeks.delta, greeks.theta_per_day, probability_itm)


def to_decimal(value: float) -> Decimal:
    """A model float as Decimal, half-even to 4 decimals, never ``-0.0000``."""
    return Decimal(value).quantize(QUANTUM) + 0


def model_quote(value_usd: Decimal, relative_spread: Decimal) -> Quote:
    """value ∓ half the relative spread, rounded outward to the cent; spread ≥ $0.01.

    Rounding outward (bid down, ask up) never understates what crossing would cost.
    """
    half_spread = value_usd * relative_spread / 2
    bid = max((value_usd - half_spread).quantize(CENT, rounding=ROUND_FLOOR), Decimal(0))
    ask = (value_usd + half_spread).quantize(CENT, rounding=ROUND_CEILING)
    return Quote(bid + 0, max(ask, bid + CENT), QuoteSource.MODEL)


def current_quote(leg: OptionLeg, model_value_usd: Decimal) -> Quote:
    """The leg's own bid/ask when it has both, else the model quote at 2 % of value."""
    if leg.bid is not None and leg.ask is not None:
        return Quote(leg.bid, leg.ask, QuoteSource.SNAPSHOT)
    return model_quote(model_value_usd, DEFAULT_RELATIVE_SPREAD)


def relative_spread(quote: Quote) -> Decimal:
    """Spread ÷ mid of a snapshot quote, which candidates then share; else 2 %."""
    if quote.source is QuoteSource.SNAPSHOT and quote.mid_usd > 0:
        return quote.spread_usd / quote.mid_usd
    return DEFAULT_RELATIVE_SPREAD


def strike_increment(underlying_price: Decimal) -> Decimal:
    """$0.50 below $25, $1 below $200, $5 below $1,000, else $10."""
    for below, increment in STRIKE_INCREMENTS:
        if underlying_price < below:
            return increment
    return LARGEST_STRIKE_INCREMENT


def strike_for_abs_delta(
    option_type: OptionType, market: Market, time_years: float, target_abs_delta: float
) -> float:
    """The (continuous) strike whose BSM |delta| equals the target, in closed form.

    Call: e^(−qT)·N(d1) = target, put: e^(−qT)·N(−d1) = target; solve for d1, then
    ln(S/K) = d1·σ√T − (r − q + σ²/2)·T.
    """
    growth = math.exp(market.dividend_yield * time_years)
    probability = min(max(target_abs_delta * growth, 1e-9), 1.0 - 1e-9)
    quantile = _STANDARD_NORMAL.inv_cdf(probability)
    d1 = quantile if option_type is OptionType.CALL else -quantile
    drift = market.rate - market.dividend_yield + 0.5 * market.volatility**2
    log_moneyness = d1 * market.volatility * math.sqrt(time_years) - drift * time_years
    log_moneyness = min(max(log_moneyness, -_MAX_LOG_MONEYNESS), _MAX_LOG_MONEYNESS)
    return market.spot * math.exp(-log_moneyness)


def centre_strike(
    option_type: OptionType,
    market: Market,
    time_years: float,
    target_abs_delta: Decimal,
    increment: Decimal,
) -> Decimal:
    """The listed strike (a positive multiple of ``increment``) with |delta| nearest target.

    |delta| is monotone in the strike, so the nearest is one of the two grid strikes
    around the closed-form solution; a tie goes to the lower strike.
    """
    target = float(target_abs_delta)
    exact = Decimal(strike_for_abs_delta(option_type, market, time_years, target))
    below = max((exact / increment).to_integral_value(rounding=ROUND_FLOOR), Decimal(1))
    nearest = min(
        (below * increment, (below + 1) * increment),
        key=lambda strike: abs(
            abs(value_option(option_type, market, float(strike), time_years).delta) - target
        ),
    )
    return nearest + 0
