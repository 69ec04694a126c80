"""Data quality: each check on both sides of its threshold, the score, confidence, verdict."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest

from bastion.engine.indicators.quality import (
    Bar,
    Calendar,
    QualityConfig,
    QualityReport,
    Severity,
    assess_bars,
    format_duration,
    format_timestamp,
    parse_interval,
)

MONDAY = datetime(2024, 1, 8, tzinfo=UTC)
HOUR, DAY = 3600, 86_400


def make_bars(
    count: int = 40, *, start: datetime = MONDAY, step_s: int = HOUR, weekdays_only: bool = False
) -> list[Bar]:
    """A calm, valid series: close wiggles ±0.3 % deterministically, range about 1 %."""
    bars: list[Bar] = []
    stamp, close = start, Decimal(100)
    while len(bars) < count:
        if not (weekdays_only and stamp.weekday() >= 5):
            move = Decimal(str(round(0.003 * math.sin(len(bars) * 1.7), 6)))
            open_, close = close, (close * (1 + move)).quantize(Decimal("0.01"))
            high = max(open_, close) + Decimal("0.5")
            low = min(open_, close) - Decimal("0.5")
            bars.append(Bar(stamp, open_, high, low, close, Decimal(1000)))
        stamp += timedelta(seconds=step_s)
    return bars


def codes(report: QualityReport) -> list[tuple[int | None, str]]:
    return [(issue.row, issue.code) for issue in report.issues]


def test_assess_bars_when_clean_series_then_usable_with_full_score() -> None:
    """No issues: score 1, full confidence with `now`, usable."""
    bars = make_bars()
    report = assess_bars(bars, now=bars[-1].timestamp + timedelta(hours=1, minutes=30))
    assert report.issues == () and report.usable
    assert report.score_ratio == Decimal("1.0000") and report.confidence_ratio == Decimal("1.0000")
    assert report.interval_s == HOUR and report.interval_inferred and report.stale is False


@pytest.mark.parametrize(
    ("high", "flagged"), [("101.00", False), ("100.99", True)], ids=["at-close", "one-tick-below"]
)
def test_assess_bars_when_high_around_close_then_flagged_only_below(
    high: str, flagged: bool
) -> None:
    """high ≥ max(open, close): equal is fine, one tick below is an error."""
    bars = make_bars()
    bars[5] = Bar(bars[5].timestamp, Decimal(100), Decimal(high), Decimal(99), Decimal(101))
    report = assess_bars(bars)
    assert ((5, "high_inconsistent") in codes(report)) is flagged
    assert report.usable is not flagged


@pytest.mark.parametrize(("low", "flagged"), [("99.00", False), ("99.01", True)])
def test_assess_bars_when_low_around_open_then_flagged_only_above(low: str, flagged: bool) -> None:
    """low ≤ min(open, close): equal is fine, one tick above is an error."""
    bars = make_bars()
    bars[5] = Bar(bars[5].timestamp, Decimal(99), Decimal(101), Decimal(low), Decimal(100))
    assert ((5, "low_inconsistent") in codes(assess_bars(bars))) is flagged


def test_assess_bars_when_price_zero_then_error_names_the_field() -> None:
    """Prices must be positive."""
    bars = make_bars()
    bars[3] = replace(bars[3], low=Decimal(0))
    report = assess_bars(bars)
    issue = next(i for i in report.issues if i.code == "non_positive_price")
    assert issue.row == 3 and "low 0" in issue.message and not report.usable


def test_assess_bars_when_volume_negative_or_zero_then_error_or_info() -> None:
    """Negative volume is an error; zero volume is only information."""
    bars = make_bars()
    bars[2] = replace(bars[2], volume=Decimal(-1))
    bars[4] = replace(bars[4], volume=Decimal(0))
    report = assess_bars(bars)
    severities = {i.code: i.severity for i in report.issues}
    assert severities == {"negative_volume": Severity.ERROR, "zero_volume": Severity.INFO}


def test_assess_bars_when_timestamp_repeats_or_goes_back_then_errors() -> None:
    """Duplicates and out-of-order rows make the series unusable."""
    bars = make_bars(10)
    bars[4] = replace(bars[4], timestamp=bars[3].timestamp)
    bars[7], bars[8] = bars[8], bars[7]
    report = assess_bars(bars, interval_s=HOUR)
    assert (4, "duplicate_timestamp") in codes(report)
    assert (8, "out_of_order") in codes(report)
    assert not report.usable


def test_assess_bars_when_file_is_newest_first_then_one_error_saying_reverse() -> None:
    """A reversed export is one clear error, not one per row."""
    report = assess_bars(make_bars(10)[::-1])
    assert (
        codes(report) == [(None, "newest_first")] and "reverse the rows" in report.issues[0].message
    )
    assert not report.usable


def test_assess_bars_when_one_hour_missing_on_24x7_then_gap_and_completeness() -> None:
    """One bar missing: a warning, and the score is 40 present of 41 expected."""
    bars = make_bars(41)
    del bars[20]
    report = assess_bars(bars, interval_s=HOUR, calendar=Calendar.ALWAYS)
    assert codes(report) == [(20, "gap")] and report.missing_bars == 1
    assert report.score_ratio == Decimal("0.9756") and report.usable


def test_assess_bars_when_daily_weekdays_then_weekend_is_not_a_gap_but_monday_holiday_is() -> None:
    """Fri → Mon is one step on the weekday clock; Fri → Tue is one missing bar."""
    bars = make_bars(30, step_s=DAY, weekdays_only=True)
    report = assess_bars(bars)
    assert report.calendar is Calendar.WEEKDAYS and report.calendar_inferred
    assert report.issues == () and report.interval_s == DAY
    holiday = next(i for i, bar in enumerate(bars) if i > 5 and bar.timestamp.weekday() == 0)
    del bars[holiday]
    report = assess_bars(bars)
    assert codes(report) == [(holiday, "gap")] and report.missing_bars == 1


def test_assess_bars_when_weekend_bars_present_then_calendar_inferred_24x7() -> None:
    """Crypto daily bars trade on weekends: the 24x7 clock is inferred."""
    report = assess_bars(make_bars(30, step_s=DAY))
    assert report.calendar is Calendar.ALWAYS and report.issues == ()


def test_assess_bars_when_intraday_weekdays_then_overnight_break_is_not_a_gap() -> None:
    """Two 09:30–15:30 sessions: the night between is no gap; a missing hour is."""
    day_one = make_bars(7, start=datetime(2024, 1, 8, 14, 30, tzinfo=UTC))
    day_two = make_bars(7, start=datetime(2024, 1, 9, 14, 30, tzinfo=UTC))
    bars = day_one + day_two
    assert assess_bars(bars, interval_s=HOUR).issues == ()
    del bars[10]
    assert codes(assess_bars(bars, interval_s=HOUR)) == [(10, "gap")]


def test_assess_bars_when_bar_arrives_early_then_short_interval_warning() -> None:
    """A bar 10 minutes after the previous one in an hourly series is flagged."""
    bars = make_bars(20)
    bars.insert(6, replace(bars[5], timestamp=bars[5].timestamp + timedelta(minutes=10)))
    report = assess_bars(bars, interval_s=HOUR)
    assert (6, "short_interval") in codes(report)


def test_assess_bars_when_one_bad_print_then_spike_not_two_jumps() -> None:
    """A close 20 % off for one bar, then back: one spike at that row."""
    bars = make_bars()
    bad = bars[15]
    bars[15] = Bar(
        bad.timestamp, bad.open, bad.high * Decimal("1.2"), bad.low, bad.close * Decimal("1.2")
    )
    bars[16] = replace(bars[16], open=bars[16].open, high=bars[15].close)
    report = assess_bars(bars)
    outliers = [(r, c) for r, c in codes(report) if c in ("spike", "jump")]
    assert outliers == [(15, "spike")]


def test_assess_bars_when_level_shifts_for_good_then_jump() -> None:
    """An unadjusted 2:1 split halves every later price: a jump, not a spike."""
    bars = make_bars()
    half = Decimal("0.5")
    bars[20:] = [
        Bar(b.timestamp, b.open * half, b.high * half, b.low * half, b.close * half)
        for b in bars[20:]
    ]
    bars[20] = replace(bars[20], open=bars[19].close, high=bars[19].close)
    report = assess_bars(bars)
    assert (20, "jump") in codes(report) and report.usable


def test_assess_bars_when_wick_prints_far_away_then_range_outlier() -> None:
    """A high 15 % above an otherwise 1 % range is a bad tick candidate."""
    bars = make_bars()
    bars[12] = replace(bars[12], high=bars[12].high * Decimal("1.15"))
    assert (12, "range_outlier") in codes(assess_bars(bars))


def test_assess_bars_when_outlier_z_raised_then_same_wick_passes() -> None:
    """The outlier threshold is the policy's to choose."""
    bars = make_bars()
    bars[12] = replace(bars[12], high=bars[12].high * Decimal("1.15"))
    report = assess_bars(bars, config=QualityConfig(outlier_z=1000))
    assert report.issues == ()


