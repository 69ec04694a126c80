"""LimitPolicy: pre-trade limits, sizing, the kill switch and trading states."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec, dec_map, opt_dec, strs
from bastion.engine.policy.vocabulary import ORDER_ACTIONS, TRADING_STATES
from bastion.engine.snapshot.fields import INSTRUMENT_ASSET_CLASSES

KIND = "LimitPolicy"
FILE_STEM = "limits"
TITLE = "Bastion LimitPolicy"
DESCRIPTION = (
    "Pre-trade limits every order is checked against: risk per trade and portfolio, "
    "concentration, the kill switch, order size and rate, and what each trading state allows."
)

# What each trading state allows when a policy does not say (and when no LimitPolicy
# governs an order at all: can_execute still applies these).
DEFAULT_ALLOWED_ACTIONS: dict[str, tuple[str, ...]] = {
    "ACTIVE": ORDER_ACTIONS,
    # A modify that adds units is denied where increase is not allowed (trading_state).
    "REDUCING": ("close", "decrease", "cancel", "modify"),
    "HALTED": ("cancel",),
}
RATE_PATTERN = r"^([1-9][0-9]*)/([1-9][0-9]*)?(ms|s|m|h)$"
ON_BREACH = ("downsize", "deny")  # what a size limit does to an order that breaks it
_RATE_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


def _increment(description: str) -> s.Schema:
    return s.number(description, exclusive_minimum=0)


# One `instruments` entry: the rules an order for the instrument must meet
# (authority/controls/instrument_*.py); the snapshot's Instrument uses the same names,
# its notional ones without the _usd.
INSTRUMENT_RULES_SCHEMA = s.obj(
    "Order rules for the instruments this key covers.",
    {
        "tick_size": _increment("A limit or trigger price must be a multiple of it."),
        "lot_size": _increment(
            "An order's quantity must be a multiple of it (rounded down when downsizing)."
        ),
        "min_quantity": _increment("Smallest order quantity, in units."),
        "max_quantity": _increment("Largest order quantity, in units."),
        "min_notional_usd": _increment("Smallest order value in USD."),
        "max_notional_usd": _increment("Largest order value in USD."),
    },
)
INSTRUMENT_RULE_NAMES = (
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional_usd",
    "max_notional_usd",
)


def _actions(description: str, default: list[str]) -> s.Schema:
    return s.array(
        description,
        s.string("An order action.", enum=ORDER_ACTIONS),
        unique=True,
        default=default,
    )


SPEC_SCHEMA = s.obj(
    "Limit settings.",
    {
        "risk": s.obj(
            "Risk budgets, as per cent of account equity.",
            {
                "max_risk_per_trade_pct": s.percent("Risk one trade may take.", default=1),
                "max_portfolio_risk_pct": s.percent(
                    "Risk of all open positions together.", default=10
                ),
                "max_open_positions": s.number(
                    "Open positions at most.", integer=True, minimum=0, default=10
                ),
                "max_per_asset_pct": s.percent(
                    "Exposure to any single asset. Above 100 only with `borrowing` allowed, "
                    "up to 100 × its max_leverage.",
                    maximum=None,
                    default=5,
                ),
                "borrowing": s.obj(
                    "Exposure above 1× equity, paid for with borrowed cash or margin. Without "
                    "it, max_per_asset_pct is at most 100 (lint BST506).",
                    {
                        "allowed": s.boolean(
                            "Allow a symbol's exposure above 100 % of equity.", default=False
                        ),
                        "max_leverage": s.number(
                            "Exposure a symbol may reach, in multiples of equity: "
                            "max_per_asset_pct is at most 100 × this.",
                            minimum=1,
                            default=1,
                        ),
                    },
                ),
                "max_per_strategy_pct": s.map_of(
                    "Exposure cap per strategy id.",
                    s.percent("Cap for this strategy."),
                    examples=[{"trend_following_v1": 40, "mean_reversion_v1": 30}],
                ),
                "max_per_sector_pct": s.map_of(
                    "Exposure cap per sector (the snapshot's instruments say each symbol's "
                    'sector); the key "*" (quoted in YAML) caps every sector not named. An '
                    "order for an equity whose sector is unknown is denied while any sector cap "
                    "is set.",
                    s.percent("Cap for this sector."),
                    examples=[{"*": 25, "technology": 35}],
                ),
                "max_per_asset_class_pct": {
                    **s.map_of(
                        "Exposure cap per asset class (equity, crypto, option, future, fx, "
                        'other); the key "*" (quoted in YAML) caps every class not named. An '
                        "order for a symbol with no instrument record is denied while any "
                        "asset-class cap is set.",
                        s.percent("Cap for this asset class."),
                        examples=[{"crypto": 20, "*": 60}],
                    ),
                    "propertyNames": {"enum": ["*", *INSTRUMENT_ASSET_CLASSES]},
                },
            },
        ),
        "sizing": s.obj(
            "Volatility-based sizing when a request gives no size: per-unit risk is "
            "ATR × atr_multiple; size so that risk ≤ max_risk_per_trade_pct of equity.",
            {
                "volatility_lookback_bars": s.number(
                    "Bars the ATR for sizing is computed over.", integer=True, minimum=1, default=20
                ),
                "atr_multiple": s.number(
                    "Stop distance in ATRs (per-unit risk).", exclusive_minimum=0, default=2
                ),
            },
        ),
        "kill_switch": s.obj(
            "Blocks opening and increasing (reducing and closing still pass).",
            {
                "max_daily_drawdown_pct": s.percent(
                    "Daily drawdown that trips the kill switch.", default=10
                ),
                "on_drift": s.boolean(
                    "Trip when the portfolio's drift flag is set (books disagree).", default=True
                ),
            },
        ),
        "include_manual_positions": s.boolean(
            "Count manual positions against the soft limits (hard per-asset and portfolio "
            "caps always count them).",
            default=True,
        ),
        "liquidity": s.obj(
            "Market liquidity required to trade a symbol.",
            {
                "min_liquidity_24h_usd": s.number(
                    "Minimum 24 h traded volume in USD.", minimum=0, default=100000
                )
            },
        ),
        "orders": s.obj(
            "Per-order limits.",
            {
                "max_notional_per_order_usd": s.number(
                    "Largest order value in USD.", exclusive_minimum=0, examples=[50000]
                ),
                "max_position_per_symbol_usd": s.number(
                    "Largest position value per symbol in USD.",
                    exclusive_minimum=0,
                    examples=[50000],
                ),
                "submit_rate": s.string(
                    "Orders allowed per rolling window, as COUNT/WINDOW: 100/1s, 60/1m, 5/500ms.",
                    pattern=RATE_PATTERN,
                    default="100/1s",
                ),
                "modify_rate": s.string(
                    "Modifications (action modify) allowed per rolling window, as "
                    "COUNT/WINDOW like submit_rate; counted apart from submits (Nautilus: "
                    "max_order_modify_rate).",
                    pattern=RATE_PATTERN,
                    default="100/1s",
                ),
                "pending_ttl_s": s.number(
                    "Seconds an order approved (or reported sent) since the snapshot counts "
                    "toward exposure, risk and cash when no newer snapshot shows it; 0 counts "
                    "none.",
                    minimum=0,
                    default=300,
                ),
            },
        ),
        "instruments": {
            **s.map_of(
                "Order rules per instrument, keyed by a symbol, an asset class (equity, "
                'crypto, option, future, fx, other) or "*" (quoted in YAML) for every '
                "instrument. For each rule the most specific key that sets it applies "
                "(symbol, then asset class, then *), and the stricter of it and the "
                "snapshot's instrument record wins.",
                INSTRUMENT_RULES_SCHEMA,
                examples=[{"*": {"min_notional_usd": 10}, "BTCUSD": {"lot_size": 0.0001}}],
            ),
            "propertyNames": {"minLength": 1},
        },
        "region": s.obj(
            "What the venue's region allows for the accounts in scope.",
            {
                "code": s.string("Region code, for people.", examples=["US", "US_CA"]),
                "shorting_allowed": s.boolean("Short selling allowed.", default=False),
                "margin_allowed": s.boolean("Leverage / margin allowed.", default=False),
            },
        ),
        "on_breach": s.string(
            "What a size limit (risk, exposure, order value, position value, cash, size "
            "increment) does to an order that breaks it: downsize it to the largest size "
            "that meets every limit, or deny it (as NautilusTrader denies an order over its "
            "max notional). Limits that block outright (kill switch, liquidity, open "
            "positions, submit rate, region shorting, trading state) deny either way.",
            enum=ON_BREACH,
            default="downsize",
        ),
        "trading_states": s.obj(
            "Order actions each trading state allows. Breakers move accounts between states.",
            {
                "ACTIVE": _actions(
                    "Allowed when trading normally.", list(DEFAULT_ALLOWED_ACTIONS["ACTIVE"])
                ),
                "REDUCING": _actions(
                    "Allowed while only reducing risk.", list(DEFAULT_ALLOWED_ACTIONS["REDUCING"])
                ),
                "HALTED": _actions(
                    "Allowed while halted.", list(DEFAULT_ALLOWED_ACTIONS["HALTED"])
                ),
            },
        ),
    },
)

EXAMPLE_SPEC: dict[str, Any] = {
    "risk": {"max_risk_per_trade_pct": 1, "max_portfolio_risk_pct": 10, "max_open_positions": 10},
    "kill_switch": {"max_daily_drawdown_pct": 10, "on_drift": True},
    "orders": {"submit_rate": "100/1s"},
}


@dataclass(frozen=True, slots=True)
class SubmitRate:
    count: int
    window_s: Decimal


def parse_rate(text: str) -> SubmitRate:
    match = re.fullmatch(RATE_PATTERN, text)
    if match is None:
        raise ValueError(f"submit_rate {text!r} is not COUNT/WINDOW like 100/1s")
    count, amount, unit = match.groups()
    return SubmitRate(int(count), Decimal(amount or 1) * _RATE_UNITS[unit])


@dataclass(frozen=True, slots=True)
class LimitSpec:
    max_risk_per_trade_pct: Decimal
    max_portfolio_risk_pct: Decimal
    max_open_positions: int
    max_per_asset_pct: Decimal
    max_per_strategy_pct: tuple[tuple[str, Decimal], ...]
    volatility_lookback_bars: int
    atr_multiple: Decimal
    max_daily_drawdown_pct: Decimal
    kill_switch_on_drift: bool
    include_manual_positions: bool
    min_liquidity_24h_usd: Decimal
    max_notional_per_order_usd: Decimal | None
    max_position_per_symbol_usd: Decimal | None
    submit_rate: SubmitRate
    region_code: str
    shorting_allowed: bool
    margin_allowed: bool
    allowed_actions: tuple[tuple[str, tuple[str, ...]], ...]  # (trading state, actions)
    # Per group, "*" for every group not named (controls.exposure_groups).
    max_per_sector_pct: tuple[tuple[str, Decimal], ...] = ()
    max_per_asset_class_pct: tuple[tuple[str, Decimal], ...] = ()
    on_breach: str = "downsize"  # downsize | deny: what a size limit does to an order
    pending_ttl_s: Decimal = Decimal(300)  # how long an order since the snapshot counts
    modify_rate: SubmitRate = SubmitRate(100, Decimal(1))  # modifications per window
    # Exposure above 1× equity (controls/per_asset.py): max_per_asset_pct may pass 100
    # only when allowed, up to 100 × max_leverage.
    borrowing_allowed: bool = False
    max_leverage: Decimal = Decimal(1)
    # Per symbol, asset class or "*" (authority/instrument_rules.py), sorted by key.
    instruments: tuple[tuple[str, InstrumentRules], ...] = ()


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """One `instruments` entry of a LimitPolicy; None: the entry does not set it."""

    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional_usd: Decimal | None = None
    max_notional_usd: Decimal | None = None


def instrument_rules(
    entries: Mapping[str, Mapping[str, Any]],
) -> tuple[tuple[str, InstrumentRules], ...]:
    """The `instruments` section, frozen and sorted by key."""
    return tuple(
        (
            str(key),
            InstrumentRules(**{name: opt_dec(rules.get(name)) for name in INSTRUMENT_RULE_NAMES}),
        )
        for key, rules in sorted(entries.items())
    )


def build(spec: Mapping[str, Any]) -> LimitSpec:
    risk, sizing, kill, orders, region = (
        spec["risk"],
        spec["sizing"],
        spec["kill_switch"],
        spec["orders"],
        spec["region"],
    )
    return LimitSpec(
        max_risk_per_trade_pct=dec(risk["max_risk_per_trade_pct"]),
        max_portfolio_risk_pct=dec(risk["max_portfolio_risk_pct"]),
        max_open_positions=int(risk["max_open_positions"]),
        max_per_asset_pct=dec(risk["max_per_asset_pct"]),
        max_per_strategy_pct=dec_map(risk.get("max_per_strategy_pct", {})),
        volatility_lookback_bars=int(sizing["volatility_lookback_bars"]),
        atr_multiple=dec(sizing["atr_multiple"]),
        max_daily_drawdown_pct=dec(kill["max_daily_drawdown_pct"]),
        kill_switch_on_drift=bool(kill["on_drift"]),
        include_manual_positions=bool(spec["include_manual_positions"]),
        min_liquidity_24h_usd=dec(spec["liquidity"]["min_liquidity_24h_usd"]),
        max_notional_per_order_usd=opt_dec(orders.get("max_notional_per_order_usd")),
        max_position_per_symbol_usd=opt_dec(orders.get("max_position_per_symbol_usd")),
        submit_rate=parse_rate(orders["submit_rate"]),
        region_code=str(region.get("code", "")),
        shorting_allowed=bool(region["shorting_allowed"]),
        margin_allowed=bool(region["margin_allowed"]),
        allowed_actions=tuple(
            (state, strs(spec["trading_states"][state])) for state in TRADING_STATES
        ),
        max_per_sector_pct=dec_map(risk.get("max_per_sector_pct", {})),
        max_per_asset_class_pct=dec_map(risk.get("max_per_asset_class_pct", {})),
        on_breach=str(spec.get("on_breach", "downsize")),
        pending_ttl_s=dec(orders.get("pending_ttl_s", 300)),
        modify_rate=parse_rate(orders.get("modify_rate", "100/1s")),
        borrowing_allowed=bool(risk.get("borrowing", {}).get("allowed", False)),
        max_leverage=dec(risk.get("borrowing", {}).get("max_leverage", 1)),
        instruments=instrument_rules(spec.get("instruments", {})),
    )
