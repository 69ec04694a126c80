"""Roll candidates from a listed chain: listed contracts only, listed quotes, marked so."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.roll import (
    MAX_QUOTE_AGE_S,
    PricedBy,
    QuoteSource,
    RollCandidate,
    Side,
    analyse_roll,
    find_chain,
)
from bastion.engine.snapshot import load_snapshot
from bastion.engine.snapshot.model import ListedOption, OptionChain
from tests.conftest import ROOT
from tests.roll.conftest import EXPIRY, NOW, make_leg, shipped_spec, spec_with

D = Decimal
# Fridays 22, 29, 36, 43 and 71 DTE from NOW, at the current contract's time of day.
FRIDAYS = tuple(EXPIRY + timedelta(days=7 * week) for week in (1, 2, 3, 4, 8))
EXAMPLE = ROOT / "examples" / "snapshots" / "option-chain.json"


def contract(
    strike: int | str,
    expiry: datetime = FRIDAYS[0],
    *,
    bid: str = "4.00",
    ask: str = "4.20",
    option_type: str = "put",
    **extra: object,
) -> ListedOption:
    """One listed SPY contract; a 20 % IV unless told otherwise."""
    letter = "P" if option_type == "put" else "C"
    fields: dict[str, object] = {
        "symbol": f"SPY{expiry:%y%m%d}{letter}{int(D(strike) * 1000):08d}",
        "option_type": option_type,
        "strike_usd": D(strike),
        "expires_at": expiry,
        "bid_usd": D(bid),
        "ask_usd": D(ask),
        "implied_volatility": D("0.20"),
    }
    fields.update(extra)
    return ListedOption(**fields)  # type: ignore[arg-type]


def chain(*contracts: ListedOption, as_of: datetime = NOW) -> OptionChain:
    return OptionChain(underlying="SPY", as_of=as_of, contracts=contracts)


def ladder(expiries: tuple[datetime, ...] = FRIDAYS[:4]) -> OptionChain:
    """Puts every $5 from 400 to 440 on each expiry, quoted 4.00 / 4.20."""
    return chain(*(contract(k, e) for e in expiries for k in range(400, 445, 5)))


def listed_terms(candidates: tuple[RollCandidate, ...]) -> set[tuple[Decimal, datetime]]:
    return {(c.strike, c.expiry) for c in candidates}


def test_analyse_when_chain_given_then_every_candidate_is_a_listed_contract() -> None:
    """Candidates are exactly listed (strike, expiry) pairs, each marked priced_by listed."""
    listed = ladder()
    analysis = analyse_roll(make_leg(delta=D("0.55")), shipped_spec(), NOW, chain=listed)
    terms = {(c.strike_usd, c.expires_at) for c in listed.contracts}
    assert analysis.candidates
    assert listed_terms(analysis.candidates) <= terms
    assert {c.priced_by for c in analysis.candidates} == {PricedBy.LISTED}
    assert analysis.priced_by is PricedBy.LISTED
    assert analysis.chain_as_of == NOW
    assert "listed candidates from the SPY chain" in analysis.reasons[2]


def test_analyse_when_chain_given_then_quotes_are_the_listed_bid_and_ask() -> None:
    """Mid and spread come from the listed quote, not from a model value."""
    listed = chain(contract(420, bid="3.10", ask="3.50"))
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=listed)
    (only,) = analysis.candidates
    assert only.quote.source is QuoteSource.LISTED
    assert (only.quote.bid_usd, only.quote.ask_usd) == (D("3.10"), D("3.50"))
    assert (only.quote.mid_usd, only.quote.spread_usd) == (D("3.30"), D("0.40"))
    assert only.contract_symbol == "SPY261023P00420000"
    assert only.to_dict()["priced_by"] == "listed"


def test_analyse_when_chain_gives_delta_then_it_is_used_else_computed_from_listed_iv() -> None:
    """A listed delta is taken as is; without one, BSM at the listed IV (not the leg's)."""
    with_delta = contract(420, delta=D("-0.3012"))
    without = contract(425, FRIDAYS[1], implied_volatility=D("0.35"))
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=chain(with_delta, without))
    by_strike = {c.strike: c for c in analysis.candidates}
    assert by_strike[D(420)].abs_delta == D("0.3012")
    flat = analyse_roll(make_leg(implied_vol=D("0.35")), shipped_spec(), NOW)  # same IV
    model_425 = [c for c in flat.candidates if c.strike == 425 and c.expiry == FRIDAYS[1]]
    assert by_strike[D(425)].abs_delta == model_425[0].abs_delta


