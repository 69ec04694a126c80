"""The bar-quality assessment's vocabulary: the bar, the calendar, an issue and its
severity, the configuration and the report — and the interval and time formats they are
written in.

Split from :mod:`quality` so that the checks (:mod:`quality_checks`), the memo
(:mod:`quality_memo`) and the assessment itself (:mod:`quality`) import these types from
one place below them all; callers import them from :mod:`quality`, which re-exports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

DAY_S = 86_400
WEEK_S = 7 * DAY_S


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar. ``timestamp`` is the bar's *open* time and must carry a time zone."""

    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None = None

    def __post_init__(self) -> None:
        if self.timestamp.utcoffset() is None:
            raise ValueError(f"bar timestamp {self.timestamp} has no time zone; attach one")
        for name in ("open", "high", "low", "close", "volume"):
            value = getattr(self, name)
            if value is None and name == "volume":
                continue
            if not isinstance(value, Decimal):
                raise TypeError(f"bar {name} must be a Decimal, got {value!r}")
            if not value.is_finite():
                raise ValueError(f"bar {name} is {value}; a bar holds finite numbers")


class Calendar(StrEnum):
    ALWAYS = "24x7"
    WEEKDAYS = "weekdays"


class Severity(StrEnum):
    ERROR = "error"  # the bar is wrong: the series is not usable
    WARNING = "warning"  # suspicious or missing data: lowers the score
    INFO = "info"  # worth knowing, does not change the score


@dataclass(frozen=True, slots=True)
class QualityIssue:
    row: int | None  # 0-based bar index; None for the series as a whole
    code: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class QualityConfig:
    outlier_z: float = 6.0  # robust z beyond which a return or a range is an outlier
    min_score_ratio: Decimal = Decimal("0.90")
    stale_after_s: float | None = None  # default: one bar interval after the bar closed
    min_returns_for_outliers: int = 10

    def __post_init__(self) -> None:
        if not self.outlier_z > 0 or not Decimal(0) <= self.min_score_ratio <= Decimal(1):
            raise ValueError(f"need outlier_z > 0 and 0 ≤ min_score_ratio ≤ 1, got {self}")
        if (self.stale_after_s is not None and self.stale_after_s < 0) or (
            self.min_returns_for_outliers < 3
        ):
            raise ValueError(f"need stale_after_s ≥ 0 and min_returns_for_outliers ≥ 3: {self}")


@dataclass(frozen=True, slots=True)
class QualityReport:
    bars: int
    issues: tuple[QualityIssue, ...]
    score_ratio: Decimal
    confidence_ratio: Decimal
    usable: bool
    interval_s: int | None
    interval_inferred: bool
    calendar: Calendar
    calendar_inferred: bool
    missing_bars: int
    stale: bool | None  # None: not checked (no `now`)
    age_s: float | None  # time since the last bar closed, on the calendar's clock
    skipped: tuple[str, ...] = field(default=())  # checks that could not run, and why

    def count(self, severity: Severity) -> int:
        return sum(1 for issue in self.issues if issue.severity is severity)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, enums as their values."""
        return {
            "bars": self.bars,
            "usable": self.usable,
            "score_ratio": str(self.score_ratio),
            "confidence_ratio": str(self.confidence_ratio),
            "interval_s": self.interval_s,
            "interval_inferred": self.interval_inferred,
            "calendar": self.calendar.value,
            "calendar_inferred": self.calendar_inferred,
            "missing_bars": self.missing_bars,
            "stale": self.stale,
            "age_s": self.age_s,
            "skipped": list(self.skipped),
            "issues": [
                {"row": i.row, "code": i.code, "severity": i.severity.value, "message": i.message}
                for i in self.issues
            ],
        }


_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": DAY_S, "w": WEEK_S}


def parse_interval(text: str) -> int:
    """'30s', '1m', '15min', '4h', '1d', '1w' → seconds. An upper-case M (a month on
    Binance, month-end in pandas) is refused rather than read as minutes."""
    match = _INTERVAL.match(text)
    if not match or int(match.group(1)) == 0 or match.group(2) == "M":
        raise ValueError(
            f"interval {text!r} is not like 30s, 1m, 15m, 4h, 1d or 1w (months are not supported)"
        )
    return int(match.group(1)) * _UNIT_S[match.group(2).lower()]


def format_duration(seconds: float) -> str:
    """86400 → '1d', 5400 → '1h30m', 42.5 → '42.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    parts, rest = [], round(seconds)
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def format_timestamp(stamp: datetime) -> str:
    """ISO 8601, shortened to the date for a bar stamped at UTC midnight (daily bars)."""
    if stamp.utcoffset() == timedelta(0) and stamp.time() == datetime.min.time():
        return stamp.date().isoformat()
    return stamp.isoformat()
