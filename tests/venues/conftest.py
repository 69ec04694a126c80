"""The ``venue`` fixture: each real SDK adapter against its loopback stub, one per venue.

A test that takes ``venue`` runs three times (alpaca, binance, kraken). The stubs are
started once per session and reset before every test; each test gets a fresh adapter
built by ``from_env`` from an injected environment, a manual clock at 2024-01-02 14:30 UTC,
a recording ``sleep`` (nothing ever sleeps) and a seeded ``random``.

Nothing here may leave the machine: an autouse guard fails any test that resolves or
connects to anything but the loopback interface.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.adapters.alpaca import AlpacaAdapter, AlpacaConfig
from bastion.adapters.binance import BinanceAdapter, BinanceConfig
from bastion.adapters.kraken import KrakenAdapter, KrakenConfig
from bastion.adapters.retry import RetryPolicy
from bastion.adapters.sources.clock import ManualClock
from tests.venues import routes_alpaca, routes_binance, routes_kraken
from tests.venues.stub import VenueFacts, VenueStub

FACTS: dict[str, VenueFacts] = {
    "alpaca": routes_alpaca.FACTS,
    "binance": routes_binance.FACTS,
    "kraken": routes_kraken.FACTS,
}
NOW = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
FILLS_SINCE = datetime(2024, 1, 2, tzinfo=UTC)
SEED = 20240102
RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=8.0)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

Adapter = AlpacaAdapter | BinanceAdapter | KrakenAdapter


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything tries to reach beyond 127.0.0.1 (DNS included)."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise AssertionError(f"a venue test tried to connect to {address[0]}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK:
            raise AssertionError(f"a venue test tried to resolve {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def stubs() -> Iterator[dict[str, VenueStub]]:
    started = {
        name: VenueStub(facts.routes, facts.key, facts.secret) for name, facts in FACTS.items()
    }
    yield started
    for stub in started.values():
        stub.close()


def environ_for(facts: VenueFacts) -> dict[str, str]:
    return {facts.key_var: facts.key, facts.secret_var: facts.secret, "HOME": "/nonexistent"}


def build_adapter(
    name: str,
    stub: VenueStub,
    *,
    environ: dict[str, str],
    clock: ManualClock,
    sleeps: list[float],
    **config: Any,
) -> Adapter:
    """An adapter on ``stub`` with the test defaults, overridden by ``config``."""
    settings: dict[str, Any] = {"timeout_s": 2.0, "retry": RETRY, "strategy_id": "core"} | config
    kwargs: dict[str, Any] = {
        "clock": clock,
        "sleep": sleeps.append,
        "random": random.Random(SEED).random,
    }
    if name == "alpaca":
        alpaca = AlpacaConfig(**({"trading_url": stub.url, "data_url": stub.url} | settings))
        return AlpacaAdapter.from_env(environ, alpaca, **kwargs)
    if name == "binance":
        binance = BinanceConfig(**({"base_url": stub.url, "fill_symbols": ("BTCUSDT",)} | settings))
        return BinanceAdapter.from_env(environ, binance, **kwargs)
    kraken = KrakenConfig(**({"base_url": stub.url} | settings))
    return KrakenAdapter.from_env(environ, kraken, **kwargs)


@dataclass
class VenueCase:
    """One venue under test: ``adapter, stub = venue`` unpacks the two that matter most."""

    name: str
    adapter: Adapter
    stub: VenueStub
    facts: VenueFacts
    clock: ManualClock
    sleeps: list[float]
    built: list[Adapter] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.adapter, self.stub))

    def make(self, environ: dict[str, str] | None = None, **config: Any) -> Adapter:
        """Another adapter on the same stub (other credentials, timeouts, account type...)."""
        adapter = build_adapter(
            self.name,
            self.stub,
            environ=environ if environ is not None else environ_for(self.facts),
            clock=self.clock,
            sleeps=self.sleeps,
            **config,
        )
        self.built.append(adapter)
        return adapter


@pytest.fixture(params=list(FACTS))
def venue(request: pytest.FixtureRequest, stubs: dict[str, VenueStub]) -> Iterator[VenueCase]:
    name: str = request.param
    stub = stubs[name]
    stub.reset()
    clock = ManualClock(NOW)
    sleeps: list[float] = []
    adapter = build_adapter(
        name, stub, environ=environ_for(FACTS[name]), clock=clock, sleeps=sleeps
    )
    case = VenueCase(name, adapter, stub, FACTS[name], clock, sleeps, [adapter])
    yield case
    for built in case.built:
        built.close()
    stub.reset()


FetchCall = Callable[[Adapter], object]
