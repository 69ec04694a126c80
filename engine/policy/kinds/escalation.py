"""EscalationPolicy: protocol levels by adverse move measured in ATRs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec, strs
from bastion.engine.policy.vocabulary import (
    ATR_METHODS,
    BREACH_REFERENCES,
    ESCALATION_ACTIONS,
    ESCALATION_LEVELS,
)

KIND = "EscalationPolicy"
FILE_STEM = "escalation"
TITLE = "Bastion EscalationPolicy"
DESCRIPTION = (
    "Protocol escalation: how far a position may move against you, in multiples of the "
    "Average True Range, before monitoring tightens and protective actions start."
)

LEVEL_SCHEMA = s.obj(
    "One escalation level. A position sits at the highest level whose breach_atr its "
    "adverse move has reached.",
    {
        "name": s.string("Level name, in order of severity.", enum=ESCALATION_LEVELS),
        "breach_atr": s.number(
            "Adverse move from the reference price, in ATRs, at which this level starts. "
            "The first level starts at 0.",
            minimum=0,
            examples=[0, 1, 2, 3],
        ),
        "interval_s": s.seconds(
            "How often positions at this level are re-evaluated (the scheduler's polling "
            "interval while any position is at this level).",
            exclusive_minimum=0,
            examples=[300, 60, 30, 1],
        ),
        "actions": s.array(
            "What Bastion recommends or does at this level.",
            s.string("An escalation action.", enum=ESCALATION_ACTIONS),
            unique=True,
            default=[],
            examples=[["monitor"], ["stop_loss", "hedge"]],
        ),
    },
    required=("name", "breach_atr", "interval_s"),
)

SPEC_SCHEMA = s.obj(
    "Escalation settings.",
    {
        "atr": s.obj(
            "How the ATR that breaches are measured in is computed.",
            {
                "period": s.number(
                    "ATR period in bars.", integer=True, minimum=1, default=14, examples=[14]
                ),
                "method": s.string(
                    "Smoothing: wilder (TA-Lib compatible), sma or ema.",
                    enum=ATR_METHODS,
                    default="wilder",
                ),
            },
        ),
        "reference": s.string(
            "Price the adverse move is measured from: the position's entry price, or the "
            "previous close.",
            enum=BREACH_REFERENCES,
            default="entry_price",
        ),
        "levels": s.array(
            "Escalation levels from calmest to most severe. Thresholds must rise and "
            "intervals shrink with the level.",
            LEVEL_SCHEMA,
            min_items=2,
        ),
        "deescalation": s.obj(
            "When a position may step back down. De-escalation goes one level at a time.",
            {
                "hysteresis_atr": s.number(
                    "The breach must fall this many ATRs below the current level's "
                    "threshold before stepping down (prevents flapping at a threshold).",
                    minimum=0,
                    default=0.25,
                ),
                "min_dwell_s": s.seconds(
                    "Minimum time at a level before stepping down.",
                    default=300,
                    examples=[300],
                ),
            },
        ),
    },
    required=("levels",),
)

EXAMPLE_SPEC: dict[str, Any] = {
    "atr": {"period": 14, "method": "wilder"},
    "levels": [
        {"name": "normal", "breach_atr": 0, "interval_s": 300, "actions": ["monitor"]},
        {"name": "enhanced", "breach_atr": 1, "interval_s": 60, "actions": ["monitor"]},
        {"name": "recovery", "breach_atr": 2, "interval_s": 30, "actions": ["stop_loss"]},
        {"name": "preservation", "breach_atr": 3, "interval_s": 1, "actions": ["emergency_exit"]},
    ],
    "deescalation": {"hysteresis_atr": 0.25, "min_dwell_s": 300},
}


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    name: str
    number: int
    breach_atr: Decimal
    interval_s: Decimal
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EscalationSpec:
    atr_period: int
    atr_method: str
    reference: str
    levels: tuple[EscalationLevel, ...]
    hysteresis_atr: Decimal
    min_dwell_s: Decimal


def build(spec: Mapping[str, Any]) -> EscalationSpec:
    levels = tuple(
        EscalationLevel(
            name=level["name"],
            number=ESCALATION_LEVELS.index(level["name"]),
            breach_atr=dec(level["breach_atr"]),
            interval_s=dec(level["interval_s"]),
            actions=strs(level["actions"]),
        )
        for level in spec["levels"]
    )
    return EscalationSpec(
        atr_period=int(spec["atr"]["period"]),
        atr_method=spec["atr"]["method"],
        reference=spec["reference"],
        levels=levels,
        hysteresis_atr=dec(spec["deescalation"]["hysteresis_atr"]),
        min_dwell_s=dec(spec["deescalation"]["min_dwell_s"]),
    )
