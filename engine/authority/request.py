"""The order request `can_execute` answers: what a trading system wants to do, and why.

Requests come from code (build an `OrderRequest`) or from JSON (`parse_request`,
`load_request`, `request_from_dict`): the same field tables as the snapshot (cerberus
at run time, schemas/request.schema.json for editors), numeric strings coerced to
Decimal, NaN / infinities / booleans-as-numbers refused, every problem named by its
field path. Cross-field rules (an increase must grow the position, a close goes to
zero) are checked here too, so that a request that reaches the checks means one thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bastion.engine.authority.request_fast import plainly_valid
from bastion.engine.authority.slotted import copier
from bastion.engine.errors import BastionError
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.snapshot.fields import (
    SIDES,
    Field,
    FieldKind,
    Record,
    amount,
    choice,
    count,
    flag,
    moment,
    nested,
    pct,
    positive,
    text,
)
from bastion.engine.snapshot.messages import format_time
from bastion.engine.snapshot.schema import document_schema
from bastion.engine.snapshot.validate import (
    FieldError,
    Table,
    check_document,
    invalid_message,
    parse_json,
    read_text,
)

SCHEMA_ID = "https://bastion-risk.dev/schemas/request.schema.json"
INCREASING = frozenset({"open", "increase"})  # actions that add exposure
REDUCING = frozenset({"close", "decrease"})


class RequestError(BastionError):
    """A request cannot be read. The CLI exits 2; `can_execute` never sees it."""


class RequestInvalid(RequestError):
    """The request breaks the schema; `errors` lists every problem, each with its path."""

    def __init__(self, errors: list[FieldError], *, source: str = "") -> None:
        self.errors = tuple(errors)
        self.source = source
        super().__init__(invalid_message("request", self.errors, source))


def _optional(made: Field) -> Field:
    return Field(
        made.name,
        made.kind,
        made.description,
        required=False,
        minimum=made.minimum,
        maximum=made.maximum,
        positive=made.positive,
        choices=made.choices,
        record=made.record,
    )


def _score(name: str, description: str) -> Field:
    return Field(name, FieldKind.DECIMAL, description, required=False)


# The order as the venue sees it (all optional; absent: a market order, good till cancelled).
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
TIMES_IN_FORCE = ("gtc", "day", "ioc", "fok", "gtd")
_PRICED = frozenset({"limit", "stop_limit"})  # carry a limit price
_TRIGGERED = frozenset({"stop", "stop_limit"})  # carry a trigger price
ORDER_SHAPE_FIELDS = (
    _optional(
        choice(
            "order_type",
            "market (default), limit, stop or stop_limit; limit and stop_limit need `price`, "
            "stop and stop_limit need `trigger_price`.",
            *ORDER_TYPES,
        )
    ),
    _score(
        "price",
        "Limit price per unit, USD; must be on the instrument's tick_size and above 0 "
        "(≤ 0 only for futures and options).",
    ),
    _score("trigger_price", "Stop trigger price per unit, USD; same rules as price."),
    _optional(
        flag(
            "reduce_only",
            "The order may only reduce the position (default false): denied when it would "
            "add exposure or trade more than is held.",
        )
    ),
    _optional(
        choice(
            "time_in_force",
            "gtc (default), day, ioc, fok or gtd; gtd needs `expire_at`.",
            *TIMES_IN_FORCE,
        )
    ),
    _optional(moment("expire_at", "When a gtd order expires; denied when it is not after now.")),
)

RECORDS: dict[str, Record] = {
    record.name: record
    for record in (
        Record(
            "OrderRequest",
            "One request to change a position, asked before the order is sent.",
            (
                _optional(text("id", "Your id for the request; the decision echoes it.")),
                _optional(
                    text(
                        "account_id",
                        "Account the order is for; may be omitted when the snapshot has one "
                        "account.",
                    )
                ),
                text("symbol", "The asset, as the snapshot's market data names it."),
                choice("action", "What the order does to the position.", *ORDER_ACTIONS),
                _optional(choice("side", "Side of the position: long (default) or short.", *SIDES)),
                _optional(
                    amount(
                        "current_size",
                        "Units held now (≥ 0); default: the snapshot's positions in the symbol.",
                    )
                ),
                _optional(
                    amount(
                        "target_size",
                        "Units wanted after the order (≥ 0). Leave out on open / increase to "
                        "let Bastion size it from volatility; close means 0.",
                    )
                ),
                _score("current_score", "The asset's score now (your strategy's scale)."),
                _score("target_score", "The score the target size assumes."),
                _optional(text("strategy_id", "Strategy placing the order.")),
                _optional(text("reason", "Why the order is wanted (recorded).")),
                _optional(
                    text(
                        "modified_order_id",
                        "For action modify (required there, refused elsewhere): the id of "
                        "the open order being changed; target_size is the size it now goes "
                        "to, current_size the size it went to before the change.",
                    )
                ),
                _optional(
                    positive(
                        "size_increment",
                        "Smallest size step the venue accepts (1 for whole shares); "
                        "a downsized order is rounded down to it. Default 0.00000001.",
                    )
                ),
                *ORDER_SHAPE_FIELDS,
                nested(
                    "position",
                    FieldKind.RECORD,
                    "PositionContext",
                    "The position the order changes.",
                    required=False,
                ),
                nested(
                    "portfolio",
                    FieldKind.RECORD,
                    "PortfolioContext",
                    "What the caller believes about the portfolio (recorded; limits use the "
                    "snapshot).",
                    required=False,
                ),
                Field(
                    "metadata",
                    FieldKind.OBJECT,
                    "Anything else to record with the decision.",
                    required=False,
                ),
            ),
        ),
        Record(
            "PositionContext",
            "The position an order changes.",
            (
                _optional(
                    moment(
                        "entry_at",
                        "When the position was opened (holding period); default: the "
                        "snapshot's earliest entry in the symbol.",
                    )
                ),
                _score("entry_score", "The score when the position was opened."),
                _optional(amount("entry_size", "Units bought when the position was opened.")),
                _optional(
                    moment(
                        "score_below_since",
                        "Since when the score has been below the grace floor (grace period); "
                        "default: the first request that showed it.",
                    )
                ),
            ),
        ),
        Record(
            "PortfolioContext",
            "The caller's view of the portfolio.",
            (
                _optional(pct("allocation_pct", "Share of equity in this asset, in per cent.")),
                _optional(count("active_positions", "Open positions the caller counts.")),
            ),
        ),
    )
}

REQUEST_TABLE = Table("OrderRequest", RECORDS, "request")
_RULES = REQUEST_TABLE.rules()
REQUEST_SCHEMA: dict[str, Any] = document_schema(
    RECORDS, "OrderRequest", SCHEMA_ID, "Bastion order request"
)
DEFAULT_INCREMENT = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class PositionContext:
    entry_at: datetime | None = None
    entry_score: Decimal | None = None
    entry_size: Decimal | None = None
    score_below_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PortfolioContext:
    allocation_pct: Decimal | None = None
    active_positions: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """One order a trading system wants to send. Sizes are units of the asset, ≥ 0."""

    symbol: str
    action: str  # open | close | increase | decrease | cancel
    id: str = ""
    account_id: str | None = None
    side: str = "long"
    current_size: Decimal | None = None
    target_size: Decimal | None = None
    current_score: Decimal | None = None
    target_score: Decimal | None = None
    strategy_id: str | None = None
    reason: str = ""
    modified_order_id: str = ""  # action modify: the open order being changed
    size_increment: Decimal = DEFAULT_INCREMENT
    order_type: str = "market"  # market | limit | stop | stop_limit
    price: Decimal | None = None  # limit price (limit, stop_limit)
    trigger_price: Decimal | None = None  # stop trigger (stop, stop_limit)
    reduce_only: bool = False
    time_in_force: str = "gtc"  # gtc | day | ioc | fok | gtd
    expire_at: datetime | None = None  # gtd only
    position: PositionContext = PositionContext()
    portfolio: PortfolioContext = PortfolioContext()
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def increasing(self) -> bool:
        """True for open / increase, and for a modify that raises the order's size: the
        order adds exposure. (A modify's current_size is filled in by the check.)"""
        if self.action in INCREASING:
            return True
        return (
            self.action == "modify"
            and self.current_size is not None
            and self.target_size is not None
            and self.target_size > self.current_size
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"symbol": self.symbol, "action": self.action, "side": self.side}
        for name in (
            "id",
            "account_id",
            "current_size",
            "target_size",
            "current_score",
            "target_score",
            "strategy_id",
            "reason",
            "modified_order_id",
        ):
            value = getattr(self, name)
            if value not in (None, ""):
                data[name] = str(value) if isinstance(value, Decimal) else value
        if self.order_type != "market":
            data["order_type"] = self.order_type
        for name in ("price", "trigger_price"):
            value = getattr(self, name)
            if value is not None:
                data[name] = str(value)
        if self.reduce_only:
            data["reduce_only"] = True
        if self.time_in_force != "gtc":
            data["time_in_force"] = self.time_in_force
        if self.expire_at is not None:
            data["expire_at"] = format_time(self.expire_at)
        return data


# `dataclasses.replace(request, action=..., current_size=..., target_size=...)`, written
# out once for OrderRequest's fields and setting its slots directly (authority/slotted.py):
# a bracket's children and a modify are copied per check.
_RESIZED = copier(OrderRequest, "action", "current_size", "target_size")


def resized(
    request: OrderRequest,
    *,
    action: str,
    current_size: Decimal | None,
    target_size: Decimal | None,
) -> OrderRequest:
    """The request with its action and sizes changed: `dataclasses.replace` at about a
    third of its cost (a bracket's children and a modify are copied per check)."""
    made: OrderRequest = _RESIZED(request, action, current_size, target_size)
    return made


def request_from_dict(data: object, *, source: str = "") -> OrderRequest:
    """Validate and build; raises RequestInvalid listing every problem."""
    # A plainly valid request is read from the table directly; anything else, cerberus.
    document = plainly_valid(data, REQUEST_TABLE)
    problems: list[FieldError] = []
    if document is None:
        problems, document = check_document(data, REQUEST_TABLE, _RULES)
    if not problems:
        problems = [FieldError(path, message) for path, message in _cross_checks(document)]
    if problems:
        raise RequestInvalid(problems, source=source)
    position = document.get("position", {})
    portfolio = document.get("portfolio", {})
    return OrderRequest(
        symbol=document["symbol"],
        action=document["action"],
        id=document.get("id", ""),
        account_id=document.get("account_id"),
        side=document.get("side", "long"),
        current_size=document.get("current_size"),
        target_size=document.get("target_size"),
        current_score=document.get("current_score"),
        target_score=document.get("target_score"),
        strategy_id=document.get("strategy_id"),
        reason=document.get("reason", ""),
        modified_order_id=document.get("modified_order_id", ""),
        size_increment=document.get("size_increment", DEFAULT_INCREMENT),
        order_type=document.get("order_type", "market"),
        price=document.get("price"),
        trigger_price=document.get("trigger_price"),
        reduce_only=document.get("reduce_only", False),
        time_in_force=document.get("time_in_force", "gtc"),
        expire_at=document.get("expire_at"),
        position=PositionContext(**position),
        portfolio=PortfolioContext(**portfolio),
        metadata=MappingProxyType(dict(document.get("metadata", {}))),
    )


def parse_request(text_: str, *, source: str = "") -> OrderRequest:
    return request_from_dict(parse_json(text_, source, RequestError), source=source)


def load_request(path: str | Path) -> OrderRequest:
    return parse_request(read_text(path, "the request", RequestError), source=str(path))


def _cross_checks(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the field tables cannot say: sizes that contradict the action."""
    action = document["action"]
    current, target = document.get("current_size"), document.get("target_size")
    problems: list[tuple[str, str]] = []
    if action == "open" and current is not None and current != 0:
        problems.append(("current_size", "an open starts from no position: leave it out or 0"))
    if action == "close" and target is not None and target != 0:
        problems.append(("target_size", "a close goes to 0: leave it out or use decrease"))
    if action == "decrease" and target is None:
        problems.append(("target_size", "is required for decrease (the size wanted after it)"))
    if current is not None and target is not None:
        if action == "increase" and target <= current:
            problems.append(("target_size", f"an increase must exceed current_size {current}"))
        if action == "decrease" and target >= current:
            problems.append(("target_size", f"a decrease must be below current_size {current}"))
    if action in ("open", "increase") and target is not None and target == 0:
        problems.append(("target_size", f"{action} to 0 adds nothing: leave it out to size it"))
    problems.extend(_modify_problems(document))
    problems.extend(_order_shape_problems(document))
    return problems


def _order_shape_problems(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Prices that contradict the order type, an expiry that contradicts the time in force."""
    order_type = document.get("order_type", "market")
    problems: list[tuple[str, str]] = []
    if order_type in _PRICED and "price" not in document:
        problems.append(("price", f"is required for a {order_type} order (its limit price)"))
    if order_type not in _PRICED and "price" in document:
        problems.append(
            ("price", f"a {order_type} order has no limit price: leave it out or use limit")
        )
    if order_type in _TRIGGERED and "trigger_price" not in document:
        problems.append(("trigger_price", f"is required for a {order_type} order"))
    if order_type not in _TRIGGERED and "trigger_price" in document:
        problems.append(
            ("trigger_price", f"a {order_type} order has no trigger: leave it out or use stop")
        )
    gtd = document.get("time_in_force", "gtc") == "gtd"
    if gtd and "expire_at" not in document:
        problems.append(("expire_at", "is required for time_in_force gtd (when the order expires)"))
    if not gtd and "expire_at" in document:
        problems.append(
            ("expire_at", "only a gtd order expires: set time_in_force: gtd or leave it out")
        )
    return problems


def _modify_problems(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A modify names the order it changes and the size it now goes to; no other
    action names an order to change."""
    if document["action"] != "modify":
        if "modified_order_id" in document:
            return [("modified_order_id", "only a modify changes an open order: leave it out")]
        return []
    problems: list[tuple[str, str]] = []
    if not document.get("modified_order_id"):
        problems.append(("modified_order_id", "is required for modify (the open order's id)"))
    if document.get("target_size") is None:
        problems.append(("target_size", "is required for modify (the size the order now goes to)"))
    return problems