def test_assess_bars_when_too_few_returns_then_outliers_skipped_and_confidence_lower() -> None:
    """Five bars cannot support robust statistics; the report says so."""
    bars = make_bars(5)
    report = assess_bars(bars, now=bars[-1].timestamp + timedelta(hours=1))
    assert any(reason.startswith("outliers:") for reason in report.skipped)
    assert report.confidence_ratio == Decimal("0.8000")  # (1 + 1 + 4/20 + 1) / 4
    assert report.usable


def test_assess_bars_when_closes_never_move_then_outlier_check_says_why() -> None:
    """No spread in returns: no z-scores, a skipped note instead of a division by zero."""
    stamp = MONDAY
    bars = [Bar(stamp + timedelta(hours=i), *(Decimal(5),) * 4) for i in range(20)]
    report = assess_bars(bars)
    assert any("no spread" in reason for reason in report.skipped) and report.usable


@pytest.mark.parametrize(("extra_s", "stale"), [(0, False), (1, True)])
def test_assess_bars_when_age_at_or_past_limit_then_stale_only_past_it(
    extra_s: int, stale: bool
) -> None:
    """Stale means the last bar closed more than one interval before now."""
    bars = make_bars()
    closed_at = bars[-1].timestamp + timedelta(hours=1)
    report = assess_bars(bars, now=closed_at + timedelta(seconds=HOUR + extra_s))
    assert report.stale is stale and report.usable is not stale
    assert report.age_s == HOUR + extra_s


