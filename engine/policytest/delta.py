"""Snapshot edits, one a line: ``SUBJECT FIELD VALUE``.

SUBJECT is `system`, `regime`, an account id, a position id, a market symbol or
`ACCOUNT/STRATEGY` (an order-flow row). FIELD is a snapshot field, with or without its
unit suffix (`equity` = `equity_usd`, `data_age` = `data_age_s`, `drift` =
`drift_flag`) or its only completion (`quality` = `quality_score_ratio`); an option
position's leg fields (`delta`, `underlying_price`) are reached through the position.
A symbol's `price` moves the market and every position in it. VALUE is
the new value, or a change in per cent of the old one when it ends in ``%``
(``SPY price -3%``). Examples: ``SPY price 571.2``, ``gen-01 equity 480000``,
``system error_rate 12``, ``regime severity high``, ``gen-01/trend-spy
consecutive_losses 6``, ``SPY-101 quantity 100``.

Edits work on the snapshot's JSON form; the result is validated again as a whole
snapshot, so an edit can never build what a venue could not send.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

SUFFIXES = ("", "_usd", "_s", "_pct", "_ratio", "_bps", "_flag")
SINGLETONS = ("system", "regime")


class EditError(ValueError):
    """An edit line that does not apply; the message says why and what would."""


def _field(record: dict[str, Any], name: str, what: str) -> str:
    for suffix in SUFFIXES:
        if name + suffix in record:
            return name + suffix
    starting = [key for key in record if key.startswith(name + "_")]
    if len(starting) == 1:  # quality -> quality_score_ratio
        return starting[0]
    known = ", ".join(sorted(key for key in record if not isinstance(record[key], dict | list)))
    raise EditError(f"{what} has no field {name!r}; fields: {known}")


def _value(old: Any, text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text.endswith("%"):
        try:
            change = Decimal(text[:-1])
            base = Decimal(str(old))
        except InvalidOperation as error:
            raise EditError(f"{text!r}: a per-cent change needs a number like -3%") from error
        return str(base + base * change / 100)
    try:
        return str(Decimal(text))
    except InvalidOperation:
        return text  # names: regime severity, side, strategy id ...


def _set(record: dict[str, Any], name: str, text: str, what: str) -> None:
    field = _field(record, name, what)
    record[field] = _value(record[field], text)


def apply_edit(snapshot: dict[str, Any], line: str) -> None:
    """Apply one edit line to snapshot data (the JSON form) in place."""
    parts = line.split()
    if len(parts) != 3:
        raise EditError(f"{line!r}: an edit is SUBJECT FIELD VALUE, e.g. 'SPY price 571.2'")
    subject, name, text = parts
    for target in _targets(snapshot, subject, name):
        target(text)


def _targets(snapshot: dict[str, Any], subject: str, name: str) -> list[Callable[[str], None]]:
    def setter(record: dict[str, Any], what: str) -> Callable[[str], None]:
        field = _field(record, name, what)  # fail on a wrong field before any change
        return lambda text: _set(record, field, text, what)

    if subject in SINGLETONS:
        return [setter(snapshot[subject], subject)]
    if "/" in subject:
        account, _, strategy = subject.partition("/")
        for flow in snapshot.get("order_flow", []):
            if flow["account_id"] == account and flow["strategy_id"] == strategy:
                return [setter(flow, f"order flow {subject}")]
        raise EditError(f"no order_flow row for account {account!r} and strategy {strategy!r}")
    for account in snapshot["accounts"]:
        if account["id"] == subject:
            return [setter(account, f"account {subject}")]
    for position in snapshot["positions"]:
        if position["id"] == subject:
            option = position.get("option")
            if isinstance(option, dict) and not any(name + s in position for s in SUFFIXES):
                return [setter(option, f"option leg of {subject}")]  # delta, strike ...
            return [setter(position, f"position {subject}")]
    market = snapshot["market"].get(subject)
    if market is not None:
        targets = [setter(market, f"market {subject}")]
        if _field(market, name, subject) == "price_usd":  # the price moves the positions too
            targets += [
                setter(position, f"position {position['id']}")
                for position in snapshot["positions"]
                if position["symbol"] == subject
            ]
        return targets
    raise EditError(
        f"{subject!r} is not system, regime, an account, a position, a market symbol or "
        "ACCOUNT/STRATEGY in the snapshot"
    )
