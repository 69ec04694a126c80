"""Urgency from |delta| (at, below and above each threshold) and the acceptance matrix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bastion.engine.roll import accepts, analyse_roll, classify_urgency
from tests.roll.conftest import NOW, make_leg, shipped_spec

D = Decimal
TICK = D("0.0001")  # the resolution of a computed |delta|

# (urgency, its threshold in policies/roll.yaml, the urgency just below it)
THRESHOLDS = [
    ("emergency", D("0.70"), "high"),
    ("high", D("0.50"), "medium"),
    ("medium", D("0.40"), "low"),
    ("low", D("0.35"), "none"),
]


@pytest.mark.parametrize(("urgency", "threshold", "below"), THRESHOLDS)
def test_classify_urgency_when_exactly_at_threshold_then_that_urgency(
    urgency: str, threshold: Decimal, below: str
) -> None:
    """Reaching a threshold is enough (≥)."""
    assert classify_urgency(threshold, shipped_spec()) == urgency


@pytest.mark.parametrize(("urgency", "threshold", "below"), THRESHOLDS)
def test_classify_urgency_when_one_tick_above_threshold_then_that_urgency(
    urgency: str, threshold: Decimal, below: str
) -> None:
    """One tick above a threshold stays at its urgency (the next one is far above)."""
    assert classify_urgency(threshold + TICK, shipped_spec()) == urgency


@pytest.mark.parametrize(("urgency", "threshold", "below"), THRESHOLDS)
def test_classify_urgency_when_one_tick_below_threshold_then_the_lower_urgency(
    urgency: str, threshold: Decimal, below: str
) -> None:
    """One tick below a threshold falls to the next urgency down."""
    assert classify_urgency(threshold - TICK, shipped_spec()) == below


@pytest.mark.parametrize(("abs_delta", "urgency"), [(D(0), "none"), (D(1), "emergency")])
def test_classify_urgency_when_at_the_ends_of_the_range_then_none_or_emergency(
    abs_delta: Decimal, urgency: str
) -> None:
    """|Δ| 0 needs no roll; |Δ| 1 is an emergency."""
    assert classify_urgency(abs_delta, shipped_spec()) == urgency


# (urgency, net credit per share, in band, accepted) — the shipped policy allows a
# $0.50 debit at high urgency and wants a $0.10 credit at medium and low.
MATRIX = [
    ("emergency", D("-25.00"), True, True),
    ("emergency", D("1.00"), False, False),
    ("high", D("-0.50"), True, True),
    ("high", D("-0.5001"), True, False),
    ("high", D("0.20"), False, False),
    ("medium", D("0.10"), True, True),
    ("medium", D("0.0999"), True, False),
    ("medium", D("-0.10"), True, False),
    ("low", D("0.10"), True, True),
    ("low", D("0.0999"), True, False),
    ("none", D("5.00"), True, False),
]


@pytest.mark.parametrize(("urgency", "net", "in_band", "accepted"), MATRIX)
def test_accepts_when_urgency_net_and_band_vary_then_matrix_holds(
    urgency: str, net: Decimal, in_band: bool, accepted: bool
) -> None:
    """emergency: any in-band; high: net ≥ −max debit; medium/low: credit ≥ min; none: never."""
    assert accepts(urgency, in_band=in_band, net_credit_usd=net, spec=shipped_spec()) is accepted


@pytest.mark.parametrize(
    ("delta", "urgency"),
    [("0.75", "emergency"), ("0.55", "high"), ("0.45", "medium"), ("0.36", "low"), ("0.2", "none")],
)
def test_analyse_when_urgency_varies_then_each_candidate_follows_the_matrix(
    delta: str, urgency: str
) -> None:
    """Every candidate's `acceptable` flag is the matrix applied to its band and net."""
    analysis = analyse_roll(make_leg(delta=D(delta)), shipped_spec(), NOW)
    assert analysis.urgency == urgency
    for candidate in analysis.candidates:
        expected = accepts(
            urgency,
            in_band=candidate.in_band,
            net_credit_usd=candidate.net_credit_usd,
            spec=shipped_spec(),
        )
        assert candidate.acceptable is expected
    if urgency == "none":
        assert analysis.recommended is None
        assert analysis.reasons[1].endswith(
            "is below the low-urgency threshold 0.35: no roll needed"
        )


def test_analyse_when_emergency_and_every_roll_is_a_big_debit_then_rolls_anyway() -> None:
    """An emergency rolls into the best in-band strike and says it is over the max debit."""
    leg = make_leg(strike=D(480))  # 40 points in the money: every roll is a large debit
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    chosen = analysis.recommended
    assert analysis.urgency == "emergency" and chosen is not None
    assert chosen.in_band and not chosen.within_debit_limit
    assert analysis.reasons[-1].endswith(
        "it costs more than the $0.50 maximum debit, accepted because the urgency is emergency"
    )


def test_analyse_when_medium_and_a_credit_is_available_then_recommends_the_credit_roll() -> None:
    """Medium urgency with a cheap current option: roll out for a credit of ≥ $0.10."""
    leg = make_leg(strike=D(430), delta=D("0.42"))  # the snapshot's delta sets the urgency
    analysis = analyse_roll(leg, shipped_spec(), NOW)
    chosen = analysis.recommended
    assert analysis.urgency == "medium" and chosen is not None
    assert chosen.economic and chosen.net_credit_usd >= D("0.10")
    assert analysis.reasons[-1].startswith("roll SPY 2026-10-16 P 430 → ")


def test_analyse_when_caller_passes_the_urgency_then_it_decides_acceptance() -> None:
    """The rules engine's urgency wins; the reason says whose verdict it is."""
    leg = make_leg(delta=D("0.45"))  # medium by the thresholds
    analysis = analyse_roll(leg, shipped_spec(), NOW, urgency="emergency")
    assert analysis.urgency == "emergency"
    assert analysis.recommended is not None and analysis.recommended.in_band
    assert analysis.reasons[1].startswith("|Δ| 0.45: emergency urgency, as the caller decided")
    agreed = analyse_roll(leg, shipped_spec(), NOW, urgency="medium")
    assert agreed == analyse_roll(leg, shipped_spec(), NOW)


def test_analyse_when_caller_passes_an_unknown_urgency_then_value_error() -> None:
    """A misspelt urgency is a programmer error, not a silent 'low'."""
    with pytest.raises(ValueError, match="urgency must be one of"):
        analyse_roll(make_leg(), shipped_spec(), NOW, urgency="urgent")
