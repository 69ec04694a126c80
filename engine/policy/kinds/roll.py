"""RollPolicy: when an option position should be rolled, and what a roll may cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec
from bastion.engine.policy.vocabulary import ROLL_URGENCIES

KIND = "RollPolicy"
FILE_STEM = "roll"
TITLE = "Bastion RollPolicy"
DESCRIPTION = (
    "Option roll triggers: the |delta| at which a position is rolled, the delta band a "
    "roll should land in, and the economics a roll must meet after all costs."
)


def _abs_delta(description: str, **kwargs: Any) -> Any:
    return s.number(f"{description} Absolute delta, 0 to 1.", minimum=0, maximum=1, **kwargs)


def _usd(description: str, **kwargs: Any) -> Any:
    return s.number(f"{description} In USD per share (per contract ÷ multiplier).", **kwargs)


SPEC_SCHEMA = s.obj(
    "Roll settings.",
    {
        "triggers": s.obj(
            "|delta| levels that trigger a roll.",
            {
                "normal_abs_delta": _abs_delta(
                    "Roll when |delta| reaches this.", default=0.5, examples=[0.5]
                ),
                "emergency_abs_delta": _abs_delta(
                    "Roll at once, whatever the economics, when |delta| reaches this.",
                    default=0.7,
                    examples=[0.7],
                ),
            },
        ),
        "target_band": s.obj(
            "The |delta| band a new position should land in.",
            {
                "min_abs_delta": _abs_delta("Lowest acceptable |delta|.", default=0.15),
                "target_abs_delta": _abs_delta("Preferred |delta|.", default=0.25),
                "max_abs_delta": _abs_delta("Highest acceptable |delta|.", default=0.35),
            },
        ),
        "urgency": s.obj(
            "Minimum |delta| for each urgency; below `low` a position needs no roll.",
            {
                name: _abs_delta(f"|delta| from which a roll is {name} urgency.", default=value)
                for name, value in zip(ROLL_URGENCIES, (0.7, 0.5, 0.4, 0.35), strict=True)
            },
        ),
        "economics": s.obj(
            "What a roll may cost. Net credit/debit is after commission, the share of the "
            "spread paid and regulatory fees.",
            {
                "min_net_credit_usd": _usd(
                    "Smallest net credit worth rolling for.", minimum=0, default=0.10
                ),
                "max_net_debit_usd": _usd(
                    "Largest net debit Bastion accepts for a roll.", minimum=0, default=0.50
                ),
                "commission_per_contract_usd": s.number(
                    "Broker commission per contract and leg, USD.", minimum=0, default=0.65
                ),
                "regulatory_fees_per_contract_usd": s.number(
                    "Regulatory and exchange fees per contract and leg, USD.",
                    minimum=0,
                    default=0.03,
                ),
                "spread_cost_ratio": s.ratio(
                    "Share of each leg's bid/ask spread assumed paid (0.5 = cross to mid).",
                    default=0.5,
                ),
                "contract_multiplier": s.number(
                    "Shares per contract.", integer=True, minimum=1, default=100
                ),
            },
        ),
        "candidates": s.obj(
            "Which strikes and expiries are considered for a roll.",
            {
                "min_dte_days": s.number(
                    "Shortest days-to-expiry of a candidate.", integer=True, minimum=0, default=21
                ),
                "max_dte_days": s.number(
                    "Longest days-to-expiry of a candidate.", integer=True, minimum=1, default=60
                ),
                "strikes_per_expiry": s.number(
                    "Strikes considered around the target delta per expiry.",
                    integer=True,
                    minimum=1,
                    default=10,
                ),
                "dividend_yield_pct": s.percent(
                    "Dividend yield used for Black–Scholes–Merton when the snapshot has none.",
                    default=0,
                ),
                "risk_free_rate_pct": s.percent(
                    "Risk-free rate used for pricing candidates.", default=4
                ),
            },
        ),
    },
)

EXAMPLE_SPEC: dict[str, Any] = {
    "triggers": {"normal_abs_delta": 0.5, "emergency_abs_delta": 0.7},
    "target_band": {"min_abs_delta": 0.15, "target_abs_delta": 0.25, "max_abs_delta": 0.35},
    "economics": {"min_net_credit_usd": 0.1, "max_net_debit_usd": 0.5},
}


@dataclass(frozen=True, slots=True)
class RollSpec:
    normal_abs_delta: Decimal
    emergency_abs_delta: Decimal
    min_abs_delta: Decimal
    target_abs_delta: Decimal
    max_abs_delta: Decimal
    urgency: tuple[tuple[str, Decimal], ...]  # (name, min |delta|), most urgent first
    min_net_credit_usd: Decimal
    max_net_debit_usd: Decimal
    commission_per_contract_usd: Decimal
    regulatory_fees_per_contract_usd: Decimal
    spread_cost_ratio: Decimal
    contract_multiplier: int
    min_dte_days: int
    max_dte_days: int
    strikes_per_expiry: int
    dividend_yield_pct: Decimal
    risk_free_rate_pct: Decimal


def build(spec: Mapping[str, Any]) -> RollSpec:
    triggers, band, money, pick = (
        spec["triggers"],
        spec["target_band"],
        spec["economics"],
        spec["candidates"],
    )
    return RollSpec(
        normal_abs_delta=dec(triggers["normal_abs_delta"]),
        emergency_abs_delta=dec(triggers["emergency_abs_delta"]),
        min_abs_delta=dec(band["min_abs_delta"]),
        target_abs_delta=dec(band["target_abs_delta"]),
        max_abs_delta=dec(band["max_abs_delta"]),
        urgency=tuple((name, dec(spec["urgency"][name])) for name in ROLL_URGENCIES),
        min_net_credit_usd=dec(money["min_net_credit_usd"]),
        max_net_debit_usd=dec(money["max_net_debit_usd"]),
        commission_per_contract_usd=dec(money["commission_per_contract_usd"]),
        regulatory_fees_per_contract_usd=dec(money["regulatory_fees_per_contract_usd"]),
        spread_cost_ratio=dec(money["spread_cost_ratio"]),
        contract_multiplier=int(money["contract_multiplier"]),
        min_dte_days=int(pick["min_dte_days"]),
        max_dte_days=int(pick["max_dte_days"]),
        strikes_per_expiry=int(pick["strikes_per_expiry"]),
        dividend_yield_pct=dec(pick["dividend_yield_pct"]),
        risk_free_rate_pct=dec(pick["risk_free_rate_pct"]),
    )
