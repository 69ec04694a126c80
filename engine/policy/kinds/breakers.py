"""BreakerPolicy: circuit breakers on snapshot metrics, built in or custom (`when`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec
from bastion.engine.policy.metrics import METRICS
from bastion.engine.policy.vocabulary import (
    BREAKER_ACTIONS,
    BREAKER_RESETS,
    BREAKER_SCOPES,
    COMPARISONS,
    SEVERITIES,
)

KIND = "BreakerPolicy"
FILE_STEM = "breakers"
TITLE = "Bastion BreakerPolicy"
DESCRIPTION = (
    "Circuit breakers: when a metric crosses its threshold the breaker trips, takes its "
    "action (halt, reduce only, ...) and stays tripped for its cooldown."
)

WINDOW_S_REMOVED = (
    "window_s was removed: no breaker ever read it. Each metric is measured over the "
    "window its own description gives (orders.per_minute: the last 60 s), which a breaker "
    "cannot change; delete the line"
)

# reduce_size: the share of the units an order may add while the breaker is tripped.
DEFAULT_SIZE_FACTOR = Decimal("0.5")

_METRIC = s.string(
    "A snapshot metric; the suffix is its unit (_pct 0-100, _ratio 0-1, _bps, _usd, _s).",
    enum=sorted(METRICS),
    examples=["portfolio.loss_pct"],
)
_COMPARISON = s.string(
    "How the metric is compared with the threshold, exactly as written: >= trips AT the "
    "threshold, > only above it.",
    enum=COMPARISONS,
)

COMPARE_SCHEMA = s.obj(
    "One comparison: metric OP value.",
    {
        "metric": _METRIC,
        "op": _COMPARISON,
        "value": s.number("The value compared against, in the metric's unit."),
    },
    required=("metric", "op", "value"),
)
# Conditions nest: all / any / not of comparisons or of further conditions.
CONDITION_SCHEMA: s.Schema = {
    "description": "A condition: a comparison, or all / any / not of conditions.",
    "oneOf": [
        {"$ref": "#/$defs/comparison"},
        s.obj(
            "True when every listed condition is.",
            {"all": s.array("Conditions.", {"$ref": "#/$defs/condition"}, min_items=1)},
            required=("all",),
        ),
        s.obj(
            "True when at least one listed condition is.",
            {"any": s.array("Conditions.", {"$ref": "#/$defs/condition"}, min_items=1)},
            required=("any",),
        ),
        s.obj(
            "True when the condition is not.",
            {"not": {"$ref": "#/$defs/condition", "description": "The condition negated."}},
            required=("not",),
        ),
    ],
}
DEFS = {"comparison": COMPARE_SCHEMA, "condition": CONDITION_SCHEMA}

BREAKER_SCHEMA = s.obj(
    "One circuit breaker. Give either metric + comparison + threshold, or `when`.",
    {
        "id": s.string(
            "Unique id, used in decisions, metrics and manual resets.",
            pattern="^[a-z0-9][a-z0-9_-]*$",
            examples=["portfolio_loss"],
        ),
        "description": s.string("What the breaker protects against, for people."),
        "metric": _METRIC,
        "comparison": _COMPARISON,
        "threshold": s.number("Trip value, in the metric's unit.", examples=[5]),
        "when": {"$ref": "#/$defs/condition", "description": "A custom trip condition."},
        "scope": s.string(
            "What the breaker is evaluated for; defaults to the metric's own subject.",
            enum=BREAKER_SCOPES,
        ),
        "cooldown_s": s.seconds("Time a tripped breaker stays tripped; default: spec.defaults."),
        "reset": s.string(
            "After the cooldown: `auto` re-arms by itself, `manual` waits for an operator.",
            enum=BREAKER_RESETS,
        ),
        "action": s.string("What a trip does.", enum=BREAKER_ACTIONS),
        "size_factor": s.number(
            "reduce_size only: while the breaker is tripped, an order adding exposure in its "
            "subject may add this share of the units it asks for (0.5: half). Default 0.5.",
            exclusive_minimum=0,
            maximum=1,
            examples=[0.5],
        ),
        "severity": s.string("How loud the alert is.", enum=SEVERITIES, default="critical"),
        "enabled": s.boolean("Set false to keep a breaker in the file but off.", default=True),
    },
    required=("id", "action"),
    extra={
        # Fields that once were allowed: lint names the fix (BST018), not "unknown field".
        s.REMOVED: {"window_s": WINDOW_S_REMOVED},
        "oneOf": [
            {"required": ["metric", "comparison", "threshold"], "not": {"required": ["when"]}},
            {"required": ["when"], "not": {"required": ["metric"]}},
        ],
    },
)

SPEC_SCHEMA = s.obj(
    "Circuit-breaker settings.",
    {
        "defaults": s.obj(
            "Values every breaker takes unless it says otherwise.",
            {
                "cooldown_s": s.seconds("Cooldown after a trip.", default=3600),
                "reset": s.string(
                    "auto: resume after the cooldown; manual: an operator resets.",
                    enum=BREAKER_RESETS,
                    default="manual",
                ),
            },
        ),
        "breakers": s.array("The breakers.", BREAKER_SCHEMA, min_items=1),
    },
    required=("breakers",),
)

EXAMPLE_SPEC: dict[str, Any] = {
    "breakers": [
        {
            "id": "portfolio_loss",
            "metric": "portfolio.loss_pct",
            "comparison": ">=",
            "threshold": 5,
            "action": "halt_all",
        },
        {
            "id": "vol_and_volume",
            "when": {
                "all": [
                    {"metric": "market.volatility_multiple", "op": ">=", "value": 1.5},
                    {"metric": "market.volume_multiple", "op": ">=", "value": 3},
                ]
            },
            "action": "reduce_size",
        },
    ]
}


@dataclass(frozen=True, slots=True)
class Compare:
    metric: str
    op: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


Condition = Compare | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class Breaker:
    id: str
    description: str
    condition: Condition
    scope: str
    cooldown_s: Decimal
    reset: str
    action: str
    severity: str
    enabled: bool
    # reduce_size: the share of the units an order may add while tripped; None when the
    # policy does not say (`effective_size_factor` gives the default).
    size_factor: Decimal | None = None

    @property
    def effective_size_factor(self) -> Decimal:
        return DEFAULT_SIZE_FACTOR if self.size_factor is None else self.size_factor


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    breakers: tuple[Breaker, ...]


def build_condition(node: Mapping[str, Any]) -> Condition:
    if "all" in node:
        return AllOf(tuple(build_condition(child) for child in node["all"]))
    if "any" in node:
        return AnyOf(tuple(build_condition(child) for child in node["any"]))
    if "not" in node:
        return Not(build_condition(node["not"]))
    return Compare(node["metric"], node["op"], dec(node["value"]))


def condition_of(breaker: Mapping[str, Any]) -> Condition:
    if "when" in breaker:
        return build_condition(breaker["when"])
    return Compare(breaker["metric"], breaker["comparison"], dec(breaker["threshold"]))


def metrics_of(condition: Condition) -> list[str]:
    if isinstance(condition, Compare):
        return [condition.metric]
    if isinstance(condition, Not):
        return metrics_of(condition.condition)
    return [name for child in condition.conditions for name in metrics_of(child)]


def _scope(breaker: Mapping[str, Any], condition: Condition) -> str:
    if "scope" in breaker:
        return str(breaker["scope"])
    return METRICS[metrics_of(condition)[0]].scope


def build(spec: Mapping[str, Any]) -> BreakerSpec:
    defaults = spec["defaults"]
    breakers = []
    for item in spec["breakers"]:
        condition = condition_of(item)
        breakers.append(
            Breaker(
                id=item["id"],
                description=item.get("description", ""),
                condition=condition,
                scope=_scope(item, condition),
                cooldown_s=dec(item.get("cooldown_s", defaults["cooldown_s"])),
                reset=item.get("reset", defaults["reset"]),
                action=item["action"],
                severity=item["severity"],
                enabled=item["enabled"],
                size_factor=dec(item["size_factor"]) if "size_factor" in item else None,
            )
        )
    return BreakerSpec(tuple(breakers))
