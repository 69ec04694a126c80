"""Equity sessions from exchange_calendars: weekends, holidays, half days (issue #12)."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from bastion.adapters import market_calendar
from bastion.adapters.builder import BuilderState, Poll, SnapshotBuilder
from bastion.adapters.market_calendar import SessionClock, check_calendar
from bastion.adapters.sources.base import Quote
from bastion.engine.indicators.quality import Bar
from tests.adapters.test_builder import ACCOUNT, CALM, TINY

# NYSE, Thanksgiving week 2024: Thu 28 Nov closed, Fri 29 Nov closes early at 13:00 ET.
WED_CLOSE = datetime(2024, 11, 27, 21, 0, tzinfo=UTC)
FRI_EARLY_CLOSE = datetime(2024, 11, 29, 18, 0, tzinfo=UTC)
MON_OPEN = datetime(2024, 12, 2, 14, 30, tzinfo=UTC)
SUNDAY = datetime(2024, 12, 1, 12, 0, tzinfo=UTC)


def daily(day: int, month: int = 11) -> Bar:
    """A daily bar stamped at midnight New York (05:00 UTC), as Alpaca stamps them."""
    stamp = datetime(2024, month, day, 5, 0, tzinfo=UTC)
    return Bar(stamp, Decimal(100), Decimal(101), Decimal(99), Decimal(100), Decimal(1000))


def test_open_seconds_when_weekend_and_holiday_between_then_only_the_half_day_counts() -> None:
    """Wed close → Mon open spans Thanksgiving, a 3.5 h half day and a weekend."""
    clock = SessionClock("XNYS")
    assert clock.open_seconds(WED_CLOSE, MON_OPEN) == 3.5 * 3600
    assert clock.open_seconds(FRI_EARLY_CLOSE, MON_OPEN) == 0


def test_session_time_when_daily_bars_skip_a_holiday_then_they_are_consecutive() -> None:
    """Tue, Wed, (Thanksgiving), Fri: one day apart on the session clock, none missing."""
    bars = [daily(26), daily(27), daily(29)]
    restamped, now = SessionClock("XNYS").session_time(bars, 86_400, SUNDAY)
    gaps = {later.timestamp - earlier.timestamp for earlier, later in pairwise(restamped)}
    assert gaps == {timedelta(days=1)}
    assert now == restamped[-1].timestamp + timedelta(days=1)  # Friday's bar: not stale


def test_build_when_equity_calendar_and_weekend_then_friday_close_is_fresh() -> None:
    """On Sunday, data from the Friday close is 0 s old in open-market time."""
    config = replace(TINY, market_calendar="XNYS", bar_interval_s=86_400, atr_interval_s=86_400)
    bars = [daily(d) for d in (20, 21, 22, 25, 26, 27, 29)]
    quote = Quote("SPY", Decimal("99.9"), Decimal("100.1"), FRI_EARLY_CLOSE, Decimal(100))
    poll = Poll((ACCOUNT,), (), {"SPY": bars}, {"SPY": quote})
    result = SnapshotBuilder(config).build(poll, now=SUNDAY, state=BuilderState(), regime=CALM)
    market = result.snapshot.market["SPY"]
    assert market.data_age_s == 0
    without = SnapshotBuilder(replace(config, market_calendar=None)).build(
        poll, now=SUNDAY, state=BuilderState(), regime=CALM
    )
    assert without.snapshot.market["SPY"].data_age_s > 100_000  # the 24/7 clock: two days
    assert market.quality_score_ratio >= without.snapshot.market["SPY"].quality_score_ratio


def test_calendar_when_loaded_then_nothing_goes_on_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exchange_calendars computes sessions from bundled rules: no socket is opened."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("exchange_calendars tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    market_calendar._calendar.cache_clear()
    assert SessionClock("XLON").open_seconds(WED_CLOSE, MON_OPEN) > 0


def test_check_calendar_when_unknown_then_value_error_names_it() -> None:
    """A misspelt calendar is refused with examples of real ones."""
    with pytest.raises(ValueError, match=r"'NYSEX'.*XNYS"):
        check_calendar("NYSEX")
