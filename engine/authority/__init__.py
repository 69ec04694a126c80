"""One decision authority: `can_execute` before every order, intents to execution plans.

- `request`: the OrderRequest model, validated from JSON like a snapshot;
- `check`: can_execute(policies, request, snapshot, state, now) -> ExecutionDecision;
- `order_list`, `order_list_check`: order lists and brackets, one decision per leg and
  one for the list (check_list); `modify`: the modify action's sizes and rate memory;
- `rules`: ProtectionPolicy + LimitPolicy compiled to durable-rules;
- `book`: per-snapshot exposures and risk, built once, read by every request;
- `plan`: strategy intents -> ExecutionPlan of RiskAdjustedActions; RiskStatus;
- `authority`: DecisionAuthority, the stateful front door with running statistics.

Names are imported lazily: `engine.compiled` imports `rules` from here.
"""

from __future__ import annotations

import importlib
from typing import Any

from bastion.engine import native

native.check_current()  # a compiled order check built from other sources: refused

_EXPORTS = {
    "can_execute": "check",
    "ExecutionDecision": "check",
    "OrderRequest": "request",
    "PositionContext": "request",
    "PortfolioContext": "request",
    "RequestError": "request",
    "load_request": "request",
    "parse_request": "request",
    "request_from_dict": "request",
    "OrderList": "order_list",
    "OrderLeg": "order_list",
    "order_list_from_dict": "order_list",
    "check_list": "order_list_check",
    "ListDecision": "order_list_check",
    "DecisionAuthority": "authority",
    "Statistics": "authority",
    "StrategyIntent": "plan",
    "RiskAdjustedAction": "plan",
    "ExecutionPlan": "plan",
    "RiskStatus": "plan",
    "plan_intents": "plan",
    "risk_status": "plan",
}

__all__ = [
    "DecisionAuthority",
    "ExecutionDecision",
    "ExecutionPlan",
    "ListDecision",
    "OrderLeg",
    "OrderList",
    "OrderRequest",
    "PortfolioContext",
    "PositionContext",
    "RequestError",
    "RiskAdjustedAction",
    "RiskStatus",
    "Statistics",
    "StrategyIntent",
    "can_execute",
    "check_list",
    "load_request",
    "order_list_from_dict",
    "parse_request",
    "plan_intents",
    "request_from_dict",
    "risk_status",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.engine.authority' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bastion.engine.authority.{module}"), name)
