"""The scale a number is read against: its unit (from the name) and the shipped default.

A unit slip writes a fraction where the unit is per cent (0.03 for 3 %), basis points
(0.005 for 50 bps) or ATRs (0.02, "2 % of the price", for 2 ATR). Such a value is below
1 and about 100× (for bps 10,000×) below the value people usually write there. The
usual value is the shipped default (policies/*.yaml), kept in the *_REFERENCE tables
below: the package does not ship policies/, and tests/lint/test_units.py keeps the
tables equal to the shipped files.

A value is reported when it is below 1 and more than 10^(k/2 + 1/2) times below the
reference, k being the unit's factor in orders of magnitude (2 for per cent): for
per cent that is 31.6× below the reference, the geometric middle between a deliberate
tenth and the slip's hundredth. 0.5 against the 5 % daily loss default passes (a
tight but plausible half per cent), 0.15 against it is reported, and so is 0.15
against the 15 % drawdown default (freqtrade's `max_allowed_drawdown: 0.15`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bastion.engine.policy.metrics import METRICS


@dataclass(frozen=True, slots=True)
class Unit:
    name: str  # for messages: "per cent"
    symbol: str  # after a number: "3 %", "50 bps", "2 ATR"
    factor: int  # how many of this unit make the whole a fraction would mean


PER_CENT = Unit("per cent", "%", 100)
BASIS_POINTS = Unit("basis points", "bps", 10_000)
ATRS = Unit("ATRs", "ATR", 100)  # the slip: a per-cent move written as a fraction


def unit_of(name: str) -> Unit | None:
    """The unit a metric or field name declares by its suffix, when a slip is possible."""
    if name.endswith("_pct"):
        return PER_CENT
    if name.endswith("_bps"):
        return BASIS_POINTS
    if name.endswith("_atr") or name == "atr_multiple":
        return ATRS
    return None


_D = Decimal
# Metric -> the threshold the shipped default-breakers (policies/breakers.yaml) gives it;
# position.breach_atr: the shipped escalation's first level above normal.
METRIC_REFERENCE: dict[str, Decimal] = {
    "portfolio.loss_pct": _D(5),
    "position.loss_pct": _D(10),
    "system.error_rate_pct": _D(10),
    "market.liquidity_drop_pct": _D(50),
    "market.correlation_drop_pct": _D(30),
    "account.daily_loss_pct": _D(5),
    "account.drawdown_pct": _D(15),
    "orders.slippage_bps": _D(50),
    "position.breach_atr": _D(1),
}
# Escalation level (policies/escalation.yaml) -> its breach_atr; `normal` is always 0.
LEVEL_REFERENCE: dict[str, Decimal] = {
    "enhanced": _D(1),
    "recovery": _D(2),
    "preservation": _D(3),
}
# Fields in ATRs (policies/escalation.yaml, policies/limits.yaml) -> their shipped value.
FIELD_REFERENCE: dict[str, Decimal] = {
    "hysteresis_atr": _D("0.25"),
    "atr_multiple": _D(2),
}


def fallback(unit: Unit) -> Decimal | None:
    """A metric with no shipped threshold is read against the smallest shipped
    reference of its unit: the most lenient choice (fewest reports)."""
    same = [
        value
        for name, value in METRIC_REFERENCE.items()
        if unit_of(name) == unit and name in METRICS
    ]
    return min(same) if same else None


@dataclass(frozen=True, slots=True)
class Scale:
    unit: Unit
    reference: Decimal
    shipped: bool  # False: the fallback, no shipped value for this very name

    def describe(self) -> str:
        if self.shipped:
            return f"the shipped default of {plain(self.reference)}"
        return f"{plain(self.reference)}, the smallest shipped threshold in {self.unit.name}"


def metric_scale(metric: str) -> Scale | None:
    """How numbers compared with `metric` are read, or None (no slip possible)."""
    unit = unit_of(metric)
    if unit is None:
        return None
    if metric in METRIC_REFERENCE:
        return Scale(unit, METRIC_REFERENCE[metric], shipped=True)
    reference = fallback(unit)
    return None if reference is None else Scale(unit, reference, shipped=False)


def is_slip(value: Decimal, unit: Unit, reference: Decimal) -> bool:
    """Below 1 and nearer (by more than a factor of ten) to reference / factor than to
    the reference: see the module docstring."""
    if not 0 < value < 1 or reference <= 0:
        return False
    return value * value * unit.factor * 10 <= reference * reference


def plain(number: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 3, 0.03, 50."""
    return format(number.normalize(), "f")


def slip_phrase(value: Decimal, unit: Unit) -> str:
    """'3 % is written 3; 0.03 means 0.03 %'."""
    meant = plain(value * unit.factor)
    written = plain(value)
    return f"{meant} {unit.symbol} is written {meant}; {written} means {written} {unit.symbol}"


def times_below(value: Decimal, reference: Decimal) -> str:
    return f"{(reference / value):,.0f}×"
