"""Alpaca's option chain (alpaca-py ``OptionHistoricalDataClient.get_option_chain``) read
into the snapshot's listed contracts.

``GET /v1beta1/options/snapshots/{underlying}`` answers ``{"snapshots": {OCC symbol:
{"latestQuote": {"bp", "ap", "t", ...}, "latestTrade": {"p", "t", ...},
"impliedVolatility", "greeks": {"delta", "gamma", "theta", "vega", "rho"}}},
"next_page_token"}``; the SDK walks the pages and, with ``raw_data=True``, returns the
merged ``{symbol: snapshot}``. Greeks and implied volatility are absent for some
contracts (alpaca-py's own tests have a snapshot with a quote only); Alpaca's theta is
per calendar day and its vega per vol point, both per share, as the snapshot wants.

One unreadable contract is one left-out contract, never a failed poll: a symbol that
is not OCC, an OCC root other than the underlying (an adjusted contract such as
``AAPL1…``, whose deliverable is not 100 shares — or a mislabelled one: Alpaca has
returned ``XOM2241220P00280000`` in XOM's chain, alpacahq/Alpaca-API#266), no quote, a
quote field that is not a number. Each is listed with its reason in
:attr:`ChainRead.left_out`. Open interest is not in this answer (it is in
``/v2/options/contracts``) and stays absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bastion.adapters import payload as p
from bastion.adapters.venue import OptionContract
from bastion.engine.errors import DataError
from bastion.engine.snapshot.model import ListedOption, OptionChain

OccParser = Callable[[str, str], OptionContract]


@dataclass(frozen=True, slots=True)
class ChainRead:
    """One underlying's chain as read, and the contracts left out (symbol: why)."""

    chain: OptionChain
    left_out: tuple[tuple[str, str], ...]


def read_chain(
    raw: object, underlying: str, as_of: datetime, parse_occ: OccParser, where: str
) -> ChainRead:
    """The listed contracts in the SDK's raw ``{symbol: snapshot}`` for ``underlying``."""
    snapshots = p.as_mapping(raw, where, "option chain") if raw else {}
    contracts: list[ListedOption] = []
    left_out: list[tuple[str, str]] = []
    for symbol in sorted(snapshots):
        try:
            contracts.append(
                _contract(symbol, snapshots[symbol], underlying, parse_occ, f"{where} {symbol}")
            )
        except DataError as error:
            left_out.append((symbol, error.message))
    chain = OptionChain(underlying=underlying, as_of=as_of, contracts=tuple(contracts))
    return ChainRead(chain, tuple(left_out))


def _contract(
    symbol: str, raw: object, underlying: str, parse_occ: OccParser, where: str
) -> ListedOption:
    terms = parse_occ(symbol, where)
    if terms.underlying_symbol != underlying:
        raise DataError(
            f"{where}: root {terms.underlying_symbol!r} is not {underlying!r}: an adjusted or "
            "mislabelled contract, whose deliverable may not be 100 shares"
        )
    snapshot = p.as_mapping(raw, where, "option snapshot")
    quote = snapshot.get("latestQuote")
    if not isinstance(quote, Mapping):
        raise DataError(f"{where}: no latestQuote, so no bid/ask to price a roll with")
    trade = snapshot.get("latestTrade")
    greeks = snapshot.get("greeks")
    greeks = greeks if isinstance(greeks, Mapping) else {}
    return ListedOption(
        symbol=symbol,
        option_type=terms.option_type,
        strike_usd=terms.strike_usd,
        expires_at=terms.expires_at,
        bid_usd=p.decimal(quote, "bp", where),
        ask_usd=p.decimal(quote, "ap", where),
        quoted_at=p.timestamp(quote, "t", where),
        last_usd=p.optional_decimal(trade, "p", where) if isinstance(trade, Mapping) else None,
        implied_volatility=_positive(p.optional_decimal(snapshot, "impliedVolatility", where)),
        delta=p.optional_decimal(greeks, "delta", where),
        gamma=p.optional_decimal(greeks, "gamma", where),
        theta_per_day_usd=p.optional_decimal(greeks, "theta", where),
        vega_usd=p.optional_decimal(greeks, "vega", where),
    )


def _positive(value: Decimal | None) -> Decimal | None:
    """An implied volatility of 0 is none (it prices nothing): treated as absent."""
    return value if value is not None and value > 0 else None
