"""The snapshot's trade history reaches back as far as the policies' history protections look."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from bastion.adapters.builder_parts import DEFAULT_LOOKBACK_S
from bastion.adapters.sources import ManualClock
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
THIRTY_DAYS_S = 30 * 86_400
HISTORY = f"""
  history:
    - id: month-drawdown
      method: max_drawdown
      lookback_s: {THIRTY_DAYS_S}
      max_drawdown_pct: 20
      lock_s: 86400
      scope: account
"""


def _service(policies: Path) -> Service:
    feed = make_feed("sim", {}, wall=ManualClock(START), speed=60.0, seed=7, environ={})
    reloader = PolicyReloader(policies, now=feed.now)
    reloader.load_initial()
    return Service(feed, reloader, ServiceMetrics())


def test_cycle_when_a_history_protection_looks_back_30_days_then_the_builder_keeps_30_days(
    tmp_path: Path,
) -> None:
    """A 30-day max-drawdown protection: the builder's trade lookback is 30 days, not the
    7-day default (a shorter history would count too few trades: protection lost)."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies, ignore=shutil.ignore_patterns("tests"))
    protection = policies / "protection.yaml"
    protection.write_text(protection.read_text().rstrip("\n") + "\n" + HISTORY)
    service = _service(policies)
    assert service.builder.config.trade_lookback_s == DEFAULT_LOOKBACK_S
    service.cycle()
    assert service.builder.config.trade_lookback_s == THIRTY_DAYS_S


def test_cycle_when_no_history_protection_then_the_feeds_lookback_stays(tmp_path: Path) -> None:
    """The shipped set has no history protection: the feed's own lookback is kept."""
    service = _service(ROOT / "policies")
    service.cycle()
    assert service.builder.config.trade_lookback_s == DEFAULT_LOOKBACK_S
