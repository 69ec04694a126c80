"""The sentences a risk officer reads back: delta, urgency, the chain, the decision.

Money shows in cents, except where cents would make a figure look equal to the limit
it failed (a $0.5049 debit against a $0.50 maximum shows as $0.5049).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll import pricing
from bastion.engine.roll.chain import Chain, days_to_expiry
from bastion.engine.roll.listed import ListedCandidates
from bastion.engine.roll.model import (
    NO_URGENCY,
    DeltaSource,
    OptionLeg,
    QuoteSource,
    RollCandidate,
)

_CENT = Decimal("0.01")


def explain(
    leg: OptionLeg,
    spec: RollSpec,
    now: datetime,
    *,
    abs_delta: Decimal,
    delta_source: DeltaSource,
    urgency: str,
    chain: Chain | ListedCandidates,
    ranked: tuple[RollCandidate, ...],
    recommended: RollCandidate | None,
) -> tuple[str, ...]:
    reasons = [
        _delta_sentence(leg, spec, now, abs_delta, delta_source),
        _urgency_sentence(spec, abs_delta, urgency),
        _chain_sentence(leg, spec, now, chain)
        if isinstance(chain, Chain)
        else _listed_sentence(spec, now, chain),
    ]
    if recommended is not None:
        reasons.append(_recommendation_sentence(leg, spec, urgency, recommended))
    elif urgency != NO_URGENCY and not ranked:
        reasons.append(
            "no roll recommended: the listed chain offers no usable candidate, and an "
            "unlisted contract is never recommended — refresh the chain or roll by hand"
        )
    elif urgency != NO_URGENCY:
        reasons.append(_no_roll_sentence(spec, urgency, ranked))
    return tuple(reasons)


def _delta_sentence(
    leg: OptionLeg, spec: RollSpec, now: datetime, abs_delta: Decimal, source: DeltaSource
) -> str:
    subject = f"{leg.label} ({leg.side.value} {_number(leg.quantity)})"
    expired = leg.expiry <= now
    if source is DeltaSource.SNAPSHOT:
        note = f"; the contract expired at {leg.expiry.isoformat()}" if expired else ""
        return f"{subject}: |Δ| {_delta(abs_delta)} from the snapshot{note}"
    if expired:
        return (
            f"{subject} expired at {leg.expiry.isoformat()}: |Δ| {_delta(abs_delta)} from "
            f"intrinsic value (spot {_number(leg.underlying_price)}, strike "
            f"{_number(leg.strike)})"
        )
    market = pricing.market_for(leg, spec)
    days = pricing.years_between(now, leg.expiry) * 365
    return (
        f"{subject}: |Δ| {_delta(abs_delta)} computed with Black–Scholes–Merton (spot "
        f"{_number(leg.underlying_price)}, {days:.2f} days ACT/365, IV "
        f"{market.volatility:.2%}, r {market.rate:.2%}, q {market.dividend_yield:.2%})"
    )


def _urgency_sentence(spec: RollSpec, abs_delta: Decimal, urgency: str) -> str:
    """Names the threshold reached; an urgency the caller passed in that the thresholds
    do not bear out is reported as the caller's, never dressed up as a comparison."""
    shown = _delta(abs_delta)
    if urgency == NO_URGENCY:
        if not spec.urgency:
            return "the policy sets no urgency thresholds: no roll needed"
        lowest_name, lowest = spec.urgency[-1]
        if abs_delta < lowest:
            return (
                f"|Δ| {shown} is below the {lowest_name}-urgency threshold {_delta(lowest)}: "
                "no roll needed"
            )
        return f"|Δ| {shown}: no urgency, as the caller decided: no roll needed"
    if urgency == "emergency":
        rule = "roll into the best in-band candidate whatever the economics"
    elif urgency == "high":
        rule = f"a roll may cost up to a {_usd(spec.max_net_debit_usd)} net debit per share"
    else:
        rule = f"roll only for a net credit of at least {_usd(spec.min_net_credit_usd)} per share"
    threshold = dict(spec.urgency).get(urgency)
    if threshold is None or abs_delta < threshold:
        return f"|Δ| {shown}: {urgency} urgency, as the caller decided — {rule}"
    return f"|Δ| {shown} ≥ {_delta(threshold)}: {urgency} urgency — {rule}"


def _chain_sentence(leg: OptionLeg, spec: RollSpec, now: datetime, chain: Chain) -> str:
    first, last = (days_to_expiry(now, chain.expiries[i]) for i in (0, -1))
    spread_from = (
        "the current quote's" if leg.bid is not None and leg.ask is not None else "assumed"
    )
    sentence = (
        "no listed option chain for the underlying in the snapshot, so "
        f"{len(chain.candidates)} synthetic candidates priced by the model (priced_by: "
        f"model): {len(chain.expiries)} Friday expiries {first}–{last} DTE × "
        f"{chain.strikes_per_expiry} strikes every "
        f"${_number(chain.increment)} around |Δ| {_delta(spec.target_abs_delta)}, priced with "
        f"Black–Scholes–Merton at a flat IV {float(leg.implied_vol):.2%}; spreads "
        f"{float(chain.relative_spread):.2%} of value ({spread_from})"
    )
    if chain.outside_window:
        sentence += (
            f"; no Friday lies {spec.min_dte_days}–{spec.max_dte_days} days out, so the next "
            f"one ({first} DTE) is used"
        )
    return sentence