def test_analyse_when_no_chain_then_candidates_and_reason_say_model() -> None:
    """Without a chain the synthetic candidates are marked model, and the reason says so."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW)
    assert analysis.priced_by is PricedBy.MODEL
    assert {c.priced_by for c in analysis.candidates} == {PricedBy.MODEL}
    assert all(c.contract_symbol is None for c in analysis.candidates)
    assert "no listed option chain" in analysis.reasons[2]
    assert "priced_by: model" in analysis.reasons[2]
    assert analysis.to_dict()["priced_by"] == "model"


def test_analyse_when_quote_crossed_then_left_out_and_reason_names_it() -> None:
    """bid > ask is no price: the contract is not a candidate, and the reason says why."""
    crossed = contract(415, bid="4.50", ask="4.20")
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=chain(crossed, contract(420)))
    assert listed_terms(analysis.candidates) == {(D(420), FRIDAYS[0])}
    assert "1 crossed (bid above ask) (SPY261023P00415000)" in analysis.reasons[2]


def test_analyse_when_quote_older_than_max_age_then_stale_and_not_used() -> None:
    """A quote one second past the maximum age is stale; one exactly at it is used."""
    at_limit = contract(420, quoted_at=NOW - timedelta(seconds=MAX_QUOTE_AGE_S))
    too_old = contract(425, quoted_at=NOW - timedelta(seconds=MAX_QUOTE_AGE_S + 1))
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=chain(at_limit, too_old))
    assert listed_terms(analysis.candidates) == {(D(420), FRIDAYS[0])}
    assert f"1 stale, quoted over {MAX_QUOTE_AGE_S} s before now (" in analysis.reasons[2]


def test_analyse_when_whole_chain_stale_then_nothing_recommended_and_no_model_fallback() -> None:
    """A chain read an hour ago: no candidate at all — never a made-up contract instead."""
    old = ladder()
    stale = chain(*old.contracts, as_of=NOW - timedelta(hours=1))
    analysis = analyse_roll(make_leg(delta=D("0.75")), shipped_spec(), NOW, chain=stale)
    assert analysis.candidates == ()
    assert analysis.recommended is None
    assert analysis.priced_by is PricedBy.LISTED
    assert "no usable listed candidate" in analysis.reasons[2]
    assert "unlisted contract is never recommended" in analysis.reasons[-1]


def test_analyse_when_no_bid_then_contract_not_used() -> None:
    """A bid of 0 is nothing to sell into."""
    analysis = analyse_roll(
        make_leg(), shipped_spec(), NOW, chain=chain(contract(415, bid="0"), contract(420))
    )
    assert listed_terms(analysis.candidates) == {(D(420), FRIDAYS[0])}
    assert "1 with no bid (SPY261023P00415000)" in analysis.reasons[2]


def test_analyse_when_no_listed_expiry_in_window_then_next_listed_one_and_reason_says_so() -> None:
    """Only a 71-DTE expiry is listed beyond a 21–60 window: it is used, and said."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=ladder((FRIDAYS[4],)))
    assert {c.dte_days for c in analysis.candidates} == {71}
    assert "so the next one (71 DTE) is used" in analysis.reasons[2]


def test_analyse_when_chain_lists_other_type_and_current_contract_then_both_skipped() -> None:
    """Calls are no candidates for a put; the current contract itself is no roll."""
    current = contract(445, EXPIRY)
    call = contract(420, option_type="call")
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=chain(current, call))
    assert analysis.candidates == ()


def test_analyse_when_chain_quotes_current_contract_then_its_listed_quote_is_used() -> None:
    """The current leg without its own bid/ask is bought back at the chain's quote."""
    current = contract(445, EXPIRY, bid="7.90", ask="8.30")
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW, chain=chain(current, contract(420)))
    assert analysis.current_quote.source is QuoteSource.LISTED
    assert analysis.current_quote.mid_usd == D("8.10")
    assert "the current contract at its listed bid/ask" in analysis.reasons[2]


def test_analyse_when_strikes_per_expiry_two_then_two_nearest_target_per_expiry() -> None:
    """Per listed expiry, only the strikes_per_expiry contracts nearest the target |Δ|."""
    analysis = analyse_roll(
        make_leg(), spec_with(strikes_per_expiry=2), NOW, chain=ladder(FRIDAYS[:2])
    )
    assert len(analysis.candidates) == 4


def test_find_chain_when_position_symbol_is_occ_then_chain_of_its_root() -> None:
    """A position in SPY261218P00605000 finds the SPY chain, listed or not."""
    chains = {"SPY": ladder(), "QQQ": chain()}
    assert find_chain(chains, "SPY261218P00605000") is chains["SPY"]
    assert find_chain(chains, "SPY") is chains["SPY"]
    assert find_chain(chains, "IWM261218P00200000") is None