def test_assess_bars_when_stale_after_configured_then_it_wins() -> None:
    """stale_after_s overrides the one-interval default."""
    bars = make_bars()
    now = bars[-1].timestamp + timedelta(hours=1, seconds=90)
    report = assess_bars(bars, now=now, config=QualityConfig(stale_after_s=60))
    assert report.stale and codes(report) == [(len(bars) - 1, "stale")]


def test_assess_bars_when_friday_bar_checked_on_monday_morning_then_fresh_on_weekdays() -> None:
    """On the weekday clock the weekend does not age a Friday daily bar."""
    bars = make_bars(20, step_s=DAY, weekdays_only=True)
    assert bars[-1].timestamp.weekday() == 4
    monday_morning = bars[-1].timestamp + timedelta(days=3, hours=9)
    report = assess_bars(bars, now=monday_morning)
    assert report.stale is False and report.age_s == 9 * HOUR


def test_assess_bars_when_last_bar_in_the_future_then_error() -> None:
    """A bar after `now` means clock skew or a wrong zone in the data."""
    bars = make_bars()
    report = assess_bars(bars, now=bars[-1].timestamp - timedelta(minutes=1))
    assert codes(report) == [(len(bars) - 1, "future_timestamp")] and not report.usable


def test_assess_bars_when_empty_then_unusable_with_series_issue() -> None:
    """Nothing to assess is unusable, not an exception."""
    report = assess_bars([])
    assert codes(report) == [(None, "empty")] and not report.usable
    assert report.score_ratio == 0


