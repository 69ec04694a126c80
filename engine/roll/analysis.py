"""analyse_roll: delta → urgency → candidates → ranking → a recommendation.

Candidates come from the snapshot's listed chain for the underlying when the caller
passes one (:mod:`listed`: listed strikes and expiries only, listed quotes, ``priced_by:
listed``), else from the synthetic chain (:mod:`chain`, ``priced_by: model``).

Pure and deterministic: time comes in as ``now``, and all Decimal arithmetic runs in a
fixed local context (34 digits, half-even), so the caller's context cannot change a
digit of the result.
"""

from __future__ import annotations

from datetime import datetime
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll import pricing
from bastion.engine.roll.chain import Chain, build_chain
from bastion.engine.roll.listed import (
    MAX_QUOTE_AGE_S,
    ListedCandidates,
    build_listed,
    listed_current_quote,
)
from bastion.engine.roll.model import (
    URGENCIES,
    DeltaSource,
    OptionLeg,
    PricedBy,
    RollAnalysis,
    RollCandidate,
)
from bastion.engine.roll.reasons import explain
from bastion.engine.roll.urgency import classify_urgency
from bastion.engine.snapshot.model import OptionChain

_DECIMAL_CONTEXT = Context(
    prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

RankKey = tuple[int, Decimal, Decimal, Decimal, datetime, Decimal]


def analyse_roll(
    leg: OptionLeg,
    spec: RollSpec,
    now: datetime,
    *,
    urgency: str | None = None,
    chain: OptionChain | None = None,
    max_quote_age_s: int = MAX_QUOTE_AGE_S,
) -> RollAnalysis:
    """Whether ``leg`` should be rolled as of ``now``, into what, and why.

    ``urgency``: the rules engine's verdict on the same thresholds, so that one
    authority decides it; when omitted, :func:`classify_urgency` decides.
    ``chain``: the snapshot's listed chain for the leg's underlying
    (:func:`~bastion.engine.roll.listed.find_chain`); when given, candidates come only
    from it and listed quotes older than ``max_quote_age_s`` are not used.
    Raises ValueError only for a naive ``now`` or an unknown urgency (programmer
    errors); an invalid leg cannot be built (:class:`OptionLeg` raises SnapshotError).
    """
    _require_aware(now)
    if urgency is not None and urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}, got {urgency!r}")
    with localcontext(_DECIMAL_CONTEXT):
        return _analyse(leg, spec, now, urgency, chain, max_quote_age_s)


def leg_abs_delta(leg: OptionLeg, spec: RollSpec, now: datetime) -> tuple[Decimal, DeltaSource]:
    """|delta| of the leg and where it came from: the snapshot's, else computed.

    Computed: BSM at the leg's implied vol, ACT/365 from ``now``, r from the policy and
    q from the leg (else the policy); at or after expiry, intrinsic (1 in the money,
    else 0). Rounded half-even to 4 decimals before it is compared with anything.
    """
    _require_aware(now)
    with localcontext(_DECIMAL_CONTEXT):
        valuation = _value_current(leg, spec, now)
        return _abs_delta(leg, valuation)


def rank_key(candidate: RollCandidate, target_abs_delta: Decimal) -> RankKey:
    """Acceptable first, then in band, then the rest; within each group the |delta|
    closest to target, the higher net credit, the lower probability of finishing in the
    money, the earlier expiry and the lower strike (a total order: ties cannot remain).
    """
    group = 0 if candidate.acceptable else 1 if candidate.in_band else 2
    return (
        group,
        abs(candidate.abs_delta - target_abs_delta),
        -candidate.net_credit_usd,
        candidate.probability_itm_ratio,
        candidate.expiry,
        candidate.strike,
    )


def _analyse(
    leg: OptionLeg,
    spec: RollSpec,
    now: datetime,
    given_urgency: str | None,
    listed_chain: OptionChain | None,
    max_quote_age_s: int,
) -> RollAnalysis:
    valuation = _value_current(leg, spec, now)
    abs_delta, delta_source = _abs_delta(leg, valuation)
    urgency = classify_urgency(abs_delta, spec) if given_urgency is None else given_urgency
    current = pricing.current_quote(leg, pricing.to_decimal(valuation.value))
    if listed_chain is None:
        chain: Chain | ListedCandidates = build_chain(leg, spec, now, urgency, current)
    else:
        current = listed_current_quote(leg, listed_chain, now, current, max_quote_age_s)
        chain = build_listed(leg, spec, now, urgency, current, listed_chain, max_quote_age_s)
    ranked = tuple(
        sorted(chain.candidates, key=lambda candidate: rank_key(candidate, spec.target_abs_delta))
    )
    recommended = ranked[0] if ranked and ranked[0].acceptable else None
    reasons = explain(
        leg,
        spec,
        now,
        abs_delta=abs_delta,
        delta_source=delta_source,
        urgency=urgency,
        chain=chain,
        ranked=ranked,
        recommended=recommended,
    )
    return RollAnalysis(
        leg=leg,
        as_of=now,
        expired=leg.expiry <= now,
        abs_delta=abs_delta,
        delta_source=delta_source,
        urgency=urgency,
        current_quote=current,
        candidates=ranked,
        recommended=recommended,
        reasons=reasons,
        priced_by=PricedBy.MODEL if listed_chain is None else PricedBy.LISTED,
        chain_as_of=None if listed_chain is None else listed_chain.as_of,
    )


def _value_current(leg: OptionLeg, spec: RollSpec, now: datetime) -> pricing.Valuation:
    market = pricing.market_for(leg, spec)
    time_years = pricing.years_between(now, leg.expiry)
    return pricing.value_option(leg.option_type, market, float(leg.strike), time_years)


def _abs_delta(leg: OptionLeg, valuation: pricing.Valuation) -> tuple[Decimal, DeltaSource]:
    if leg.delta is not None:
        return abs(leg.delta), DeltaSource.SNAPSHOT
    return pricing.to_decimal(abs(valuation.delta)), DeltaSource.COMPUTED


def _require_aware(now: datetime) -> None:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
