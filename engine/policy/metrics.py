"""The catalogue of snapshot metrics a breaker or a `when` rule may compare.

Each metric names its unit in its name and declares the range its values can
take; lint uses the range to find breakers that can never or always fire. The
engine computes every metric listed here from a Snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

INFINITY = Decimal("Infinity")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    scope: str  # the subject the value is measured for (see vocabulary.BREAKER_SCOPES)
    description: str
    minimum: Decimal = Decimal(0)
    maximum: Decimal = INFINITY
    integer: bool = False


def _metric(name: str, scope: str, description: str, **bounds: object) -> Metric:
    return Metric(name, scope, description, **bounds)  # type: ignore[arg-type]


_PCT = {"maximum": Decimal(100)}
_RATIO = {"maximum": Decimal(1)}

METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        _metric(
            "portfolio.loss_pct",
            "portfolio",
            "Loss of the whole portfolio since the day start, % of day-start equity.",
            **_PCT,
        ),
        _metric(
            "portfolio.drawdown_pct",
            "portfolio",
            "Fall of portfolio equity from its peak, % of peak equity.",
            **_PCT,
        ),
        _metric(
            "account.daily_loss_usd",
            "account",
            "Loss since the day start in USD (0 when the account is up).",
        ),
        _metric(
            "account.daily_loss_pct",
            "account",
            "Loss since the day start, % of day-start equity.",
            **_PCT,
        ),
        _metric(
            "account.drawdown_pct",
            "account",
            "Fall of account equity from its peak, % of peak equity.",
            **_PCT,
        ),
        _metric(
            "position.loss_pct",
            "position",
            "Unrealised loss of a position, % of its entry value (0 when in profit).",
            **_PCT,
        ),
        _metric(
            "position.unrealized_profit_pct",
            "position",
            "Unrealised profit of a position, % of its entry value (0 when at a loss); a "
            "take-profit (LEAN MaximumUnrealizedProfitPercentPerSecurity).",
        ),
        _metric(
            "position.drawdown_from_high_pct",
            "position",
            "Fall of the price from the best price since the position was opened (the "
            "high-water mark; the lowest price for a short, which it measures the rise "
            "from), % of that price; a trailing stop (LEAN TrailingStopRiskManagementModel).",
            **_PCT,
        ),
        _metric(
            "position.breach_atr",
            "position",
            "Adverse move from the reference price, in ATRs (0 when favourable).",
        ),
        _metric(
            "market.volatility_multiple",
            "symbol",
            "Current volatility as a multiple of its normal level (2 = twice normal).",
        ),
        _metric(
            "market.volume_multiple",
            "symbol",
            "Current volume as a multiple of average volume.",
        ),
        _metric(
            "market.liquidity_drop_pct",
            "symbol",
            "Fall of liquidity from its normal level, % of normal.",
            **_PCT,
        ),
        _metric(
            "market.correlation_drop_pct",
            "symbol",
            "Fall of correlation from its normal level, % of normal.",
            **_PCT,
        ),
        _metric(
            "market.spread_bps",
            "symbol",
            "Bid/ask spread in basis points of the mid price.",
        ),
        _metric(
            "market.data_age_s",
            "symbol",
            "Age of the newest market data for the symbol, in seconds.",
        ),
        _metric(
            "market.quality_score_ratio",
            "symbol",
            "Data-quality score of the symbol's recent bars, 0 (unusable) to 1.",
            **_RATIO,
        ),
        _metric(
            "system.error_rate_pct",
            "system",
            "Share of failed calls to venues and data sources, in per cent.",
            **_PCT,
        ),
        _metric(
            "system.data_age_s",
            "system",
            "Age of the oldest input the evaluation depends on, in seconds.",
        ),
        _metric(
            "system.connectivity_ratio",
            "system",
            "Share of venues and data sources reachable, 0 to 1.",
            **_RATIO,
        ),
        _metric(
            "orders.per_minute",
            "account",
            "Orders submitted in the last 60 seconds.",
            integer=True,
        ),
        _metric(
            "orders.slippage_bps",
            "account",
            "Average slippage of recent fills against the expected price, in bps.",
        ),
        _metric(
            "orders.consecutive_losses",
            "strategy",
            "Losing trades in a row.",
            integer=True,
        ),
        _metric(
            "regime.severity_level",
            "system",
            "Severity of the current market regime: 0 low, 1 medium, 2 high, 3 critical.",
            maximum=Decimal(3),
            integer=True,
        ),
    )
}

# The metric subjects a fact of each scope carries: its own, and the coarser
# subjects it belongs to (a position sees its symbol's market data, its account,
# its strategy, the portfolio and the system).
VISIBLE_SCOPES: dict[str, frozenset[str]] = {
    "position": frozenset({"position", "symbol", "account", "strategy", "portfolio", "system"}),
    "symbol": frozenset({"symbol", "portfolio", "system"}),
    "account": frozenset({"account", "portfolio", "system"}),
    "strategy": frozenset({"strategy", "portfolio", "system"}),
    "portfolio": frozenset({"portfolio", "system"}),
    "system": frozenset({"system", "portfolio"}),
}