def test_example_snapshot_when_analysed_then_roll_into_a_listed_contract() -> None:
    """examples/snapshots/option-chain.json: an emergency roll into a listed put."""
    snapshot = load_snapshot(EXAMPLE)
    position = next(p for p in snapshot.positions if p.option is not None)
    from bastion.engine.evaluation.passes import roll_leg  # noqa: PLC0415 (the engine's path)

    leg = roll_leg(position)
    assert leg is not None
    listed = find_chain(snapshot.option_chains, leg.symbol)
    assert listed is not None
    analysis = analyse_roll(leg, shipped_spec(), snapshot.as_of, chain=listed)
    assert analysis.recommended is not None
    symbols = {c.symbol for c in listed.contracts}
    assert analysis.recommended.contract_symbol in symbols
    assert analysis.current_quote.source is QuoteSource.LISTED


# -- property: random chains ---------------------------------------------------------------


@st.composite
def chains(draw: st.DrawFn) -> OptionChain:
    picks = draw(
        st.lists(
            st.tuples(
                st.integers(380, 480),  # strike
                st.sampled_from(FRIDAYS),
                st.decimals("0", "30", places=2),  # bid
                st.decimals("0", "3", places=2),  # spread (≥ 0: validation refuses crossed)
                st.none() | st.decimals("0.05", "1.5", places=3),  # IV
                st.none() | st.decimals("-1", "0", places=4),  # put delta
                st.integers(0, 2 * MAX_QUOTE_AGE_S),  # quote age
            ),
            max_size=40,
            unique_by=lambda pick: (pick[0], pick[1]),
        )
    )
    listed = []
    for strike, expiry, bid, spread, iv, delta, age in picks:
        ask = bid + spread if bid + spread > 0 else D("0.01")
        listed.append(
            contract(
                strike,
                expiry,
                bid=str(bid),
                ask=str(ask),
                implied_volatility=iv,
                delta=delta,
                quoted_at=NOW - timedelta(seconds=age),
            )
        )
    return chain(*listed)


@settings(max_examples=120, deadline=None)
@given(chains(), st.sampled_from(Side), st.decimals("0", "0.99", places=2))
def test_analyse_when_random_chain_then_recommendation_is_always_listed(
    listed: OptionChain, side: Side, delta: Decimal
) -> None:
    """Whatever the chain: every candidate, and so any pick, is a listed (strike, expiry)
    with a usable quote, priced at that quote."""
    leg = make_leg(side=side, delta=delta, option_type=OptionType.PUT)
    analysis = analyse_roll(leg, shipped_spec(), NOW, chain=listed)
    quotes = {(c.strike_usd, c.expires_at): c for c in listed.contracts}
    for candidate in analysis.candidates:
        source = quotes[(candidate.strike, candidate.expiry)]
        assert candidate.priced_by is PricedBy.LISTED
        assert candidate.contract_symbol == source.symbol
        assert (candidate.quote.bid_usd, candidate.quote.ask_usd) == (
            source.bid_usd,
            source.ask_usd,
        )
        assert source.bid_usd > 0
        assert source.quoted_at is not None
        assert NOW - source.quoted_at <= timedelta(seconds=MAX_QUOTE_AGE_S)
    if analysis.recommended is not None:
        assert (analysis.recommended.strike, analysis.recommended.expiry) in quotes
    json.dumps(analysis.to_dict())


def test_evaluate_when_snapshot_has_chain_then_roll_decision_says_listed() -> None:
    """Through the engine's roll pass: the decision's inputs and pick say listed."""
    from bastion.engine.evaluation.compiled import compile_policy_set  # noqa: PLC0415
    from bastion.engine.evaluation.evaluate import evaluate  # noqa: PLC0415
    from bastion.engine.lint.runner import load_policy_set  # noqa: PLC0415
    from bastion.engine.state import State  # noqa: PLC0415
    from tests.conftest import POLICIES  # noqa: PLC0415

    compiled = compile_policy_set(load_policy_set([POLICIES / "roll.yaml"]))
    try:
        snapshot = load_snapshot(EXAMPLE)
        decisions, _ = evaluate(compiled, snapshot, State(), snapshot.as_of)
    finally:
        compiled.close()
    (roll,) = [d for d in decisions if d.kind == "roll"]
    assert roll.outcome == "roll"
    assert ("priced_by", "listed") in roll.inputs
    recommended = dict(roll.details)["recommended"]
    assert isinstance(recommended, dict)
    assert recommended["priced_by"] == "listed"
    assert recommended["contract_symbol"] in {
        c.symbol for c in snapshot.option_chains["SPY"].contracts
    }
