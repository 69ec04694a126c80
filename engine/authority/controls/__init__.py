"""The order controls, one module each, and the registry that lists them in check order.

`can_execute` checks the protections in the ProtectionPolicy's `hierarchy` (looked up
here by name), then the trading state, then the limits in `LIMITS` order: the limits
that block outright first, then the size limits (an order may be made smaller to meet
them). `rules.compile_authority` asks the same controls for their rules.

Adding a control: one module with one instance of a `Limit` or `Protection` subclass
(`base`), registered below, and its golden cases.
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.engine.authority.controls import (
    breaker_size,
    core_asset_immunity,
    expiry,
    exposure_groups,
    grace_period,
    holding_period,
    instrument_lot,
    instrument_notional,
    instrument_price,
    instrument_quantity,
    kill_drawdown,
    kill_drift,
    liquidity,
    margin,
    modify_rate,
    open_positions,
    order_notional,
    per_asset,
    per_strategy,
    portfolio_risk,
    reduce_only,
    regime_override,
    shorting,
    size_increment,
    submit_rate,
    symbol_position,
    trade_risk,
    trading_state,
    whipsaw_protection,
)
from bastion.engine.authority.controls.base import Limit, Protection

# By the name the ProtectionPolicy's `hierarchy` gives them (the policy orders them).
PROTECTIONS: Mapping[str, Protection] = {
    control.id: control
    for control in (
        core_asset_immunity.CONTROL,
        regime_override.CONTROL,
        grace_period.CONTROL,
        holding_period.CONTROL,
        whipsaw_protection.CONTROL,
    )
}
OVERRIDE: regime_override.RegimeOverride = regime_override.CONTROL
# Checked before every limit, with or without a LimitPolicy, never in shadow mode.
TRADING_STATE: trading_state.TradingState = trading_state.CONTROL
# Set by the tripped reduce_size breakers: a size limit on every order that adds exposure
# in their subjects, with or without a LimitPolicy, never in shadow mode.
BREAKER_SIZE: breaker_size.BreakerSize = breaker_size.CONTROL
# In check order: the limits that block outright, then the size limits.
LIMITS: tuple[Limit, ...] = (
    kill_drawdown.CONTROL,
    kill_drift.CONTROL,
    expiry.CONTROL,
    reduce_only.CONTROL,
    instrument_price.CONTROL,
    shorting.CONTROL,
    liquidity.CONTROL,
    open_positions.CONTROL,
    submit_rate.CONTROL,
    modify_rate.CONTROL,
    instrument_quantity.MIN,
    instrument_notional.MIN,
    trade_risk.CONTROL,
    portfolio_risk.CONTROL,
    per_asset.CONTROL,
    per_strategy.CONTROL,
    exposure_groups.SECTOR,
    exposure_groups.ASSET_CLASS,
    order_notional.CONTROL,
    instrument_notional.MAX,
    instrument_quantity.MAX,
    symbol_position.CONTROL,
    margin.CONTROL,
    size_increment.CONTROL,
    instrument_lot.CONTROL,
)

__all__ = [
    "BREAKER_SIZE",
    "LIMITS",
    "OVERRIDE",
    "PROTECTIONS",
    "TRADING_STATE",
    "Limit",
    "Protection",
]
