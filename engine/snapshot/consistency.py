"""Checks across fields that a per-field schema cannot express.

Run on a document that already passed the field rules (so every value has its type).
Each check yields (field path, message); validate.py reports them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bastion.engine.snapshot.messages import format_time, path_text, show

Problem = tuple[str, str]


def check_references(document: Mapping[str, Any]) -> list[Problem]:
    """Every cross-field problem in a field-valid snapshot document, in document order."""
    return [
        *_unique_ids("accounts", document["accounts"]),
        *_unique_ids("positions", document["positions"]),
        *_positions(document),
        *_order_flow(document),
        *_markets(document["market"]),
        *_not_after_as_of(("regime", "changed_at"), document["regime"]["changed_at"], document),
    ]


def _unique_ids(name: str, records: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    first_seen: dict[str, int] = {}
    for index, record in enumerate(records):
        earlier = first_seen.setdefault(record["id"], index)
        if earlier != index:
            yield (
                path_text((name, index, "id")),
                f"{show(record['id'])} is also {name}[{earlier}].id",
            )


def _positions(document: Mapping[str, Any]) -> Iterator[Problem]:
    accounts = {account["id"] for account in document["accounts"]}
    for index, position in enumerate(document["positions"]):
        if position["account_id"] not in accounts:
            yield _no_account(("positions", index, "account_id"), position["account_id"])
        is_option = position["asset_class"] == "option"
        if is_option and "option" not in position:
            yield path_text(("positions", index, "option")), "is required for an option position"
        if not is_option and "option" in position:
            yield (
                path_text(("positions", index, "option")),
                f"only option positions have one (asset_class is {position['asset_class']})",
            )
        if not is_option and position["symbol"] not in document["market"]:
            yield (
                path_text(("positions", index, "symbol")),
                f"no market data for {show(position['symbol'])}: add it under market",
            )
        yield from _not_after_as_of(
            ("positions", index, "entered_at"), position["entered_at"], document
        )


def _order_flow(document: Mapping[str, Any]) -> Iterator[Problem]:
    accounts = {account["id"] for account in document["accounts"]}
    for index, flow in enumerate(document["order_flow"]):
        if flow["account_id"] not in accounts:
            yield _no_account(("order_flow", index, "account_id"), flow["account_id"])


def _markets(market: Mapping[str, Mapping[str, Any]]) -> Iterator[Problem]:
    for symbol, data in market.items():
        if data["bid_usd"] > data["ask_usd"]:
            yield (
                path_text(("market", symbol, "bid_usd")),
                f"{data['bid_usd']} is above the ask ({data['ask_usd']})",
            )


def _no_account(path: tuple[object, ...], account_id: str) -> Problem:
    return path_text(path), f"no account {show(account_id)} in accounts"


def _not_after_as_of(
    path: tuple[object, ...], moment: Any, document: Mapping[str, Any]
) -> Iterator[Problem]:
    if moment > document["as_of"]:
        as_of = format_time(document["as_of"])
        yield (
            path_text(path),
            f"{format_time(moment)} is after as_of ({as_of})",
        )
