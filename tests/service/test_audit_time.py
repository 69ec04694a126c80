"""The time an audit record is written at: UTC, microseconds, a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.service.audit_plain import format_time

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), _ZONES)
def test_format_time_when_any_aware_time_then_the_strftime_text(
    naive: datetime, zone: timezone
) -> None:
    """The text is strftime's "%Y-%m-%dT%H:%M:%S.%fZ" of the UTC time, byte for byte
    (written without strftime), years below 1000 included."""
    at = naive.replace(tzinfo=zone)
    assert format_time(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_format_time_when_whole_second_then_six_zero_microseconds() -> None:
    """A whole second still has its six microsecond digits."""
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
