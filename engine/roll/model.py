"""Roll analysis data: the option leg that goes in, the candidates and the analysis out.

Every record is frozen. Money is ``Decimal`` USD per share unless a field says
otherwise; ratios are 0–1 (``_ratio``); ``abs_delta`` is the option's |Δ| per share.
``to_dict`` renders Decimals as strings and datetimes as ISO 8601, so the output is
JSON-ready and byte-stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bastion.engine.errors import SnapshotError
from bastion.engine.indicators.greeks import OptionType

URGENCIES = ("emergency", "high", "medium", "low", "none")  # most urgent first
NO_URGENCY = "none"

_MAX_PRICE_USD = Decimal("1e12")  # beyond it a price is a feed error, not a market
_SMALLEST_POSITIVE = Decimal("1e-8")  # strike, spot and quantity must be > 0
_MIN_IMPLIED_VOL = Decimal("0.0001")  # 0.01 %
_MAX_IMPLIED_VOL = Decimal(10)  # 1,000 %


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class DeltaSource(StrEnum):
    SNAPSHOT = "snapshot"  # the leg carried a delta
    COMPUTED = "computed"  # Black–Scholes–Merton, or intrinsic value once expired


class QuoteSource(StrEnum):
    SNAPSHOT = "snapshot"  # the leg's own bid/ask
    LISTED = "listed"  # the contract's bid/ask in the snapshot's option chain
    MODEL = "model"  # model value ± an assumed spread


class PricedBy(StrEnum):
    """Where a candidate comes from: the snapshot's listed chain, or the synthetic one."""

    LISTED = "listed"  # a listed contract, priced with its listed bid/ask
    MODEL = "model"  # a made-up contract (no chain for the underlying), priced by BSM


def contract_label(symbol: str, option_type: OptionType, expiry: datetime, strike: Decimal) -> str:
    """``SPY 2026-12-18 P 440``: how a trader names a listed option."""
    letter = "C" if option_type is OptionType.CALL else "P"
    return f"{symbol} {expiry.date().isoformat()} {letter} {strike.normalize():f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionLeg:
    """One option position. Keyword-only, so a strike and a spot are never swapped.

    ``quantity`` is in contracts (positive; ``side`` carries the direction).
    ``implied_vol`` and ``dividend_yield`` are ratios (0.25 = 25 %); a ``dividend_yield``
    of None means "use the policy's". ``delta`` is the option's delta per share as the
    snapshot gives it; only its size is used, so a feed's sign convention does not
    matter. ``bid``/``ask`` quote the current contract; both or neither are used.
    """

    symbol: str
    option_type: OptionType
    side: Side
    strike: Decimal
    expiry: datetime
    quantity: Decimal
    underlying_price: Decimal
    implied_vol: Decimal
    dividend_yield: Decimal | None = None
    delta: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None

    def __post_init__(self) -> None:
        problems = _leg_problems(self)
        if problems:
            raise SnapshotError(f"option leg {self.symbol!r}: " + "; ".join(problems))

    @property
    def label(self) -> str:
        return contract_label(self.symbol, self.option_type, self.expiry, self.strike)

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.label,
            "symbol": self.symbol,
            "option_type": self.option_type.value,
            "side": self.side.value,
            "strike": str(self.strike),
            "expiry": self.expiry.isoformat(),
            "quantity": str(self.quantity),
            "underlying_price": str(self.underlying_price),
            "implied_vol": str(self.implied_vol),
            "dividend_yield": _opt_str(self.dividend_yield),
            "delta": _opt_str(self.delta),
            "bid": _opt_str(self.bid),
            "ask": _opt_str(self.ask),
        }


def _leg_problems(leg: OptionLeg) -> list[str]:
    """What is wrong with a leg, each with its fix (callers may bypass the type hints)."""
    problems: list[str] = []
    symbol: object = leg.symbol
    option_type: object = leg.option_type
    side: object = leg.side
    expiry: object = leg.expiry
    if not isinstance(symbol, str) or not symbol:
        problems.append("symbol must be the underlying's ticker, e.g. 'SPY'")
    if not isinstance(option_type, OptionType):
        problems.append(f"option_type must be OptionType.CALL or .PUT, got {option_type!r}")
    if not isinstance(side, Side):
        problems.append(f"side must be Side.LONG or Side.SHORT, got {side!r}")
    if not isinstance(expiry, datetime) or expiry.utcoffset() is None:
        problems.append(f"expiry must be a timezone-aware datetime, got {expiry!r}")
    zero, one = Decimal(0), Decimal(1)
    ranges: list[tuple[str, Decimal | None, Decimal, Decimal, str]] = [
        # (field, value, lowest, highest, unit), both ends allowed; a strike, spot or
        # quantity of zero means no contract, so their lowest is a hair above it.
        ("strike", leg.strike, _SMALLEST_POSITIVE, _MAX_PRICE_USD, "USD"),
        ("underlying_price", leg.underlying_price, _SMALLEST_POSITIVE, _MAX_PRICE_USD, "USD"),
        ("quantity", leg.quantity, _SMALLEST_POSITIVE, _MAX_PRICE_USD, "contracts"),
        ("implied_vol", leg.implied_vol, _MIN_IMPLIED_VOL, _MAX_IMPLIED_VOL, "0.25 = 25 %"),
        ("dividend_yield", leg.dividend_yield, -one, one, "a ratio, 0.015 = 1.5 %"),
        ("delta", leg.delta, -one, one, "per share"),
        ("bid", leg.bid, zero, _MAX_PRICE_USD, "USD per share"),
        ("ask", leg.ask, zero, _MAX_PRICE_USD, "USD per share"),
    ]
    optional = {"dividend_yield", "delta", "bid", "ask"}
    for name, value, lowest, highest, unit in ranges:
        if value is None and name in optional:
            continue
        if not isinstance(value, Decimal) or not value.is_finite():
            problems.append(f"{name} must be a finite Decimal ({unit}), got {value!r}")
        elif not lowest <= value <= highest:
            problems.append(f"{name} must be in [{lowest}, {highest}] ({unit}), got {value}")
    if not problems and leg.bid is not None and leg.ask is not None and leg.bid > leg.ask:
        problems.append(f"bid {leg.bid} is above ask {leg.ask}: the quote is crossed")
    return problems


