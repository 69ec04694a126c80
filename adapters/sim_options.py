"""A synthetic listed option chain for the sim: a volatility skew, a term structure, quotes.

The sim lists, per underlying, calls and puts on:

- **expiries**: every Friday up to :data:`WEEKLY_DAYS` days out, then the third Friday of
  each month up to :data:`MONTHLY_DAYS` days out, at 21:00 UTC (16:00 New York in
  winter; the hour the sim's own put expires);
- **strikes**: on the standard listed increment for the spot (the roll analysis's
  :func:`~bastion.engine.roll.pricing.strike_increment`), within ±``strike_range_ratio``
  of the spot.

Implied volatility per (strike, expiry)::

    atm(T)  = base_vol × (1 + TERM_SLOPE × (√T − √T₀))     term structure (upward, calm)
    iv(K,T) = atm(T) × (1 − SKEW × m + SMILE × m²),  m = ln(K / S) / √max(T, T₀)

floored at :data:`MIN_VOL`: out-of-the-money puts (m < 0) are dearer than calls, the
skew of equity index options, flattening with time to expiry. ``base_vol`` is the
market's implied vol now (it follows the regime).

Quotes: the BSM value at that vol, ± half a spread of :data:`SPREAD_RATIO` of the value
(at least a cent each side), widened by a seeded random amount of up to half again,
rounded outward to the cent; bid ≥ 0, ask ≥ bid + $0.01. Greeks are BSM at the same
vol; open interest is seeded. Same seed, same inputs → the same chain, digit for digit.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bastion.engine.indicators.greeks import OptionType, bsm_greeks
from bastion.engine.roll.pricing import strike_increment
from bastion.engine.snapshot.model import ListedOption, OptionChain

WEEKLY_DAYS = 63
MONTHLY_DAYS = 130
TERM_SLOPE = 0.15  # per √year: longer expiries trade at a higher vol in calm markets
SKEW = 0.35  # vol change per unit of log-moneyness ÷ √T (puts dearer)
SMILE = 0.60
MIN_VOL = 0.05
SPREAD_RATIO = 0.04  # of the option's value
_SHORTEST_YEARS = 7 / 365  # T₀: a week, so the skew of the nearest expiry stays finite
_CENT = Decimal("0.01")
_FOUR = Decimal("0.0001")
_FRIDAY = 4


def listed_expiries(today: date) -> tuple[datetime, ...]:
    """Weekly Fridays up to WEEKLY_DAYS out, then monthly third Fridays to MONTHLY_DAYS."""
    days: set[date] = set()
    friday = today + timedelta(days=(_FRIDAY - today.weekday()) % 7 or 7)
    while (friday - today).days <= WEEKLY_DAYS:
        days.add(friday)
        friday += timedelta(days=7)
    month = date(today.year, today.month, 1)
    while (month - today).days <= MONTHLY_DAYS:
        third = month + timedelta(days=(_FRIDAY - month.weekday()) % 7 + 14)
        if 0 < (third - today).days <= MONTHLY_DAYS:
            days.add(third)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return tuple(datetime(d.year, d.month, d.day, 21, tzinfo=UTC) for d in sorted(days))


def volatility_at(base_vol: float, spot: float, strike: float, time_years: float) -> float:
    """The surface above: skew in moneyness, an upward term structure, a floor."""
    shortest = max(time_years, _SHORTEST_YEARS)
    atm = base_vol * (1 + TERM_SLOPE * (math.sqrt(shortest) - math.sqrt(_SHORTEST_YEARS)))
    moneyness = math.log(strike / spot) / math.sqrt(shortest)
    return max(MIN_VOL, atm * (1 - SKEW * moneyness + SMILE * moneyness**2))


def occ_symbol(underlying: str, expiry: datetime, option_type: str, strike: Decimal) -> str:
    """``SPY261218P00591000``: root, YYMMDD, C or P, strike × 1000 in 8 digits."""
    letter = "C" if option_type == "call" else "P"
    return f"{underlying}{expiry:%y%m%d}{letter}{int(strike * 1000):08d}"


def synthetic_chain(
    underlying: str,
    *,
    spot: Decimal,
    base_vol: float,
    now: datetime,
    seed: int,
    rate: float = 0.04,
    dividend_yield: Decimal = Decimal(0),
    strike_range_ratio: Decimal = Decimal("0.12"),
    option_types: tuple[str, ...] = ("call", "put"),
    expiries: tuple[datetime, ...] | None = None,
) -> OptionChain:
    """The chain of ``underlying`` as of ``now`` (see the module docstring)."""
    rng = random.Random(f"{seed}:chain:{underlying}:{now.isoformat()}")
    increment = strike_increment(spot)
    low = ((spot * (1 - strike_range_ratio)) / increment).to_integral_value(ROUND_CEILING)
    high = ((spot * (1 + strike_range_ratio)) / increment).to_integral_value(ROUND_FLOOR)
    strikes = [increment * step for step in range(max(int(low), 1), int(high) + 1)]
    contracts: list[ListedOption] = []
    for expiry in expiries if expiries is not None else listed_expiries(now.date()):
        years = (expiry - now).total_seconds() / (365 * 86_400)
        if years <= 0:
            continue
        for option_type in option_types:
            for strike in strikes:
                contracts.append(
                    _contract(
                        underlying, option_type, strike, expiry, years, rng,
                        spot=spot, base_vol=base_vol, rate=rate, dividend_yield=dividend_yield,
                        now=now,
                    )
                )  # fmt: skip
    return OptionChain(underlying=underlying, as_of=now, contracts=tuple(contracts))


def _contract(
    underlying: str,
    option_type: str,
    strike: Decimal,
    expiry: datetime,
    years: float,
    rng: random.Random,
    *,
    spot: Decimal,
    base_vol: float,
    rate: float,
    dividend_yield: Decimal,
    now: datetime,
) -> ListedOption:
    vol = volatility_at(base_vol, float(spot), float(strike), years)
    greeks = bsm_greeks(
        OptionType(option_type),
        spot=spot,
        strike=strike,
        time_years=years,
        rate=rate,
        volatility=vol,
        dividend_yield=dividend_yield,
    )
    value = Decimal(repr(greeks.price))
    half = max(value * Decimal(repr(SPREAD_RATIO)) / 2, _CENT / 2)
    half *= 1 + Decimal(repr(rng.random())) / 2
    bid = max((value - half).quantize(_CENT, rounding=ROUND_FLOOR), Decimal(0))
    ask = max((value + half).quantize(_CENT, rounding=ROUND_CEILING), bid + _CENT)
    return ListedOption(
        symbol=occ_symbol(underlying, expiry, option_type, strike),
        option_type=option_type,
        strike_usd=strike,
        expires_at=expiry,
        bid_usd=bid + 0,
        ask_usd=ask,
        quoted_at=now,
        implied_volatility=_four(vol),
        delta=_four(greeks.delta),
        gamma=_four(greeks.gamma),
        theta_per_day_usd=_four(greeks.theta_per_day),
        vega_usd=_four(greeks.vega_per_point),
        open_interest=rng.randrange(0, 5000),
    )


def _four(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_FOUR) + 0
