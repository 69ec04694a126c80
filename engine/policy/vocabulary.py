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

ORDER_ACTIONS = ("open", "close", "increase", "decrease", "cancel")
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
ACCOUNT_TYPES = ("gen", "rev", "com")

POLICY_MODES = ("enforce", "shadow")
