"""ReturnsMemo: log returns of windows sliding over a series are the very same floats."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random

import pytest

from bastion.adapters import market_metrics
from bastion.adapters.market_metrics import (
    ReturnsMemo,
    Windows,
    correlation,
    log_returns,
    split,
    volatility,
)
from bastion.engine.indicators.quality import Bar

START = datetime(2024, 1, 1, tzinfo=UTC)
WINDOWS = Windows(recent_bars=5, correlation_bars=20, baseline_bars=20, min_correlation_points=10)


def _bars(count: int, seed: int) -> list[Bar]:
    """A random walk of daily bars with prices of many digits."""
    rng = Random(seed)
    bars, close = [], Decimal("50.123456789")
    for index in range(count):
        open_ = close
        close = open_ * Decimal(str(1 + rng.uniform(-0.04, 0.04)))
        high, low = max(open_, close) * Decimal("1.01"), min(open_, close) * Decimal("0.99")
        bars.append(Bar(START + timedelta(days=index), open_, high, low, close, Decimal(100)))
    return bars


def _items(returns: dict[datetime, float]) -> list[tuple[datetime, float]]:
    return list(returns.items())  # the order counts: volatility reads the values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_log_returns_when_window_slides_with_memo_then_same_as_without(seed: int) -> None:
    """A 41-bar window sliding, then jumping, shrinking, reversed, with a bar revised (a
    new object) and a repeated stamp: every sub-window's returns, and the volatility and
    correlation from them, equal those worked out without a memo."""
    bars, benchmark = _bars(120, seed), _bars(120, seed + 100)
    revised = list(bars[60:101])
    revised[7] = replace(revised[7], close=revised[7].close * 2)
    twin = list(bars[61:102])
    twin[9] = replace(twin[9], timestamp=twin[8].timestamp)
    series = [bars[end - 41 : end] for end in range(41, 100)]
    series += [bars[70:111], bars[72:80], bars[:1], [], revised, twin, bars[62:103]]
    memo = ReturnsMemo()
    for window in series:
        recent, baseline = split(window, WINDOWS, WINDOWS.recent_bars)
        for part in (window, recent, baseline, window[-21:], list(reversed(window))):
            assert _items(log_returns(part, memo)) == _items(log_returns(part))
        for need in (5, 19, 40):
            with_memo = volatility(window, 86_400, 3.1e7, need=need, memo=memo)
            assert with_memo == volatility(window, 86_400, 3.1e7, need=need)
        with_memo = correlation(window, benchmark, need=20, min_points=10, memo=memo)
        assert with_memo == correlation(window, benchmark, need=20, min_points=10)


def test_log_returns_when_window_seen_before_then_no_return_worked_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sliding by one bar works out one new return; the rest are looked up."""
    bars = _bars(30, 4)
    memo = ReturnsMemo()
    log_returns(bars[:20], memo)
    logs: list[float] = []
    real_log = market_metrics.math.log

    def counting_log(x: float) -> float:
        logs.append(x)
        return real_log(x)

    monkeypatch.setattr(market_metrics.math, "log", counting_log)
    assert _items(log_returns(bars[1:21], memo)) == _items(log_returns(bars[1:21])) and logs
    logs.clear()
    log_returns(bars[2:22], memo)
    assert len(logs) == 1


def test_log_returns_when_memo_full_then_starts_afresh_with_same_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past LIMIT pairs the memo empties itself; the returns stay the same."""
    monkeypatch.setattr(ReturnsMemo, "LIMIT", 5)
    bars, memo = _bars(40, 5), ReturnsMemo()
    for end in range(10, 40):
        assert _items(log_returns(bars[end - 10 : end], memo)) == _items(
            log_returns(bars[end - 10 : end])
        )
    assert len(memo._pairs) <= 5 + 9
