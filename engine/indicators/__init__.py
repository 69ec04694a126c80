"""Market-data indicators: ATR, option greeks, data quality. Pure: no I/O, no clock.

The modules hold the conventions and units in their docstrings; this package re-exports
what callers need::

    from bastion.engine.indicators import AtrSpec, atr_bars, assess_bars, bsm_greeks
"""

from __future__ import annotations

from bastion.engine.indicators.atr import (
    AtrMethod,
    AtrSeed,
    AtrSpec,
    AtrUpdater,
    FloatAtrUpdater,
    atr,
    atr_bars,
    atr_float,
    true_range,
)
from bastion.engine.indicators.greeks import (
    Greeks,
    GreeksArray,
    ImpliedVolatilityError,
    OptionType,
    bsm_greeks,
    bsm_greeks_array,
    bsm_price,
    implied_volatility,
)
from bastion.engine.indicators.quality import (
    Bar,
    Calendar,
    QualityConfig,
    QualityIssue,
    QualityReport,
    Severity,
    assess_bars,
    parse_interval,
)

__all__ = [
    "AtrMethod",
    "AtrSeed",
    "AtrSpec",
    "AtrUpdater",
    "Bar",
    "Calendar",
    "FloatAtrUpdater",
    "Greeks",
    "GreeksArray",
    "ImpliedVolatilityError",
    "OptionType",
    "QualityConfig",
    "QualityIssue",
    "QualityReport",
    "Severity",
    "assess_bars",
    "atr",
    "atr_bars",
    "atr_float",
    "bsm_greeks",
    "bsm_greeks_array",
    "bsm_price",
    "implied_volatility",
    "parse_interval",
    "true_range",
]
