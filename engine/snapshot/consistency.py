"""Checks across fields that a per-field schema cannot express.

Run on a document that already passed the field rules (so every value has its type).
Each check yields (field path, message); validate.py reports them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from datetime import datetime
from decimal import Decimal
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
        *_trades(document),
        *_option_chains(document),
        *_instrument_rules(document),
    ]


def _instrument_rules(document: Mapping[str, Any]) -> Iterator[Problem]:
    """An instrument whose minimum is above its maximum allows no order: the venue data is
    wrong, and a check against it would deny everything for unclear reasons."""
    for symbol, instrument in document.get("instruments", {}).items():
        for low, high in (("min_quantity", "max_quantity"), ("min_notional", "max_notional")):
            if low in instrument and high in instrument and instrument[low] > instrument[high]:
                yield (
                    path_text(("instruments", symbol, low)),
                    f"{instrument[low]} is above {high} ({instrument[high]}): no order fits; "
                    "fix the venue's instrument data",
                )


# A trade's realised profit_pct is its price move after fees: fees only lower it, and by
# less than this many percentage points (venue fees are well under 1 % of a trade's
# value; what is further off is a wrong side, price or sign). ROUNDING_PCT absorbs the
# rounding of prices and percentages by the producer.
FEE_ALLOWANCE_PCT = Decimal(1)
ROUNDING_PCT = Decimal("0.01")


def trade_problems(
    trade: Mapping[str, Any], as_of: datetime, accounts: Set[str]
) -> Iterator[tuple[str, str]]:
    """(field, problem) for every inconsistency of one field-valid closed-trade record.

    Shared by the validator (a snapshot file with such a trade is invalid) and the snapshot
    builder (which leaves such a venue record out and lists it as unevaluable: an
    inconsistent trade is unusable, and silently dropping it could hide a stop-loss)."""
    if trade["account_id"] not in accounts:
        yield "account_id", f"no account {show(trade['account_id'])} in accounts"
    if trade["closed_at"] < trade["opened_at"]:
        yield (
            "closed_at",
            f"{format_time(trade['closed_at'])} is before opened_at "
            f"({format_time(trade['opened_at'])})",
        )
    if trade["closed_at"] > as_of:
        yield (
            "closed_at",
            f"{format_time(trade['closed_at'])} is after as_of ({format_time(as_of)})",
        )
    entry, exit_ = trade["entry_price_usd"], trade["exit_price_usd"]
    direction = 1 if trade["side"] == "long" else -1
    move_pct = (exit_ - entry) / entry * 100 * direction
    profit_pct = trade["profit_pct"]
    if not move_pct - FEE_ALLOWANCE_PCT - ROUNDING_PCT <= profit_pct <= move_pct + ROUNDING_PCT:
        yield (
            "profit_pct",
            f"{profit_pct} does not fit a {trade['side']} trade from {entry} to {exit_} "
            f"(price move {move_pct:.4f} %, fees may lower it by up to {FEE_ALLOWANCE_PCT} "
            "point): check side, prices and sign",
        )
    profit_usd = trade["profit_usd"]
    if (profit_usd > 0 and profit_pct < 0) or (profit_usd < 0 and profit_pct > 0):
        yield "profit_usd", f"{profit_usd} and profit_pct {profit_pct} have opposite signs"


def _trades(document: Mapping[str, Any]) -> Iterator[Problem]:
    accounts = {account["id"] for account in document["accounts"]}
    first_seen: dict[tuple[str, str], int] = {}
    for index, trade in enumerate(document.get("trades", ())):
        key = (trade["account_id"], trade["id"])
        earlier = first_seen.setdefault(key, index)
        if earlier != index:
            yield (
                path_text(("trades", index, "id")),
                f"{show(trade['id'])} is also trades[{earlier}].id in account "
                f"{show(trade['account_id'])}",
            )
        for name, problem in trade_problems(trade, document["as_of"], accounts):
            yield path_text(("trades", index, name)), problem


def _option_chains(document: Mapping[str, Any]) -> Iterator[Problem]:
    for underlying, chain in document.get("option_chains", {}).items():
        yield from _not_after_as_of(
            ("option_chains", underlying, "as_of"), chain["as_of"], document
        )
        yield from chain_problems(underlying, chain, document["as_of"])


def chain_problems(underlying: str, chain: Mapping[str, Any], as_of: datetime) -> Iterator[Problem]:
    """(path, problem) for every inconsistent contract of one field-valid option chain:
    a crossed quote, an expiry not after the chain's ``as_of``, a quote time after the
    snapshot's, a symbol or a (type, strike, expiry) listed twice."""
    symbols: dict[str, int] = {}
    terms: dict[tuple[str, Decimal, datetime], int] = {}
    for index, contract in enumerate(chain["contracts"]):
        where = ("option_chains", underlying, "contracts", index)
        if contract["bid_usd"] > contract["ask_usd"]:
            yield (
                path_text((*where, "bid_usd")),
                f"{contract['bid_usd']} is above the ask ({contract['ask_usd']}): a crossed "
                "quote; leave the contract out or fix the quote",
            )
        if contract["expires_at"] <= chain["as_of"]:
            yield (
                path_text((*where, "expires_at")),
                f"{format_time(contract['expires_at'])} is not after the chain's as_of "
                f"({format_time(chain['as_of'])}): an expired contract is not listed",
            )
        quoted_at = contract.get("quoted_at")
        if quoted_at is not None and quoted_at > as_of:
            yield (
                path_text((*where, "quoted_at")),
                f"{format_time(quoted_at)} is after as_of ({format_time(as_of)})",
            )
        earlier = symbols.setdefault(contract["symbol"], index)
        if earlier != index:
            yield (
                path_text((*where, "symbol")),
                f"{show(contract['symbol'])} is also contracts[{earlier}].symbol",
            )
            continue
        key = (contract["option_type"], contract["strike_usd"], contract["expires_at"])
        earlier = terms.setdefault(key, index)
        if earlier != index:
            yield (
                path_text((*where, "strike_usd")),
                f"contracts[{earlier}] is the same {key[0]} (strike {key[1]}, expiry "
                f"{format_time(key[2])}) under another symbol",
            )


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
