"""Every snapshot field once: name, kind, bounds, description.

The JSON Schema (`schema`), the cerberus validator (`validate`) and the model's
round trip (`model`) are all generated from these tables, so they cannot drift apart;
tests/snapshot checks the dataclasses against them.

Units are in the names: ``_usd`` money and prices in US dollars, ``_pct`` per cent
(0–100), ``_ratio`` a fraction (0–1), ``_bps`` basis points, ``_s`` seconds, ``_at``
a moment in time (ISO-8601 with a timezone, held in UTC). Volatilities and
correlations are plain numbers and say so in their descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class FieldKind(StrEnum):
    TEXT = "text"  # a non-empty string: ids, symbols, names
    DECIMAL = "decimal"  # a finite number, held as Decimal; JSON numbers or numeric strings
    INTEGER = "integer"  # a whole number, held as int
    FLAG = "flag"  # true / false
    OBJECT = "object"  # a free-form JSON object (metadata), kept as given
    TIME = "time"  # ISO-8601 with a timezone, held as an aware UTC datetime
    CHOICE = "choice"  # one of `choices`
    RECORD = "record"  # a nested record (`record` names it)
    LIST = "list"  # a list of records
    BY_SYMBOL = "by_symbol"  # an object of records keyed by symbol


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: FieldKind
    description: str
    required: bool = True
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    positive: bool = False  # strictly greater than zero
    choices: tuple[str, ...] = ()
    record: str = ""

    @property
    def expectation(self) -> str:
        """What a valid value is, for error messages: 'a positive number', 'one of ...'."""
        if self.kind is FieldKind.DECIMAL or self.kind is FieldKind.INTEGER:
            noun = "number" if self.kind is FieldKind.DECIMAL else "whole number"
            if self.positive:
                return f"a positive {noun}"
            if self.minimum is not None and self.maximum is not None:
                return f"a {noun} from {self.minimum} to {self.maximum}"
            if self.minimum is not None:
                return f"a {noun} ≥ {self.minimum}"
            return f"a {noun}"
        return {
            FieldKind.TEXT: "a non-empty string (at most 100 characters)",
            FieldKind.FLAG: "true or false",
            FieldKind.OBJECT: "a JSON object",
            FieldKind.TIME: 'an ISO-8601 time with a timezone, e.g. "2026-11-20T14:30:00Z"',
            FieldKind.CHOICE: "one of " + ", ".join(self.choices),
            FieldKind.RECORD: f"an object ({self.record})",
            FieldKind.LIST: f"a list of {self.record} objects",
            FieldKind.BY_SYMBOL: f"an object of {self.record} objects keyed by symbol",
        }[self.kind]


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    description: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        return next((field for field in self.fields if field.name == name), None)


_ZERO, _ONE, _HUNDRED = Decimal(0), Decimal(1), Decimal(100)


def text(name: str, description: str) -> Field:
    return Field(name, FieldKind.TEXT, description)


def money(name: str, description: str, *, signed: bool = False) -> Field:
    """A USD amount; ≥ 0 unless `signed` (P&L)."""
    return Field(name, FieldKind.DECIMAL, description, minimum=None if signed else _ZERO)


def positive(name: str, description: str, *, required: bool = True) -> Field:
    return Field(name, FieldKind.DECIMAL, description, required=required, positive=True)


def amount(name: str, description: str, *, required: bool = True) -> Field:
    """A non-negative number (volume, ATR, volatility, age in seconds, bps)."""
    return Field(name, FieldKind.DECIMAL, description, required=required, minimum=_ZERO)


def pct(name: str, description: str) -> Field:
    return Field(name, FieldKind.DECIMAL, description, minimum=_ZERO, maximum=_HUNDRED)


def ratio(name: str, description: str) -> Field:
    return Field(name, FieldKind.DECIMAL, description, minimum=_ZERO, maximum=_ONE)


def bounded(name: str, description: str, low: int, high: int, *, required: bool = True) -> Field:
    return Field(
        name, FieldKind.DECIMAL, description, required, minimum=Decimal(low), maximum=Decimal(high)
    )


def count(name: str, description: str) -> Field:
    return Field(name, FieldKind.INTEGER, description, minimum=_ZERO)


def flag(name: str, description: str) -> Field:
    return Field(name, FieldKind.FLAG, description)


def moment(name: str, description: str) -> Field:
    return Field(name, FieldKind.TIME, description)


def choice(name: str, description: str, *choices: str) -> Field:
    return Field(name, FieldKind.CHOICE, description, choices=choices)


def nested(
    name: str, kind: FieldKind, record: str, description: str, *, required: bool = True
) -> Field:
    return Field(name, kind, description, required=required, record=record)


ACCOUNT_TYPES = ("gen", "rev", "com")
ASSET_CLASSES = ("equity", "crypto", "option")
SIDES = ("long", "short")
OPTION_TYPES = ("call", "put")
SEVERITIES = ("low", "medium", "high", "critical")
INSTRUMENT_ASSET_CLASSES = ("equity", "crypto", "option", "future", "fx", "other")
EXIT_REASONS = ("stop_loss", "take_profit", "signal", "manual", "liquidation")

# The venue's order rules for an instrument (authority/controls/instrument_*.py); the
# LimitPolicy's `instruments` section may add stricter ones (authority/instrument_rules.py).
INSTRUMENT_RULE_FIELDS = (
    positive(
        "tick_size",
        "Price increment: a limit or trigger price must be a multiple of it.",
        required=False,
    ),
    positive(
        "lot_size",
        "Quantity increment: an order's quantity must be a multiple of it.",
        required=False,
    ),
    positive("min_quantity", "Smallest order quantity, in units.", required=False),
    positive("max_quantity", "Largest order quantity, in units.", required=False),
    positive("min_notional", "Smallest order value, in USD.", required=False),
    positive("max_notional", "Largest order value, in USD.", required=False),
)

# The option-chain records, apart so that they read as one block.
OPTION_CHAIN_RECORDS = (
    Record(
        "OptionChain",
        "The listed option contracts of one underlying, with their quotes.",
        (
            moment("as_of", "When the venue's chain was read; not after the snapshot's `as_of`."),
            nested(
                "contracts",
                FieldKind.LIST,
                "ListedOption",
                "Every listed contract (calls and puts, all expiries) the source gave.",
            ),
        ),
    ),
    Record(
        "ListedOption",
        "One listed option contract and its latest quote, per share (not per contract).",
        (
            text("symbol", "The contract's symbol (OCC, e.g. SPY261218P00591000)."),
            choice("option_type", "call or put.", *OPTION_TYPES),
            positive("strike_usd", "Strike price."),
            moment("expires_at", "Expiry time of the contract; after the chain's `as_of`."),
            amount("bid_usd", "Best bid per share; 0 when nobody bids; not above the ask."),
            positive("ask_usd", "Best ask per share."),
            Field(
                "quoted_at",
                FieldKind.TIME,
                "When the bid/ask was quoted; the chain's `as_of` when absent.",
                required=False,
            ),
            amount("last_usd", "Last trade price per share.", required=False),
            Field(
                "implied_volatility",
                FieldKind.DECIMAL,
                "Implied volatility, annualised, as a fraction (0.25 = 25 vol points).",
                required=False,
                positive=True,
                maximum=Decimal(10),
            ),
            bounded("delta", "Delta per share, as the venue reports it.", -1, 1, required=False),
            amount("gamma", "Gamma: change of delta per $1 of the underlying.", required=False),
            Field(
                "theta_per_day_usd",
                FieldKind.DECIMAL,
                "Theta: change of value per calendar day, USD per share (usually negative).",
                required=False,
            ),
            amount(
                "vega_usd", "Vega: change of value per 1 vol point, USD per share.", required=False
            ),
            Field(
                "open_interest",
                FieldKind.INTEGER,
                "Open contracts, as the venue last reported them.",
                required=False,
                minimum=_ZERO,
            ),
        ),
    ),
)

RECORDS: dict[str, Record] = {
    record.name: record
    for record in (
        Record(
            "Snapshot",
            "Everything one evaluation reads, frozen at `as_of`.",
            (
                Field(
                    "version",
                    FieldKind.INTEGER,
                    "Snapshot format version; 1 (the default).",
                    required=False,
                    minimum=_ONE,
                    maximum=_ONE,
                ),
                moment(
                    "as_of", "When the snapshot was taken; evaluations compare data ages to it."
                ),
                nested("accounts", FieldKind.LIST, "Account", "The trading accounts."),
                nested("positions", FieldKind.LIST, "Position", "Open positions in every account."),
                nested("market", FieldKind.BY_SYMBOL, "Market", "Market data per traded symbol."),
                nested("system", FieldKind.RECORD, "System", "Health of Bastion's own inputs."),
                nested(
                    "order_flow",
                    FieldKind.LIST,
                    "OrderFlow",
                    "Recent order flow per account and strategy.",
                ),
                nested("regime", FieldKind.RECORD, "Regime", "The current market regime."),
                nested(
                    "trades",
                    FieldKind.LIST,
                    "ClosedTrade",
                    "Closed trades, oldest close first, as far back as the longest lookback "
                    "of the history protections needs; optional (none by default).",
                    required=False,
                ),
                nested(
                    "instruments",
                    FieldKind.BY_SYMBOL,
                    "Instrument",
                    "What each symbol is (asset class, sector); optional (none by default).",
                    required=False,
                ),
                nested(
                    "option_chains",
                    FieldKind.BY_SYMBOL,
                    "OptionChain",
                    "Listed option contracts with their quotes, keyed by underlying symbol; "
                    "roll analysis picks candidates only from these when one is present. "
                    "Optional (none by default).",
                    required=False,
                ),
            ),
        ),
        Record(
            "Account",
            "One trading account.",
            (
                text("id", "Account id, unique in the snapshot."),
                choice(
                    "type",
                    "Account type: gen (generation), rev (revenue), com (compounding).",
                    *ACCOUNT_TYPES,
                ),
                money("equity_usd", "Current equity: cash plus the value of open positions."),
                money("cash_usd", "Cash balance.", signed=True),
                money("day_start_equity_usd", "Equity at the start of the trading day."),
                money(
                    "peak_equity_usd", "Highest equity reached (the high-water mark for drawdowns)."
                ),
                money(
                    "realized_pnl_usd", "Realised profit and loss since the day start.", signed=True
                ),
                money(
                    "unrealized_pnl_usd",
                    "Unrealised profit and loss of open positions.",
                    signed=True,
                ),
                flag(
                    "drift_flag",
                    "True when the account's holdings have drifted from their target allocation.",
                ),
            ),
        ),
        Record(
            "Position",
            "One open position.",
            (
                text("id", "Position id, unique in the snapshot."),
                text("account_id", "Id of the account holding the position."),
                text("symbol", "Traded symbol; equities and crypto need an entry under `market`."),
                choice("asset_class", "Asset class: equity, crypto or option.", *ASSET_CLASSES),
                positive(
                    "quantity",
                    "Size in units (shares, coins, contracts); always positive, see `side`.",
                ),
                choice("side", "long or short.", *SIDES),
                positive("entry_price_usd", "Average entry price per unit."),
                moment("entered_at", "When the position was opened; not after `as_of`."),
                positive("price_usd", "Current price per unit."),
                text("strategy_id", "Id of the strategy that manages the position."),
                flag("manual", "True when the position was opened by hand, outside any strategy."),
                nested(
                    "option",
                    FieldKind.RECORD,
                    "OptionLeg",
                    "The option contract; required when asset_class is option, absent otherwise.",
                    required=False,
                ),
            ),
        ),
        Record(
            "OptionLeg",
            "The contract terms and pricing inputs of an option position.",
            (
                choice("option_type", "call or put.", *OPTION_TYPES),
                positive("strike_usd", "Strike price."),
                moment("expires_at", "Expiry time of the contract."),
                positive("underlying_price_usd", "Current price of the underlying."),
                positive(
                    "implied_volatility",
                    "Implied volatility, annualised, as a fraction (0.25 = 25 vol points).",
                ),
                amount(
                    "dividend_yield",
                    "Dividend yield per year, continuous, as a fraction (0.013 = 1.3 %).",
                    required=False,
                ),
                bounded(
                    "risk_free_rate",
                    "Risk-free rate per year, continuous compounding (0.045 = 4.5 %).",
                    -1,
                    1,
                    required=False,
                ),
                positive(
                    "multiplier",
                    "Units of the underlying per contract (100 for US equity options).",
                    required=False,
                ),
                bounded(
                    "delta",
                    "Delta per unit of underlying, as the venue reports it; computed if absent.",
                    -1,
                    1,
                    required=False,
                ),
            ),
        ),
        Record(
            "Market",
            "Market data for one symbol.",
            (
                positive("price_usd", "Last trade price."),
                positive("bid_usd", "Best bid; not above the ask."),
                positive("ask_usd", "Best ask."),
                amount(
                    "atr_usd", "Average true range over the configured window, in USD per unit."
                ),
                amount(
                    "volume",
                    "Volume traded over the recent window (today, for daily bars), in units.",
                ),
                amount("avg_volume", "Average volume per window of the same length, in units."),
                amount(
                    "volatility", "Realised volatility, annualised, as a fraction (0.18 = 18 %)."
                ),
                amount(
                    "normal_volatility",
                    "Typical realised volatility for the symbol, same unit as `volatility`.",
                ),
                amount(
                    "liquidity_usd",
                    "Liquidity now, in USD: recent traded dollar volume (or book depth where "
                    "the source has it).",
                ),
                amount("normal_liquidity_usd", "Typical liquidity, measured the same way, in USD."),
                bounded(
                    "correlation",
                    "Correlation of the symbol with its benchmark, from -1 to 1.",
                    -1,
                    1,
                ),
                bounded(
                    "normal_correlation",
                    "Typical correlation with the benchmark, from -1 to 1.",
                    -1,
                    1,
                ),
                amount("data_age_s", "Age of the newest market data for the symbol, in seconds."),
                ratio(
                    "quality_score_ratio", "Data-quality score of recent bars, 0 (unusable) to 1."
                ),
            ),
        ),
        Record(
            "System",
            "Health of the inputs Bastion depends on.",
            (
                pct(
                    "error_rate_pct",
                    "Share of failed calls to venues and data sources, in per cent.",
                ),
                ratio("connectivity_ratio", "Share of venues and data sources reachable, 0 to 1."),
                amount(
                    "data_age_s", "Age of the oldest input the evaluation depends on, in seconds."
                ),
            ),
        ),
        Record(
            "OrderFlow",
            "Recent orders and fills of one strategy in one account.",
            (
                text(
                    "account_id",
                    "Id of the account the strategy trades in; the strategy's breakers "
                    "restrict it even when the strategy holds no position.",
                ),
                text("strategy_id", "Id of the strategy."),
                count("orders_last_minute", "Orders submitted in the last 60 seconds."),
                amount(
                    "slippage_bps",
                    "Average slippage of recent fills against the expected price, in bps.",
                ),
                count("consecutive_losses", "Losing trades in a row, most recent first."),
            ),
        ),
        Record(
            "Regime",
            "The market regime a classifier assigned.",
            (
                text("name", "Regime name, e.g. calm, trending, crash."),
                choice(
                    "severity",
                    "How dangerous the regime is: low, medium, high or critical.",
                    *SEVERITIES,
                ),
                moment("changed_at", "When the regime last changed; not after `as_of`."),
            ),
        ),
        Record(
            "ClosedTrade",
            "One closed trade: a position (or part of one) opened and closed again.",
            (
                text("id", "The venue's trade or closing order id, unique per account."),
                text("account_id", "Id of the account that held the position."),
                text("symbol", "Traded symbol."),
                choice(
                    "side", "The position's side (not the closing fill's): long or short.", *SIDES
                ),
                Field(
                    "strategy_id",
                    FieldKind.TEXT,
                    "Id of the strategy that traded it; absent when unknown.",
                    required=False,
                ),
                positive("units", "Size closed, in units (shares, coins, contracts)."),
                moment("opened_at", "When the position was opened; not after `closed_at`."),
                moment("closed_at", "When it was closed; not after `as_of`."),
                positive("entry_price_usd", "Average entry price per unit."),
                positive("exit_price_usd", "Average exit price per unit."),
                money(
                    "profit_usd",
                    "Realised profit (negative: loss), after fees where the venue reports them.",
                    signed=True,
                ),
                Field(
                    "profit_pct",
                    FieldKind.DECIMAL,
                    "Realised profit in per cent of the entry value (3 means 3 %; negative: loss).",
                ),
                choice(
                    "exit_reason",
                    "Why it was closed: stop_loss, take_profit, signal, manual or liquidation.",
                    *EXIT_REASONS,
                ),
            ),
        ),
        Record(
            "Instrument",
            "What one symbol is, for exposure by asset class and sector, and the venue's "
            "order rules for it (each absent when the venue sets none).",
            (
                choice(
                    "asset_class",
                    "Asset class: equity, crypto, option, future, fx or other.",
                    *INSTRUMENT_ASSET_CLASSES,
                ),
                Field(
                    "sector",
                    FieldKind.TEXT,
                    'Sector, free text (e.g. "technology"); absent when unknown.',
                    required=False,
                ),
                *INSTRUMENT_RULE_FIELDS,
            ),
        ),
        *OPTION_CHAIN_RECORDS,
    )
}