def test_assess_bars_when_score_equals_minimum_then_usable_and_one_below_not() -> None:
    """min_score_ratio is inclusive; the score rounds down, never up."""
    bars = make_bars(41)
    del bars[20]  # score 40/41 = 0.97560… → 0.9756
    assert assess_bars(bars, config=QualityConfig(min_score_ratio=Decimal("0.9756"))).usable
    assert not assess_bars(bars, config=QualityConfig(min_score_ratio=Decimal("0.9757"))).usable


def test_assess_bars_when_caller_decimal_context_is_coarse_then_score_unchanged() -> None:
    """The score does not depend on the caller's decimal context."""
    bars = make_bars(41)
    del bars[20]
    expected = assess_bars(bars).score_ratio
    with localcontext() as context:
        context.prec = 2
        assert assess_bars(bars).score_ratio == expected


def test_report_to_dict_when_dumped_then_plain_json() -> None:
    """The JSON form has strings for ratios and values for enums."""
    bars = make_bars()
    bars[3] = replace(bars[3], volume=Decimal(0))
    document = json.loads(json.dumps(assess_bars(bars).to_dict()))
    assert document["score_ratio"] == "1.0000" and document["calendar"] == "weekdays"
    assert document["issues"][0] == {
        "row": 3,
        "code": "zero_volume",
        "severity": "info",
        "message": "volume is 0",
    }


def test_bar_when_naive_timestamp_or_float_price_then_refused() -> None:
    """Bars carry a zone and Decimal prices."""
    with pytest.raises(ValueError, match="time zone"):
        Bar(datetime(2024, 1, 1), Decimal(1), Decimal(1), Decimal(1), Decimal(1))
    with pytest.raises(TypeError, match="Decimal"):
        Bar(MONDAY, Decimal(1), 1.5, Decimal(1), Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        Bar(MONDAY, Decimal(1), Decimal("NaN"), Decimal(1), Decimal(1))


@pytest.mark.parametrize(
    "settings",
    [{"outlier_z": 0}, {"min_score_ratio": Decimal("1.01")}, {"stale_after_s": -1}],
)
def test_quality_config_when_out_of_range_then_value_error(settings: dict[str, object]) -> None:
    """A configuration that cannot mean anything is refused up front."""
    with pytest.raises(ValueError, match="need"):
        QualityConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("15min", 900), ("4h", 14_400), ("1d", DAY), ("1W", 7 * DAY)],
)
def test_parse_interval_when_common_forms_then_seconds(text: str, seconds: int) -> None:
    """m is minutes; units in any case."""
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "1M", "d", "1.5h"])
def test_parse_interval_when_unknown_form_then_value_error(text: str) -> None:
    """Months, zero and fractions are refused with the accepted forms."""
    with pytest.raises(ValueError, match="like 30s, 1m"):
        parse_interval(text)


def test_format_helpers_when_durations_and_stamps_then_short_readable_text() -> None:
    """86400 → 1d; a midnight-UTC stamp prints as its date."""
    assert (format_duration(86_400), format_duration(5400), format_duration(42.5)) == (
        "1d",
        "1h30m",
        "42.5s",
    )
    assert format_timestamp(MONDAY) == "2024-01-08"
    assert format_timestamp(MONDAY + timedelta(hours=1)) == "2024-01-08T01:00:00+00:00"
