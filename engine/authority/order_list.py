"""An order list: orders sent together, each leg checked, the list denied as a whole.

The document (POST /api/v1/check, `bastion check --request`, schemas/request.schema.json
describes a leg):

    {"id": "B-1", "contingency": "bracket",
     "orders": [{"role": "entry", "action": "open", "symbol": "AAPL", "target_size": 100},
                {"role": "stop_loss", "action": "close", "symbol": "AAPL",
                 "order_type": "stop", "trigger_price": 180},
                {"role": "take_profit", "action": "close", "symbol": "AAPL",
                 "order_type": "limit", "price": 210}]}

Each order is an order request plus its `role`. Contingencies (as venues and
NautilusTrader's OrderList name them):

- `bracket`: an `entry` (open / increase) first, then a `stop_loss` and / or a
  `take_profit` (close / decrease: they reduce what the entry bought, once it fills), all
  in the entry's account, symbol, side and strategy;
- `oto` (one triggers other): the first order, then the orders its fill triggers;
- `oco` (one cancels other): alternatives, of which at most one fills;
- `none`: independent orders sent together.

Reading the document is here; checking it is `order_list_check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.engine.authority.request import (
    OrderRequest,
    RequestError,
    RequestInvalid,
    request_from_dict,
)
from bastion.engine.snapshot.validate import FieldError, invalid_message, parse_json, read_text

CONTINGENCIES = ("bracket", "oco", "oto", "none")
ROLES = ("entry", "stop_loss", "take_profit", "leg")
BRACKET_CHILDREN = ("stop_loss", "take_profit")
MAX_LEGS = 50  # a list is a handful of orders; a body of thousands is a mistake
_ENTRY_ACTIONS = ("open", "increase")
_CHILD_ACTIONS = ("close", "decrease")
_SAME_AS_ENTRY = ("account_id", "symbol", "side", "strategy_id")


class OrderListInvalid(RequestInvalid):
    """The list breaks its shape; `errors` names each problem by path (orders[1].action)."""

    def __init__(self, errors: list[FieldError], *, source: str = "") -> None:
        self.errors = tuple(errors)
        self.source = source
        RequestError.__init__(self, invalid_message("order list", self.errors, source))


@dataclass(frozen=True, slots=True)
class OrderLeg:
    role: str  # entry | stop_loss | take_profit | leg
    request: OrderRequest

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, **self.request.to_dict()}


@dataclass(frozen=True, slots=True)
class OrderList:
    id: str
    contingency: str  # bracket | oco | oto | none
    legs: tuple[OrderLeg, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contingency": self.contingency,
            "orders": [leg.to_dict() for leg in self.legs],
        }


def is_order_list(data: object) -> bool:
    """A list document (has "orders"), not a single order request."""
    return isinstance(data, Mapping) and "orders" in data


def order_list_from_dict(data: object, *, source: str = "") -> OrderList:
    """Validate and build; raises OrderListInvalid listing every problem."""
    if not isinstance(data, Mapping):
        raise OrderListInvalid([FieldError("", "an order list is a JSON object")], source=source)
    problems: list[FieldError] = []
    for name in sorted(set(data) - {"id", "contingency", "orders"}):
        problems.append(
            FieldError(name, "unknown field (an order list has id, contingency, orders)")
        )
    list_id = data.get("id")
    if not isinstance(list_id, str) or not list_id.strip():
        problems.append(FieldError("id", "is required: a non-empty string naming the list"))
    contingency = data.get("contingency", "none")
    if contingency not in CONTINGENCIES:
        problems.append(
            FieldError(
                "contingency", f"must be one of {', '.join(CONTINGENCIES)}, got {contingency!r}"
            )
        )
    orders = data.get("orders")
    if not isinstance(orders, list) or not orders:
        problems.append(FieldError("orders", "must be a non-empty list of order requests"))
        orders = []
    elif len(orders) > MAX_LEGS:
        problems.append(FieldError("orders", f"{len(orders)} orders: at most {MAX_LEGS}"))
        orders = []
    legs: list[OrderLeg] = []
    for index, item in enumerate(orders):
        leg, leg_problems = _leg(index, item, source)
        problems += leg_problems
        if leg is not None:
            legs.append(leg)
    if not problems:
        problems += _shape_problems(str(contingency), legs)
    if problems:
        raise OrderListInvalid(problems, source=source)
    return OrderList(str(list_id), str(contingency), tuple(legs))


def _leg(index: int, item: object, source: str) -> tuple[OrderLeg | None, list[FieldError]]:
    where = f"orders[{index}]"
    if not isinstance(item, Mapping):
        return None, [FieldError(where, "must be an order request (a JSON object)")]
    fields = dict(item)
    role = fields.pop("role", "leg")
    problems = []
    if role not in ROLES:
        problems.append(FieldError(f"{where}.role", f"must be one of {', '.join(ROLES)}"))
    try:
        request = request_from_dict(fields, source=source)
    except RequestInvalid as error:
        problems += [
            FieldError(f"{where}.{e.path}" if e.path else where, e.message) for e in error.errors
        ]
        return None, problems
    return (OrderLeg(str(role), request) if not problems else None), problems


def _shape_problems(contingency: str, legs: list[OrderLeg]) -> list[FieldError]:
    """What the roles and actions must be for the contingency."""
    if contingency != "bracket":
        return [
            FieldError(f"orders[{i}].role", f"{leg.role} is a bracket role: use leg")
            for i, leg in enumerate(legs)
            if leg.role != "leg"
        ]
    problems = []
    entry = legs[0]
    if entry.role != "entry":
        problems.append(FieldError("orders[0].role", "a bracket starts with its entry"))
    if entry.request.action not in _ENTRY_ACTIONS:
        problems.append(FieldError("orders[0].action", "a bracket's entry opens or increases"))
    children = legs[1:]
    if not children:
        problems.append(FieldError("orders", "a bracket has a stop_loss and / or a take_profit"))
    seen: set[str] = set()
    for index, leg in enumerate(children, start=1):
        where = f"orders[{index}]"
        if leg.role not in BRACKET_CHILDREN:
            problems.append(
                FieldError(f"{where}.role", "after the entry: stop_loss or take_profit")
            )
        elif leg.role in seen:
            problems.append(FieldError(f"{where}.role", f"a bracket has one {leg.role}"))
        seen.add(leg.role)
        if leg.request.action not in _CHILD_ACTIONS:
            problems.append(
                FieldError(
                    f"{where}.action", "a bracket's stop_loss / take_profit closes or decreases"
                )
            )
        for name in _SAME_AS_ENTRY:
            if getattr(leg.request, name) != getattr(entry.request, name):
                problems.append(FieldError(f"{where}.{name}", f"must be the entry's {name}"))
    return problems


def parse_document(text: str, *, source: str = "") -> OrderRequest | OrderList:
    """One order request or an order list, by its shape."""
    data = parse_json(text, source, RequestError)
    if is_order_list(data):
        return order_list_from_dict(data, source=source)
    return request_from_dict(data, source=source)


def load_document(path: str | Path) -> OrderRequest | OrderList:
    """A request file holding one order request or an order list (`bastion check`)."""
    return parse_document(read_text(path, "the request", RequestError), source=str(path))