def _listed_sentence(spec: RollSpec, now: datetime, listed: ListedCandidates) -> str:
    source = f"the {listed.underlying} chain as of {listed.as_of.isoformat()}"
    current = {
        QuoteSource.SNAPSHOT: "the current contract at its own bid/ask",
        QuoteSource.LISTED: "the current contract at its listed bid/ask",
        QuoteSource.MODEL: "the current contract at a model quote (the chain has no usable "
        "quote for it)",
    }[listed.current_quote_source]
    if listed.candidates:
        first, last = (days_to_expiry(now, listed.expiries[i]) for i in (0, -1))
        computed = len(listed.candidates) - listed.greeks_from_chain
        greeks = (
            "|Δ| from the chain"
            if not computed
            else "|Δ| computed from the listed IV"
            if not listed.greeks_from_chain
            else f"|Δ| from the chain for {listed.greeks_from_chain}, computed from the "
            f"listed IV for {computed}"
        )
        sentence = (
            f"{len(listed.candidates)} listed candidates from {source} (priced_by: listed): "
            f"{len(listed.expiries)} listed expiries {first}–{last} DTE, up to "
            f"{spec.strikes_per_expiry} listed strikes each nearest |Δ| "
            f"{_delta(spec.target_abs_delta)}, priced at their listed bid/ask; {greeks}; "
            f"{current}"
        )
        if listed.outside_window:
            sentence += (
                f"; no usable listed expiry lies {spec.min_dte_days}–{spec.max_dte_days} days "
                f"out, so the next one ({first} DTE) is used"
            )
    else:
        sentence = (
            f"no usable listed candidate in {source} (priced_by: listed): no "
            f"{spec.min_dte_days}–{spec.max_dte_days} DTE contract (or a later one) with a "
            "usable quote"
        )
    if listed.unusable:
        parts = [
            f"{len(symbols)} {_UNUSABLE_WORDS[reason].format(age=listed.max_quote_age_s)} "
            f"({_examples(symbols)})"
            for reason, symbols in listed.unusable.items()
        ]
        sentence += "; not used: " + ", ".join(parts)
    return sentence


_UNUSABLE_WORDS = {
    "crossed": "crossed (bid above ask)",
    "no bid": "with no bid",
    "stale": "stale, quoted over {age} s before now",
    "no volatility": "with no implied volatility, none listed and none implied by the mid",
}


def _examples(symbols: tuple[str, ...]) -> str:
    shown = ", ".join(symbols[:3])
    return shown + (f" and {len(symbols) - 3} more" if len(symbols) > 3 else "")


def _recommendation_sentence(
    leg: OptionLeg, spec: RollSpec, urgency: str, chosen: RollCandidate
) -> str:
    position = chosen.net_credit_per_position_usd
    sentence = (
        f"roll {leg.label} → {chosen.label} (|Δ| {_delta(chosen.abs_delta)}, "
        f"{chosen.dte_days} DTE): {_net(chosen.net_credit_usd)} per share "
        f"({_usd(abs(position))} {'credit' if position >= 0 else 'debit'} for "
        f"{_number(leg.quantity)} contract{'' if leg.quantity == 1 else 's'})"
    )
    if urgency == "emergency" and not chosen.within_debit_limit:
        sentence += (
            f"; it costs more than the {_usd(spec.max_net_debit_usd)} maximum debit, "
            "accepted because the urgency is emergency"
        )
    return sentence


def _no_roll_sentence(spec: RollSpec, urgency: str, ranked: tuple[RollCandidate, ...]) -> str:
    in_band = [candidate for candidate in ranked if candidate.in_band]
    if not in_band:
        sentence = (
            f"no roll recommended: none of the {len(ranked)} candidates lands in the |Δ| band "
            f"{_delta(spec.min_abs_delta)}–{_delta(spec.max_abs_delta)}"
        )
        return sentence + (" — close or hedge by hand" if urgency == "emergency" else "")
    best = max(in_band, key=lambda candidate: candidate.net_credit_usd)  # first of equals
    named = f"the best in-band candidate ({best.label}, |Δ| {_delta(best.abs_delta)})"
    net = best.net_credit_usd
    if urgency == "high":
        limit = spec.max_net_debit_usd
        return (
            f"no economic roll: {named} costs a {_usd(-net, limit)} debit, above the "
            f"{_usd(limit)} maximum"
        )
    minimum = spec.min_net_credit_usd
    if net < 0:
        return (
            f"no economic roll: {named} costs a {_usd(-net)} debit; {urgency} urgency rolls "
            f"only for a net credit of at least {_usd(minimum)}"
        )
    return (
        f"no economic roll: {named} yields a {_usd(net, minimum)} net credit, below the "
        f"{_usd(minimum)} minimum"
    )


def _net(amount: Decimal) -> str:
    return f"net credit {_usd(amount)}" if amount >= 0 else f"net debit {_usd(-amount)}"


def _usd(amount: Decimal, limit: Decimal | None = None) -> str:
    """$ to the cent, or to 4 decimals when cents would hide the gap to ``limit``."""
    cents = amount.quantize(_CENT)
    if limit is not None and cents == limit.quantize(_CENT) and amount != limit:
        return f"${amount.quantize(pricing.QUANTUM):,}"
    return f"${cents:,}"


def _delta(value: Decimal) -> str:
    """At least two decimals, more only when they carry information: 0.26, 0.2634."""
    two = value.quantize(_CENT)
    return f"{two}" if two == value else f"{value.normalize():f}"


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"