@dataclass(frozen=True, slots=True)
class Quote:
    """A bid/ask in USD per share; ``mid_usd`` and ``spread_usd`` follow from it."""

    bid_usd: Decimal
    ask_usd: Decimal
    source: QuoteSource

    @property
    def mid_usd(self) -> Decimal:
        return (self.bid_usd + self.ask_usd) / 2

    @property
    def spread_usd(self) -> Decimal:
        return self.ask_usd - self.bid_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "bid_usd": str(self.bid_usd),
            "ask_usd": str(self.ask_usd),
            "mid_usd": str(self.mid_usd),
            "spread_usd": str(self.spread_usd),
            "source": self.source.value,
        }


@dataclass(frozen=True, slots=True)
class RollCandidate:
    """One contract the position could be rolled into, with the roll's economics.

    ``net_credit_usd`` is per share after the spread paid on both legs, commission
    and fees: positive is a net credit, negative a net debit. ``theta_per_day_usd`` is
    the option's own theta (negative: it loses value each calendar day, which a short
    position earns). ``probability_itm_ratio`` is the risk-neutral N(d2) / N(−d2).
    """

    symbol: str
    option_type: OptionType
    expiry: datetime
    strike: Decimal
    dte_days: int
    abs_delta: Decimal
    model_value_usd: Decimal
    quote: Quote
    time_value_usd: Decimal
    theta_per_day_usd: Decimal
    probability_itm_ratio: Decimal
    net_credit_usd: Decimal
    net_credit_per_position_usd: Decimal
    in_band: bool
    economic: bool  # net credit ≥ the policy's min_net_credit_usd
    within_debit_limit: bool  # net ≥ −max_net_debit_usd
    acceptable: bool  # in band and allowed at the position's urgency
    priced_by: PricedBy = PricedBy.MODEL
    contract_symbol: str | None = None  # the listed contract's own symbol (OCC)

    @property
    def label(self) -> str:
        return contract_label(self.symbol, self.option_type, self.expiry, self.strike)

    def to_dict(self) -> dict[str, Any]:
        listed = {} if self.contract_symbol is None else {"contract_symbol": self.contract_symbol}
        return {
            "contract": self.label,
            **listed,
            "priced_by": self.priced_by.value,
            "expiry": self.expiry.isoformat(),
            "strike": str(self.strike),
            "dte_days": self.dte_days,
            "abs_delta": str(self.abs_delta),
            "model_value_usd": str(self.model_value_usd),
            "quote": self.quote.to_dict(),
            "time_value_usd": str(self.time_value_usd),
            "theta_per_day_usd": str(self.theta_per_day_usd),
            "probability_itm_ratio": str(self.probability_itm_ratio),
            "net_credit_usd": str(self.net_credit_usd),
            "net_credit_per_position_usd": str(self.net_credit_per_position_usd),
            "in_band": self.in_band,
            "economic": self.economic,
            "within_debit_limit": self.within_debit_limit,
            "acceptable": self.acceptable,
        }


@dataclass(frozen=True, slots=True)
class RollAnalysis:
    """Whether and where to roll one option position, and why, as of ``as_of``."""

    leg: OptionLeg
    as_of: datetime
    expired: bool
    abs_delta: Decimal
    delta_source: DeltaSource
    urgency: str  # one of URGENCIES
    current_quote: Quote
    candidates: tuple[RollCandidate, ...]  # ranked, best first
    recommended: RollCandidate | None
    reasons: tuple[str, ...]
    priced_by: PricedBy = PricedBy.MODEL  # listed: every candidate from the snapshot's chain
    chain_as_of: datetime | None = None  # when the listed chain was read

    def to_dict(self) -> dict[str, Any]:
        return {
            "leg": self.leg.to_dict(),
            "as_of": self.as_of.isoformat(),
            "priced_by": self.priced_by.value,
            "chain_as_of": None if self.chain_as_of is None else self.chain_as_of.isoformat(),
            "expired": self.expired,
            "abs_delta": str(self.abs_delta),
            "delta_source": self.delta_source.value,
            "urgency": self.urgency,
            "current_quote": self.current_quote.to_dict(),
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "recommended": None if self.recommended is None else self.recommended.to_dict(),
            "reasons": list(self.reasons),
        }


def _opt_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
