"""Venue feeds: benchmark and calendar per venue, and a status that tells the truth (#12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bastion.adapters.sources.clock import ManualClock
from bastion.engine.errors import UsageError
from bastion.service.alerts import AlertRaised, Alerts
from bastion.service.feeds import Feed, benchmark_setting, calendar_setting, make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Service
from tests.conftest import POLICIES
from tests.venues import routes_kraken
from tests.venues.stub import VenueStub

FACTS = routes_kraken.FACTS
ENVIRON = {FACTS.key_var: FACTS.key, FACTS.secret_var: FACTS.secret}


@pytest.fixture(scope="module")
def stub() -> Iterator[VenueStub]:
    started = VenueStub(FACTS.routes, FACTS.key, FACTS.secret)
    yield started
    started.close()


@pytest.fixture
def kraken(stub: VenueStub, monkeypatch: pytest.MonkeyPatch) -> VenueStub:
    stub.reset()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    return stub


class Collect:
    def __init__(self) -> None:
        self.alerts: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.alerts.append(alert)


def kraken_feed(stub: VenueStub, environ: dict[str, str] = ENVIRON, **config: Any) -> Feed:
    settings = {"base_url": stub.url, "timeout_s": 2.0, **config}
    return make_feed("kraken", settings, wall=ManualClock(), speed=1.0, seed=7, environ=environ)


def service_on(feed: Feed, sink: Collect) -> Service:
    metrics = ServiceMetrics()
    reloader = PolicyReloader(POLICIES, now=feed.now)
    reloader.load_initial()
    return Service(feed, reloader, metrics, alerts=Alerts([sink], metrics.registry))


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("none", None), ("  ", None), ("ETHUSD", "ETHUSD")]
)
def test_benchmark_setting_when_given_then_symbol_or_none(
    value: object, expected: str | None
) -> None:
    """`benchmark: none` (or null, or blank) turns the benchmark off."""
    assert benchmark_setting("kraken", value) == expected


def test_benchmark_setting_when_not_a_symbol_then_usage_error_shows_default() -> None:
    """A list or a number is refused, naming the venue's default."""
    with pytest.raises(UsageError, match=r"kraken config: benchmark.*XBTUSD"):
        benchmark_setting("kraken", ["XBTUSD"])


def test_calendar_setting_when_unknown_then_usage_error_names_it() -> None:
    """A misspelt exchange calendar stops the start."""
    with pytest.raises(UsageError, match="market_calendar: unknown exchange calendar 'NYS'"):
        calendar_setting("alpaca", "NYS")


def test_make_feed_when_kraken_defaults_then_benchmark_xbtusd_and_24x7(kraken: VenueStub) -> None:
    """Kraken's default benchmark is one Kraken lists; crypto has no session calendar."""
    feed = kraken_feed(kraken)
    assert feed.builder_config.benchmark == "XBTUSD"
    assert feed.builder_config.market_calendar is None
    assert [seen.path for seen in kraken.requests] == ["/0/public/AssetPairs"]


def test_make_feed_when_benchmark_unlisted_then_usage_error_names_symbol_and_venue(
    kraken: VenueStub,
) -> None:
    """Kraken does not list SPY: a startup error, never a failing poll."""
    with pytest.raises(UsageError, match="benchmark 'SPY' is not listed by kraken"):
        kraken_feed(kraken, benchmark="SPY")


def test_status_when_poll_fails_then_last_poll_says_why_and_fatal(kraken: VenueStub) -> None:
    """A refused key: /api/v1/status says the poll failed, fatally, in the venue's words."""
    sink = Collect()
    service = service_on(kraken_feed(kraken, {**ENVIRON, FACTS.key_var: "wrong"}), sink)
    cycle = service.cycle()
    status = service.status()
    assert not cycle.fresh_data
    assert status["last_poll"]["ok"] is False
    assert status["last_poll"]["fatal"] is True
    assert "EAPI:Invalid key" in status["last_poll"]["error"]
    ready, reasons = service.ready()
    assert not ready and any("EAPI:Invalid key" in reason for reason in reasons)


def test_status_when_one_position_unusable_then_listed_and_alerted_once(
    kraken: VenueStub,
) -> None:
    """An unvaluable balance is listed in status and alerted when it first appears."""
    assert FACTS.add_unlisted is not None
    bad_id = FACTS.add_unlisted(kraken)
    sink = Collect()
    service = service_on(kraken_feed(kraken), sink)
    service.cycle()
    service.cycle()
    status = service.status()
    assert status["last_poll"]["ok"] is True
    assert [item["id"] for item in status["unevaluable"]] == [bad_id]
    assert "ignore_assets" in status["unevaluable"][0]["reason"]
    alerts = [a for a in sink.alerts if a.kind == "position_unevaluable"]
    assert len(alerts) == 1 and bad_id in alerts[0].summary
