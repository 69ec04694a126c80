"""The words a policy may use. Schemas enumerate them; lint suggests the nearest one."""

from __future__ import annotations

API_VERSION = "bastion/v1"

# Escalation levels in order of severity; a level's index is its number (0..3).
ESCALATION_LEVELS = ("normal", "enhanced", "recovery", "preservation")
ESCALATION_ACTIONS = (
    "monitor",
    "roll",
    "stop_loss",
    "hedge",
    "reduce_size",
    "halt_new_positions",
    "emergency_exit",
)
ATR_METHODS = ("wilder", "sma", "ema")
BREACH_REFERENCES = ("entry_price", "previous_close")

ROLL_URGENCIES = ("emergency", "high", "medium", "low")

BREAKER_ACTIONS = (
    "halt_all",
    "halt_symbol",
    "reduce_only",
    "close_risky",
    "close_position",  # position scope: close that position only; the account stays as it is
    "reduce_size",
    "alert",
    "diagnostics",
)
BREAKER_SCOPES = ("portfolio", "account", "strategy", "symbol", "position", "system")
BREAKER_RESETS = ("auto", "manual")
SEVERITIES = ("info", "warning", "critical", "emergency")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")

PROTECTIONS = (
    "core_asset_immunity",
    "regime_override",
    "grace_period",
    "holding_period",
    "whipsaw_protection",
)
# The protections a regime override can ever bypass (core assets are never bypassed).
BYPASSABLE_PROTECTIONS = ("grace_period", "holding_period", "whipsaw_protection")
REGIME_SEVERITIES = ("low", "medium", "high", "critical")

# Protections over the closed-trade history (ProtectionPolicy `history:`; freqtrade's
# StoplossGuard, CooldownPeriod, LowProfitPairs, MaxDrawdown) and what a lock covers.
HISTORY_METHODS = ("stoploss_guard", "cooldown", "low_profit", "max_drawdown")
HISTORY_SCOPES = ("symbol", "side", "strategy", "account")
HISTORY_ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
# The exits a stop-loss guard counts (freqtrade: stop_loss, trailing / on-exchange
# stops and liquidation; the snapshot's trade has stop_loss and liquidation).
STOP_EXITS = ("stop_loss", "liquidation")
EXIT_REASONS = ("stop_loss", "take_profit", "signal", "manual", "liquidation")

ORDER_ACTIONS = ("open", "close", "increase", "decrease", "cancel", "modify")
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
ACCOUNT_TYPES = ("gen", "rev", "com")

POLICY_MODES = ("enforce", "shadow")
