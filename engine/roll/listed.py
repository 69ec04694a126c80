"""Roll candidates from the snapshot's listed option chain, priced with listed quotes.

When the snapshot carries a chain for the position's underlying (``option_chains``),
candidates come only from it — never an unlisted strike or expiry:

- **which contracts**: the leg's type (call / put), expiring after ``now``, other than
  the current contract, with days-to-expiry in [min_dte_days, max_dte_days]; when no
  listed expiry lies in that window, the first listed expiry after it (and the analysis
  says so). Per expiry, the ``strikes_per_expiry`` usable contracts whose |delta| is
  nearest the target (ties: the lower strike);
- **usable quotes only**: a contract of the window is left out, and counted in the
  reasons, when its quote is *crossed* (bid > ask), has *no bid* (bid 0: nothing to sell into), is
  *stale* (quoted more than ``max_quote_age_s`` before ``now``; the quote time is the
  contract's ``quoted_at``, else the chain's ``as_of``), or when it has *no volatility*
  (none listed and none implied by its mid);
- **prices**: the listed bid/ask (mid and spread from them); |delta| and theta from the
  chain when it gives them, else Black–Scholes–Merton at the contract's listed implied
  volatility (else the one its mid implies); the model value and probability in the
  money are BSM at that volatility. Every candidate is marked ``priced_by: listed``.

The current contract is quoted with the leg's own bid/ask when it has one, else with the
chain's quote for it when that quote is usable, else by the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from bastion.engine.indicators.greeks import ImpliedVolatilityError, implied_volatility
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.roll import pricing
from bastion.engine.roll.chain import Terms, days_to_expiry, judged_candidate
from bastion.engine.roll.model import OptionLeg, Quote, QuoteSource, RollCandidate
from bastion.engine.snapshot.model import ListedOption, OptionChain

MAX_QUOTE_AGE_S = 900  # a listed quote older than 15 minutes is not a price to roll at
UNUSABLE = ("crossed", "no bid", "stale", "no volatility")  # the order reasons are shown in
_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})\d{6}[CP]\d{8}$")


@dataclass(frozen=True, slots=True)
class ListedCandidates:
    """The candidates (unranked) from one listed chain, and what was left out and why."""

    candidates: tuple[RollCandidate, ...]
    underlying: str
    as_of: datetime
    expiries: tuple[datetime, ...]  # of the candidates, ascending
    outside_window: bool  # no usable listed expiry in the DTE window: the next one was used
    greeks_from_chain: int  # candidates whose |delta| the chain gave
    unusable: Mapping[str, tuple[str, ...]]  # reason → contract symbols, in chain order
    current_quote_source: QuoteSource
    max_quote_age_s: int


def find_chain(chains: Mapping[str, OptionChain], contract_symbol: str) -> OptionChain | None:
    """The chain for a position: the one listing its contract symbol, else the one keyed by
    the OCC root of that symbol (``SPY261218P00591000`` → ``SPY``), else by the symbol."""
    for chain in chains.values():
        if any(contract.symbol == contract_symbol for contract in chain.contracts):
            return chain
    match = _OCC.match(contract_symbol.replace(" ", ""))
    if match is not None and match.group(1) in chains:
        return chains[match.group(1)]
    return chains.get(contract_symbol)


def quote_problem(contract: ListedOption, as_of: datetime, now: datetime, max_age_s: int) -> str:
    """Why a listed quote cannot be used ("" when it can): crossed, no bid or stale."""
    if contract.bid_usd > contract.ask_usd:
        return "crossed"
    if contract.bid_usd <= 0:
        return "no bid"
    quoted_at = contract.quoted_at or as_of
    if (now - quoted_at).total_seconds() > max_age_s:
        return "stale"
    return ""


def current_listing(leg: OptionLeg, chain: OptionChain) -> ListedOption | None:
    """The chain's entry for the leg's own contract (same type, strike and expiry)."""
    for contract in chain.contracts:
        if _is_current(leg, contract):
            return contract
    return None


def listed_current_quote(
    leg: OptionLeg, chain: OptionChain, now: datetime, model: Quote, max_age_s: int
) -> Quote:
    """The leg's own bid/ask, else the chain's usable quote for it, else ``model``."""
    if leg.bid is not None and leg.ask is not None:
        return Quote(leg.bid, leg.ask, QuoteSource.SNAPSHOT)
    listing = current_listing(leg, chain)
    if listing is not None and not quote_problem(listing, chain.as_of, now, max_age_s):
        return Quote(listing.bid_usd, listing.ask_usd, QuoteSource.LISTED)
    return model


def build_listed(
    leg: OptionLeg,
    spec: RollSpec,
    now: datetime,
    urgency: str,
    current: Quote,
    chain: OptionChain,
    max_quote_age_s: int = MAX_QUOTE_AGE_S,
) -> ListedCandidates:
    """Every usable listed candidate for ``leg``, priced, with economics (module doc).

    Only the contracts of the DTE window are checked and priced (else those of the first
    later expiry that has a usable one): what lies outside is neither a candidate nor a
    reason."""
    unusable: dict[str, list[str]] = {reason: [] for reason in UNUSABLE}
    by_expiry: dict[datetime, list[ListedOption]] = {}
    for contract in chain.contracts:
        if (
            contract.option_type == leg.option_type.value
            and contract.expires_at > now
            and not _is_current(leg, contract)
        ):
            by_expiry.setdefault(contract.expires_at, []).append(contract)

    def priced(contracts: list[ListedOption]) -> list[tuple[RollCandidate, bool]]:
        found: list[tuple[RollCandidate, bool]] = []
        for contract in contracts:
            problem = quote_problem(contract, chain.as_of, now, max_quote_age_s)
            candidate = (
                None if problem else _priced(leg, spec, now, urgency, current, chain, contract)
            )
            if candidate is None:
                unusable[problem or "no volatility"].append(contract.symbol)
            else:
                found.append((candidate, contract.delta is not None))
        return found

    dte = {expiry: days_to_expiry(now, expiry) for expiry in by_expiry}
    window = priced(
        [
            contract
            for expiry in sorted(by_expiry)
            if spec.min_dte_days <= dte[expiry] <= spec.max_dte_days
            for contract in by_expiry[expiry]
        ]
    )
    outside_window = not window
    for expiry in sorted(e for e in by_expiry if dte[e] > spec.max_dte_days):
        if window:
            break
        window = priced(by_expiry[expiry])
    chosen = _nearest_per_expiry(window, spec)
    return ListedCandidates(
        candidates=tuple(candidate for candidate, _ in chosen),
        underlying=chain.underlying,
        as_of=chain.as_of,
        expiries=tuple(sorted({candidate.expiry for candidate, _ in chosen})),
        outside_window=outside_window and bool(chosen),
        greeks_from_chain=sum(1 for _, from_chain in chosen if from_chain),
        unusable={reason: tuple(symbols) for reason, symbols in unusable.items() if symbols},
        current_quote_source=current.source,
        max_quote_age_s=max_quote_age_s,
    )


def _nearest_per_expiry(
    priced: list[tuple[RollCandidate, bool]], spec: RollSpec
) -> list[tuple[RollCandidate, bool]]:
    by_expiry: dict[datetime, list[tuple[RollCandidate, bool]]] = {}
    for item in priced:
        by_expiry.setdefault(item[0].expiry, []).append(item)
    chosen: list[tuple[RollCandidate, bool]] = []
    for expiry in sorted(by_expiry):
        nearest = sorted(
            by_expiry[expiry],
            key=lambda item: (abs(item[0].abs_delta - spec.target_abs_delta), item[0].strike),
        )
        chosen.extend(nearest[: spec.strikes_per_expiry])
    return chosen


def _priced(
    leg: OptionLeg,
    spec: RollSpec,
    now: datetime,
    urgency: str,
    current: Quote,
    chain: OptionChain,
    contract: ListedOption,
) -> RollCandidate | None:
    """The candidate of one usable listed contract; None when no volatility is known."""
    quote = Quote(contract.bid_usd, contract.ask_usd, QuoteSource.LISTED)
    market = pricing.market_for(leg, spec)
    time_years = pricing.years_between(now, contract.expires_at)
    volatility = _volatility(contract, market, quote.mid_usd, time_years)
    if volatility is None:
        return None
    market = replace(market, volatility=volatility)
    valuation = pricing.value_option(
        leg.option_type, market, float(contract.strike_usd), time_years
    )
    abs_delta = (
        abs(contract.delta).quantize(pricing.QUANTUM) + 0
        if contract.delta is not None
        else pricing.to_decimal(abs(valuation.delta))
    )
    theta = (
        contract.theta_per_day_usd
        if contract.theta_per_day_usd is not None
        else pricing.to_decimal(valuation.theta_per_day)
    )
    terms = Terms(
        chain.underlying,
        contract.expires_at,
        contract.strike_usd,
        days_to_expiry(now, contract.expires_at),
        contract.symbol,
    )
    return judged_candidate(
        leg,
        spec,
        urgency,
        current,
        terms,
        abs_delta=abs_delta,
        model_value_usd=pricing.to_decimal(valuation.value),
        quote=quote,
        theta_per_day_usd=theta,
        probability_itm_ratio=pricing.to_decimal(valuation.probability_itm),
    )


def _volatility(
    contract: ListedOption, market: pricing.Market, mid: Decimal, time_years: float
) -> float | None:
    if contract.implied_volatility is not None:
        return float(contract.implied_volatility)
    try:
        return implied_volatility(
            mid,
            contract.option_type,
            spot=market.spot,
            strike=contract.strike_usd,
            time_years=time_years,
            rate=market.rate,
            dividend_yield=market.dividend_yield,
        )
    except (ImpliedVolatilityError, ValueError):
        return None


def _is_current(leg: OptionLeg, contract: ListedOption) -> bool:
    return contract.symbol == leg.symbol or (
        contract.option_type == leg.option_type.value
        and contract.strike_usd == leg.strike
        and contract.expires_at == leg.expiry
    )
