"""Roll economics: net credit / debit per share, hand-checked, and the candidate quotes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.engine.indicators.greeks import bsm_greeks, bsm_price
from bastion.engine.roll import Quote, QuoteSource, Side, analyse_roll, net_credit_usd
from bastion.engine.roll.pricing import model_quote, years_between
from tests.roll.conftest import NOW, make_leg, shipped_spec

D = Decimal


def snapshot_quote(bid: str, ask: str) -> Quote:
    return Quote(D(bid), D(ask), QuoteSource.SNAPSHOT)


def test_net_credit_when_short_put_rolled_then_matches_hand_arithmetic() -> None:
    """Buy back at mid, sell at mid, pay half of both spreads and two legs of fees."""
    current = snapshot_quote("5.10", "5.30")  # mid 5.20, spread 0.20
    candidate = snapshot_quote("6.00", "6.30")  # mid 6.15, spread 0.30
    # proceeds 6.15 − cost 5.20                        =  0.95
    # spread paid 0.50 × (0.20 + 0.30)                 = −0.25
    # fees 2 legs × (0.65 + 0.03) per contract ÷ 100   = −0.0136
    # net                                              =  0.6864 credit
    assert net_credit_usd(Side.SHORT, current, candidate, shipped_spec()) == D("0.6864")


def test_net_credit_when_long_put_rolled_then_proceeds_and_cost_swap() -> None:
    """A long leg sells the current option and buys the candidate: 5.20 − 6.15 − 0.2636."""
    current = snapshot_quote("5.10", "5.30")
    candidate = snapshot_quote("6.00", "6.30")
    assert net_credit_usd(Side.LONG, current, candidate, shipped_spec()) == D("-1.2136")


def test_analyse_when_short_put_rolled_then_recommended_economics_match_hand_arithmetic() -> None:
    """Short SPY 443 put (|Δ| 0.54, high) rolled into the 2026-11-27 430 put: $0.3236 debit."""
    leg = make_leg(strike=D(443), bid=D("8.28"), ask=D("8.48"))  # mid 8.38, spread 0.20
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    assert (analysis.abs_delta, analysis.urgency) == (D("0.5418"), "high")
    chosen = analysis.recommended
    assert chosen is not None
    assert (chosen.label, chosen.dte_days, chosen.abs_delta) == (
        "SPY 2026-11-27 P 430",
        57,
        D("0.3412"),
    )
    # Model value: BSM at the leg's flat 20 % vol, r 4 %, q 0, ACT/365 from NOW.
    time_years = years_between(NOW, chosen.expiry)
    value = bsm_price("put", spot=440, strike=430, time_years=time_years, rate=0.04, volatility=0.2)
    assert chosen.model_value_usd == round(D(value), 4) == D("8.2770")
    # Quote: the current leg's relative spread 0.20 / 8.38 = 2.3866 % around 8.2770,
    # i.e. ± 0.09877, rounded outward to the cent: bid 8.17, ask 8.38 (mid 8.275).
    assert (chosen.quote.bid_usd, chosen.quote.ask_usd) == (D("8.17"), D("8.38"))
    # proceeds 8.275 − cost 8.38                      = −0.105
    # spread paid 0.5 × (0.20 + 0.21)                 = −0.205
    # fees 2 × (0.65 + 0.03) ÷ 100                    = −0.0136
    # net                                             = −0.3236 (a debit, within $0.50)
    assert chosen.net_credit_usd == D("-0.3236")
    assert chosen.net_credit_per_position_usd == D("-32.36")  # × 100 shares × 1 contract
    assert chosen.within_debit_limit and not chosen.economic
    assert analysis.reasons[-1] == (
        "roll SPY 2026-10-16 P 443 → SPY 2026-11-27 P 430 (|Δ| 0.3412, 57 DTE): "
        "net debit $0.32 per share ($32.36 debit for 1 contract)"
    )


def test_candidate_figures_when_priced_then_match_bsm_greeks() -> None:
    """Time value, theta per day and N(−d2) of every candidate come from the same BSM."""
    analysis = analyse_roll(make_leg(), shipped_spec(), NOW)
    for candidate in analysis.candidates[:12]:
        time_years = years_between(NOW, candidate.expiry)
        greeks = bsm_greeks(
            "put",
            spot=440,
            strike=candidate.strike,
            time_years=time_years,
            rate=0.04,
            volatility=0.2,
        )
        intrinsic = max(candidate.strike - 440, D(0))
        assert candidate.abs_delta == round(D(abs(greeks.delta)), 4)
        assert candidate.theta_per_day_usd == round(D(greeks.theta_per_day), 4)
        assert candidate.time_value_usd == candidate.model_value_usd - intrinsic
        assert D(0) < candidate.probability_itm_ratio < D(1)


def test_candidate_quotes_when_leg_has_bid_ask_then_share_its_relative_spread() -> None:
    """A 10 % wide current quote gives candidates a ~10 % wide quote (cent-rounded out)."""
    analysis = analyse_roll(make_leg(bid=D("7.60"), ask=D("8.40")), shipped_spec(), NOW)
    for candidate in analysis.candidates:
        value = candidate.model_value_usd
        assert candidate.quote.bid_usd <= value * D("0.95") + D("0.000001")
        assert candidate.quote.ask_usd >= value * D("1.05") - D("0.000001")
        assert candidate.quote.spread_usd <= value * D("0.10") + D("0.02")


@pytest.mark.parametrize(
    ("value", "bid", "ask"),
    [
        ("10.00", "9.90", "10.10"),  # 2 % of 10.00: ± 0.10 exactly
        ("1.234", "1.22", "1.25"),  # ± 0.01234, rounded outward to the cent
        ("0.20", "0.19", "0.21"),  # ± 0.002 → outward to a cent each side
        ("0.0000", "0", "0.01"),  # worthless: the spread floors at $0.01
    ],
)
def test_model_quote_when_no_bid_ask_then_two_percent_rounded_out_with_cent_floor(
    value: str, bid: str, ask: str
) -> None:
    """No current quote: 2 % of value around it, bid down and ask up to the cent."""
    quote = model_quote(D(value), D("0.02"))
    assert (quote.bid_usd, quote.ask_usd, quote.source) == (D(bid), D(ask), QuoteSource.MODEL)
    assert quote.spread_usd >= D("0.01")
