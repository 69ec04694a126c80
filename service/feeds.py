"""Build the adapter `bastion serve --adapter NAME --config FILE` asks for.

Config file (YAML, optional), per adapter:

    # replay
    bars: {SPY: examples/replay/SPY.csv, AAPL: examples/replay/AAPL.csv}
    positions: examples/replay/positions.json
    # alpaca / binance / kraken: any field of that adapter's config class, e.g.
    account_type: com
    strategy_id: desk-1
    paper: true                 # alpaca
    base_url: http://127.0.0.1:8080   # binance / kraken
    # every adapter
    regime: {name: normal, severity: low}

Venue credentials never go in this file: they come from environment variables.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bastion.adapters.builder_parts import BuilderConfig
from bastion.adapters.sources.clock import Clock, ScaledClock
from bastion.adapters.venue import VenueAdapter
from bastion.engine.errors import UsageError
from bastion.engine.snapshot import Regime

ADAPTERS = ("sim", "replay", "alpaca", "binance", "kraken")


@dataclass(frozen=True, slots=True)
class Feed:
    """An adapter with what the service needs to drive it."""

    adapter: VenueAdapter
    builder_config: BuilderConfig
    market_clock: Clock  # market time: scaled for sim / replay, the wall clock for venues
    speed: float
    regime_name: str = "normal"
    regime_severity: str = "low"

    def now(self) -> datetime:
        return self.market_clock.now()

    def regime(self, since: datetime) -> Regime:
        live = getattr(self.adapter, "regime", None)
        if callable(live):
            regime: Regime = live()
            return regime
        return Regime(self.regime_name, self.regime_severity, since)


def read_config(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: cannot read the config: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: the config is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config must be a mapping of settings")
    return data


def make_feed(
    name: str,
    config: Mapping[str, Any],
    *,
    wall: Clock,
    speed: float,
    seed: int,
    environ: Mapping[str, str],
) -> Feed:
    settings = dict(config)
    regime = settings.pop("regime", {}) or {}
    extra = {
        "regime_name": regime.get("name", "normal"),
        "regime_severity": regime.get("severity", "low"),
    }
    if name == "sim":
        from bastion.adapters.sim import SimAdapter  # noqa: PLC0415 - only the chosen feed loads

        sim = SimAdapter(wall, speed=speed, seed=seed)
        return Feed(sim, sim.builder_config(), sim.clock, speed, **extra)
    if name == "replay":
        from bastion.adapters.replay import ReplayAdapter  # noqa: PLC0415

        bars = settings.get("bars")
        if not isinstance(bars, dict) or not bars:
            raise UsageError("--adapter replay needs a --config with `bars: {SYMBOL: file.csv}`")
        replay = ReplayAdapter(
            {str(k): str(v) for k, v in bars.items()},
            clock=wall,
            speed=speed,
            positions_file=settings.get("positions"),
        )
        return Feed(replay, replay.builder_config(), replay.clock, speed, **extra)
    if name in ("alpaca", "binance", "kraken"):
        adapter = _venue(name, settings, wall, environ)
        return Feed(adapter, BuilderConfig(), ScaledClock(wall, 1.0, wall.now()), 1.0, **extra)
    raise UsageError(f"unknown adapter {name!r}; one of {', '.join(ADAPTERS)}")


def _venue(name: str, settings: dict[str, Any], wall: Clock, environ: Mapping[str, str]) -> Any:
    """A venue adapter; its SDK is imported only when that venue is chosen."""
    module = importlib.import_module(f"bastion.adapters.{name}")
    prefix = {"alpaca": "Alpaca", "binance": "Binance", "kraken": "Kraken"}[name]
    adapter_class, config_class = (
        getattr(module, f"{prefix}Adapter"),
        getattr(module, f"{prefix}Config"),
    )
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UsageError(
            f"unknown {name} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    try:
        config = config_class(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{name} config: {error}") from error
    return adapter_class.from_env(environ, config, clock=wall)
