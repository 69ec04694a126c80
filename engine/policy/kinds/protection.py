"""ProtectionPolicy: the ordered hierarchy of protections and regime overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec, strs
from bastion.engine.policy.kinds.history import (
    HISTORY_SCHEMA,
    HistoryProtection,
    build_history,
)
from bastion.engine.policy.vocabulary import (
    BYPASSABLE_PROTECTIONS,
    HISTORY_ID_PATTERN,
    ORDER_ACTIONS,
    PROTECTIONS,
    REGIME_SEVERITIES,
)

KIND = "ProtectionPolicy"
FILE_STEM = "protection"
TITLE = "Bastion ProtectionPolicy"
DESCRIPTION = (
    "Protections that can block a trade, checked in a declared order so that conflicts "
    "are settled by priority, never by whichever check ran first."
)


def _enabled() -> s.Schema:
    return s.boolean("Set false to switch this protection off.", default=True)


SPEC_SCHEMA = s.obj(
    "Protection settings.",
    {
        "hierarchy": s.array(
            "Protections from highest to lowest priority. Must list each protection once; "
            "core_asset_immunity comes first because nothing may override it.",
            s.string("A protection.", enum=PROTECTIONS),
            default=list(PROTECTIONS),
        ),
        "core_asset_immunity": s.obj(
            "Core assets are never sold down by a strategy.",
            {
                "enabled": _enabled(),
                "core_assets": s.array(
                    "Symbols that are core holdings.",
                    s.string("A symbol.", min_length=1),
                    unique=True,
                    default=[],
                    examples=[["SPY", "QQQ"]],
                ),
                "blocked_actions": s.array(
                    "Order actions a core asset is immune to.",
                    s.string("An order action.", enum=ORDER_ACTIONS),
                    unique=True,
                    default=["close", "decrease"],
                ),
            },
        ),
        "regime_override": s.obj(
            "A severe regime change may bypass lower protections.",
            {
                "enabled": _enabled(),
                "min_severity": s.string(
                    "Lowest regime severity that allows an override.",
                    enum=REGIME_SEVERITIES,
                    default="high",
                ),
                "may_bypass": s.array(
                    "Protections an override may bypass (never core_asset_immunity): "
                    "grace_period, holding_period, whipsaw_protection, or the id of an "
                    "entry of `history`.",
                    {
                        "description": "A protection, or the id of a history protection.",
                        "anyOf": [
                            s.string("A protection.", enum=BYPASSABLE_PROTECTIONS),
                            s.string(
                                "The id of an entry of `history`.", pattern=HISTORY_ID_PATTERN
                            ),
                        ],
                    },
                    unique=True,
                    default=list(BYPASSABLE_PROTECTIONS),
                ),
                "cooldown_s": s.seconds("Minimum time between two overrides.", default=86400),
            },
        ),
        "grace_period": s.obj(
            "An asset whose score fell below the floor is kept for a grace period.",
            {
                "enabled": _enabled(),
                "duration_days": s.number(
                    "Length of the grace period.", minimum=0, default=3, examples=[3]
                ),
                "min_score": s.number(
                    "Score below which the grace period starts (the request's score scale).",
                    default=0.4,
                ),
            },
        ),
        "holding_period": s.obj(
            "A new position is held at least this long before it may be closed.",
            {
                "enabled": _enabled(),
                "min_holding_days": s.number("Minimum holding period.", minimum=0, default=5),
            },
        ),
        "whipsaw_protection": s.obj(
            "Stops rapid in-and-out cycling of the same asset.",
            {
                "enabled": _enabled(),
                "max_round_trips": s.number(
                    "Round trips (open then close) allowed within the window.",
                    integer=True,
                    minimum=0,
                    default=2,
                ),
                "window_days": s.number("Window the round trips are counted in.", default=7),
            },
        ),
        "history": HISTORY_SCHEMA,
        "on_error": s.string(
            "What an error inside a protection check means. Only `deny` is allowed: "
            "Bastion fails safe.",
            enum=["deny"],
            default="deny",
        ),
    },
)

EXAMPLE_SPEC: dict[str, Any] = {
    "hierarchy": list(PROTECTIONS),
    "core_asset_immunity": {"core_assets": ["SPY", "QQQ"]},
    "regime_override": {"min_severity": "high", "may_bypass": ["grace_period"]},
}


@dataclass(frozen=True, slots=True)
class ProtectionSpec:
    hierarchy: tuple[str, ...]
    enabled: frozenset[str]
    core_assets: frozenset[str]
    core_blocked_actions: frozenset[str]
    override_min_severity: str
    override_may_bypass: frozenset[str]
    override_cooldown_s: Decimal
    grace_duration_days: Decimal
    grace_min_score: Decimal
    min_holding_days: Decimal
    whipsaw_max_round_trips: int
    whipsaw_window_days: Decimal
    on_error: str
    history: tuple[HistoryProtection, ...] = ()


def build(spec: Mapping[str, Any]) -> ProtectionSpec:
    core, override = spec["core_asset_immunity"], spec["regime_override"]
    grace, holding, whipsaw = (
        spec["grace_period"],
        spec["holding_period"],
        spec["whipsaw_protection"],
    )
    return ProtectionSpec(
        hierarchy=strs(spec["hierarchy"]),
        enabled=frozenset(name for name in PROTECTIONS if spec[name]["enabled"]),
        core_assets=frozenset(core["core_assets"]),
        core_blocked_actions=frozenset(core["blocked_actions"]),
        override_min_severity=override["min_severity"],
        override_may_bypass=frozenset(override["may_bypass"]),
        override_cooldown_s=dec(override["cooldown_s"]),
        grace_duration_days=dec(grace["duration_days"]),
        grace_min_score=dec(grace["min_score"]),
        min_holding_days=dec(holding["min_holding_days"]),
        whipsaw_max_round_trips=int(whipsaw["max_round_trips"]),
        whipsaw_window_days=dec(whipsaw["window_days"]),
        on_error=spec["on_error"],
        history=build_history(spec.get("history", ())),
    )
