"""A synthetic, deterministic option chain of roll candidates, with each roll's economics.

Used when the snapshot carries no option chain for the underlying (else
:mod:`listed`); the candidates are made up the way listed options are laid out, and
each is marked ``priced_by: model``:

- **expiries**: every Friday whose days-to-expiry (calendar days from ``now``'s date in
  the current expiry's time zone) lies in [min_dte_days, max_dte_days], at the current
  contract's expiry time of day and zone. Fridays, not "every 7 days from now", because
  weekly listed options expire on Fridays. When the window holds no Friday (a window
  narrower than a week), the first Friday after it is used and the analysis says so.
  Both ends of the window are capped at 3,650 days (LEAPS run to about three years);
- **strikes**: per expiry, ``strikes_per_expiry`` strikes on the standard increment
  ($0.50 below $25, $1 below $200, $5 below $1,000, else $10), centred on the strike
  whose |delta| is nearest the target and alternating outward (centre, −1, +1, −2, …).
  The count per expiry is raised so the chain holds at least ``MIN_CANDIDATES``; the
  current contract itself is skipped (rolling into it is no roll);
- **prices**: Black–Scholes–Merton at the leg's implied volatility for every strike and
  expiry (a flat surface: no skew, no term structure); quotes from the model value with
  the current leg's relative spread, else 2 % (see :func:`pricing.model_quote`).

Economics per share, for a short leg (buy back the current option, sell the candidate)
or a long leg (sell the current option, buy the candidate)::

    net = proceeds_mid − cost_mid − spread_cost_ratio × (current spread + candidate spread)
          − 2 legs × (commission + regulatory fees per contract) ÷ contract_multiplier
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll import pricing
from bastion.engine.roll.model import OptionLeg, PricedBy, Quote, RollCandidate, Side
from bastion.engine.roll.urgency import accepts

MIN_CANDIDATES = 10
MAX_DTE_DAYS = 3650
_FRIDAY = 4  # date.weekday()
_WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Chain:
    """The candidates (unranked) and what the chain was built from, for the reasons."""

    candidates: tuple[RollCandidate, ...]
    expiries: tuple[datetime, ...]
    strikes_per_expiry: int
    increment: Decimal
    relative_spread: Decimal
    outside_window: bool  # no Friday in the DTE window: the next one was used


def days_to_expiry(now: datetime, expiry: datetime) -> int:
    """Calendar days from ``now``'s date to the expiry date, in the expiry's time zone."""
    return (expiry.date() - now.astimezone(expiry.tzinfo).date()).days


def candidate_expiries(
    now: datetime, template: datetime, min_dte_days: int, max_dte_days: int
) -> tuple[tuple[datetime, ...], bool]:
    """Friday expiries in the DTE window after ``now``; or the next one and ``True``."""
    today = now.astimezone(template.tzinfo).date()
    low = min(max(min_dte_days, 0), MAX_DTE_DAYS)
    high = min(max(low, max_dte_days), MAX_DTE_DAYS)
    friday = _first_friday_on_or_after(today + timedelta(days=low))
    expiries: list[datetime] = []
    while (friday - today).days <= high:
        expiry = datetime.combine(friday, template.timetz())
        if expiry > now:
            expiries.append(expiry)
        friday += _WEEK
    if expiries:
        return tuple(expiries), False
    while datetime.combine(friday, template.timetz()) <= now:
        friday += _WEEK
    return (datetime.combine(friday, template.timetz()),), True


def _first_friday_on_or_after(day: date) -> date:
    return day + timedelta(days=(_FRIDAY - day.weekday()) % 7)


def strike_ladder(
    centre: Decimal, increment: Decimal, count: int, skip: Decimal | None = None
) -> tuple[Decimal, ...]:
    """``count`` positive strikes around ``centre`` (centre, −1, +1, −2, +2, …), sorted."""
    strikes: list[Decimal] = []
    step = 0
    while len(strikes) < count:
        for offset in (0,) if step == 0 else (-step, step):
            strike = centre + increment * offset
            if strike > 0 and strike != skip and len(strikes) < count:
                strikes.append(strike)
        step += 1
    return tuple(sorted(strikes))


def net_credit_usd(side: Side, current: Quote, candidate: Quote, spec: RollSpec) -> Decimal:
    """Net credit per share of closing ``current`` and opening ``candidate`` (− = debit)."""
    if side is Side.SHORT:
        proceeds, cost = candidate.mid_usd, current.mid_usd
    else:
        proceeds, cost = current.mid_usd, candidate.mid_usd
    spread_paid = spec.spread_cost_ratio * (current.spread_usd + candidate.spread_usd)
    fees_per_contract = spec.commission_per_contract_usd + spec.regulatory_fees_per_contract_usd
    fees = 2 * fees_per_contract / spec.contract_multiplier
    return proceeds - cost - spread_paid - fees


def build_chain(
    leg: OptionLeg, spec: RollSpec, now: datetime, urgency: str, current: Quote
) -> Chain:
    """Every candidate for ``leg``, priced, with economics and flags (see module doc)."""
    market = pricing.market_for(leg, spec)
    expiries, outside_window = candidate_expiries(
        now, leg.expiry, spec.min_dte_days, spec.max_dte_days
    )
    per_expiry = max(spec.strikes_per_expiry, math.ceil(MIN_CANDIDATES / len(expiries)))
    increment = pricing.strike_increment(leg.underlying_price)
    spread_ratio = pricing.relative_spread(current)
    candidates: list[RollCandidate] = []
    for expiry in expiries:
        time_years = pricing.years_between(now, expiry)
        dte_days = days_to_expiry(now, expiry)
        centre = pricing.centre_strike(
            leg.option_type, market, time_years, spec.target_abs_delta, increment
        )
        skip = leg.strike if expiry == leg.expiry else None
        for strike in strike_ladder(centre, increment, per_expiry, skip):
            valuation = pricing.value_option(leg.option_type, market, float(strike), time_years)
            candidates.append(
                _priced_candidate(
                    leg,
                    spec,
                    urgency,
                    current,
                    spread_ratio,
                    expiry=expiry,
                    strike=strike,
                    dte_days=dte_days,
                    valuation=valuation,
                )
            )
    return Chain(tuple(candidates), expiries, per_expiry, increment, spread_ratio, outside_window)


def _priced_candidate(
    leg: OptionLeg,
    spec: RollSpec,
    urgency: str,
    current: Quote,
    spread_ratio: Decimal,
    *,
    expiry: datetime,
    strike: Decimal,
    dte_days: int,
    valuation: pricing.Valuation,
) -> RollCandidate:
    model_value = pricing.to_decimal(valuation.value)
    return judged_candidate(
        leg,
        spec,
        urgency,
        current,
        Terms(leg.symbol, expiry, strike, dte_days),
        abs_delta=pricing.to_decimal(abs(valuation.delta)),
        model_value_usd=model_value,
        quote=pricing.model_quote(model_value, spread_ratio),
        theta_per_day_usd=pricing.to_decimal(valuation.theta_per_day),
        probability_itm_ratio=pricing.to_decimal(valuation.probability_itm),
    )


@dataclass(frozen=True, slots=True)
class Terms:
    """Which contract a candidate is: underlying, expiry, strike; and the listed symbol."""

    symbol: str
    expiry: datetime
    strike: Decimal
    dte_days: int
    contract_symbol: str | None = None  # None: a synthetic (model) contract


def judged_candidate(
    leg: OptionLeg,
    spec: RollSpec,
    urgency: str,
    current: Quote,
    terms: Terms,
    *,
    abs_delta: Decimal,
    model_value_usd: Decimal,
    quote: Quote,
    theta_per_day_usd: Decimal,
    probability_itm_ratio: Decimal,
) -> RollCandidate:
    """A priced candidate with its economics and flags; ``priced_by`` follows from the
    terms (listed when they name a listed contract). Time value is the model value's for
    a model quote, the mid's for a listed one, less intrinsic value."""
    net = net_credit_usd(leg.side, current, quote, spec)
    in_band = spec.min_abs_delta <= abs_delta <= spec.max_abs_delta
    spot, strike = leg.underlying_price, terms.strike
    is_call = leg.option_type is OptionType.CALL
    intrinsic = max(spot - strike if is_call else strike - spot, Decimal(0))
    listed = terms.contract_symbol is not None
    value = quote.mid_usd if listed else model_value_usd
    return RollCandidate(
        symbol=terms.symbol,
        option_type=leg.option_type,
        expiry=terms.expiry,
        strike=strike,
        dte_days=terms.dte_days,
        abs_delta=abs_delta,
        model_value_usd=model_value_usd,
        quote=quote,
        time_value_usd=(value - intrinsic).quantize(pricing.QUANTUM),
        theta_per_day_usd=theta_per_day_usd,
        probability_itm_ratio=probability_itm_ratio,
        net_credit_usd=net,
        net_credit_per_position_usd=net * spec.contract_multiplier * leg.quantity,
        in_band=in_band,
        economic=net >= spec.min_net_credit_usd,
        within_debit_limit=net >= -spec.max_net_debit_usd,
        acceptable=accepts(urgency, in_band=in_band, net_credit_usd=net, spec=spec),
        priced_by=PricedBy.LISTED if listed else PricedBy.MODEL,
        contract_symbol=terms.contract_symbol,
    )
