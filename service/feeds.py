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
    benchmark: BTCUSDT          # alpaca / binance / kraken: see below
    market_calendar: XNYS       # alpaca (the default there); binance / kraken: none (24/7)
    # every adapter
    regime: {name: normal, severity: low}

Venue credentials never go in this file: they come from environment variables.

``benchmark`` is the symbol correlations are measured against (the regime / correlation
breakers). Each venue has its own default, one it lists: ``SPY`` on Alpaca, ``BTCUSDT``
on Binance, ``XBTUSD`` on Kraken; ``benchmark: none`` (or null) turns it off, and the
correlation metrics are then unevaluable (fail safe). At start the venue is asked whether
it lists the benchmark: a symbol it does not list is a startup error naming the symbol and
the venue (exit 2) — never a poll that fails every time. A refused key found by that
check is a startup error too; a transient failure (timeout, 429, 5xx) only defers the
check to the polls, where an unlisted benchmark leaves the correlations unevaluable.

``market_calendar`` (an ``exchange_calendars`` name, default ``XNYS`` on Alpaca, none on
the crypto venues) makes data age and bar gaps count open-market time only: weekends,
holidays and early closes are neither stale data nor missing bars.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
import yaml

from bastion.adapters.builder_parts import BuilderConfig
from bastion.adapters.market_calendar import check_calendar
from bastion.adapters.sources.clock import Clock, ScaledClock
from bastion.adapters.venue import UnknownSymbolError, VenueAdapter
from bastion.engine.errors import TransientAdapterError, UsageError
from bastion.engine.snapshot import Regime

ADAPTERS = ("sim", "replay", "alpaca", "binance", "kraken")
# What a replay --config may hold besides `regime` (examples/replay/replay.yaml).
REPLAY_SETTINGS = ("bars", "positions")
# Each venue's default benchmark: a symbol that venue lists (issue #12).
DEFAULT_BENCHMARKS = {"alpaca": "SPY", "binance": "BTCUSDT", "kraken": "XBTUSD"}
DEFAULT_CALENDARS: dict[str, str | None] = {"alpaca": "XNYS", "binance": None, "kraken": None}
NO_BENCHMARK = ("none", "")

log = structlog.get_logger("bastion.service")


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

    def cycle_now(self) -> datetime:
        """The market moment a cycle polls and evaluates at. A simulated feed (sim,
        replay) answers the whole poll at it (the adapter's `hold`): data is never
        stamped after it, nor aged by the wall time the poll takes at a high --speed."""
        hold = getattr(self.adapter, "hold", None)
        if callable(hold):
            moment: datetime = hold()
            return moment
        return self.now()

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
        from bastion.adapters.replay_config import check_replay_settings  # noqa: PLC0415

        try:
            check_replay_settings(settings)
        except ValueError as error:
            raise UsageError(str(error)) from error
        unknown = sorted(set(settings) - set(REPLAY_SETTINGS))
        if unknown:  # a misspelt `positions:` would replay an empty book without a word
            raise UsageError(
                f"replay config: unknown setting {unknown[0]!r}; the settings are "
                f'{", ".join(REPLAY_SETTINGS)} and regime (README "Feeds")'
            )
        bars = settings.get("bars")
        if not isinstance(bars, dict) or not bars:
            raise UsageError("--adapter replay needs a --config with `bars: {SYMBOL: file.csv}`")
        replay = ReplayAdapter(
            {str(k): str(v) for k, v in bars.items()},
            clock=wall,
            speed=speed,
            positions_file=settings.get("positions"),
        )
        return Feed(replay, replay.builder_config(), replay.market_clock, speed, **extra)
    if name in ("alpaca", "binance", "kraken"):
        benchmark = benchmark_setting(name, settings.pop("benchmark", DEFAULT_BENCHMARKS[name]))
        calendar = calendar_setting(name, settings.pop("market_calendar", DEFAULT_CALENDARS[name]))
        adapter = _venue(name, settings, wall, environ)
        if benchmark is not None:
            check_benchmark(name, adapter, benchmark)
        builder_config = BuilderConfig(benchmark=benchmark, market_calendar=calendar)
        return Feed(adapter, builder_config, ScaledClock(wall, 1.0, wall.now()), 1.0, **extra)
    raise UsageError(f"unknown adapter {name!r}; one of {', '.join(ADAPTERS)}")


def benchmark_setting(venue: str, value: object) -> str | None:
    """The configured benchmark symbol, or None for `benchmark: none` / null."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_BENCHMARK):
        return None
    if not isinstance(value, str):
        raise UsageError(
            f"{venue} config: benchmark must be a symbol (e.g. "
            f"{DEFAULT_BENCHMARKS[venue]}) or none, got {value!r}"
        )
    return value.strip()


def calendar_setting(venue: str, value: object) -> str | None:
    """The exchange calendar for equity sessions, or None (24/7) for `none` / null."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NO_BENCHMARK):
        return None
    try:
        check_calendar(str(value))
    except ValueError as error:
        raise UsageError(f"{venue} config: market_calendar: {error}, or none (24/7)") from None
    return str(value)


def check_benchmark(venue: str, adapter: Any, benchmark: str) -> None:
    """Refuse to start on a benchmark the venue does not list (UsageError, exit 2).

    A refused key (AdapterError) propagates: the adapter cannot be set up. A transient
    failure is logged and the check is left to the polls."""
    check = getattr(adapter, "check_symbol", None)
    if not callable(check):
        return
    try:
        check(benchmark)
    except UnknownSymbolError as error:
        raise UsageError(
            f"{venue} feed: benchmark {benchmark!r} is not listed by {venue} ({error}); set "
            f"`benchmark:` in the --config file to a {venue} symbol (default "
            f"{DEFAULT_BENCHMARKS[venue]}) or `benchmark: none`"
        ) from None
    except TransientAdapterError as error:
        log.warning(
            "benchmark_check_deferred", adapter=venue, benchmark=benchmark, error=str(error)
        )


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
