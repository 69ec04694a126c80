"""A seeded synthetic market: minute bars for several symbols under switching regimes.

The model, per minute and symbol (log returns, float, then prices rounded to the tick):

    r = drift(regime, factor) + σ_minute × vol_multiple(regime) × (ρ·F + √(1−ρ²)·ε)

with F one shock per factor (``equity``, ``crypto``) shared by the symbols that load on
it — which gives the correlations — and ε the symbol's own shock. High and low extend
beyond open and close by half-normal excursions; volume is lognormal around the
symbol's base volume × the regime's volume multiple. Daily bars before the first minute
are a calm daily random walk that ends at the start price; later daily bars aggregate
the minutes (UTC days). Bars of other intervals aggregate minutes too (the interval
must divide a day). Every market is 24×7: no sessions, no holidays.

Regimes: the warm-up history is calm; from the start a script of phases runs (the
default :data:`TOUR`: calm, a sell-off, a recovery), then — with ``switching`` — a
Markov chain flips between calm and volatile each minute with small probabilities.
Everything is drawn from ``random.Random`` streams seeded from ``seed`` in a fixed order,
so a seed gives the same market whatever the polling pattern.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from bastion.engine.indicators.quality import Bar

MINUTE = timedelta(minutes=1)
DAY_S = 86_400
_MINUTES_PER_YEAR = 365.25 * 1440
_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    asset_class: str  # equity | crypto
    start_price: float
    annual_vol: float  # in the calm regime
    factor: str  # the common shock it loads on
    loading: float  # correlation with the factor
    volume_per_minute: float
    spread_bps: float  # bid/ask spread in the calm regime
    volume_places: int = 0


@dataclass(frozen=True, slots=True)
class RegimeSpec:
    name: str
    severity: str  # low | medium | high | critical, as in a Snapshot's regime
    vol_multiple: float = 1.0
    volume_multiple: float = 1.0
    drift_per_hour: Mapping[str, float] = field(default_factory=dict)  # log drift by factor


@dataclass(frozen=True, slots=True)
class Phase:
    at_s: int  # market seconds after the start
    regime: RegimeSpec


CALM = RegimeSpec("calm", "low")
VOLATILE = RegimeSpec("volatile", "medium", vol_multiple=3.0, volume_multiple=3.0)
SELLOFF = RegimeSpec(
    "selloff",
    "high",
    vol_multiple=4.0,
    volume_multiple=6.0,
    drift_per_hour={"equity": -0.05, "crypto": -0.07},
)
RECOVERY = RegimeSpec(
    "recovery", "medium", vol_multiple=2.0, volume_multiple=2.5, drift_per_hour={"equity": 0.01}
)
# Ten calm minutes, a half-hour sell-off, half an hour of recovery, then calm.
TOUR = (Phase(0, CALM), Phase(600, SELLOFF), Phase(2400, RECOVERY), Phase(4200, CALM))

DEFAULT_SYMBOLS = (
    SymbolSpec("SPY", "equity", 585.0, 0.15, "equity", 0.97, 40_000, 1.0),
    SymbolSpec("QQQ", "equity", 523.0, 0.19, "equity", 0.93, 25_000, 1.0),
    SymbolSpec("AAPL", "equity", 231.0, 0.23, "equity", 0.80, 30_000, 1.5),
    SymbolSpec("BTC-USD", "crypto", 92_480.0, 0.50, "crypto", 0.97, 15, 2.0, 4),
    SymbolSpec("ETH-USD", "crypto", 3_210.0, 0.65, "crypto", 0.90, 150, 3.0, 4),
)

MinuteListener = Callable[[datetime, RegimeSpec, Mapping[str, float]], None]


def _price(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


class SyntheticMarket:
    """Generates minutes lazily, in order, as market time reaches them."""

    def __init__(
        self,
        start: datetime,
        *,
        seed: int = 7,
        symbols: Sequence[SymbolSpec] = DEFAULT_SYMBOLS,
        script: Sequence[Phase] = TOUR,
        switching: bool = True,
        warmup_s: int = 6 * 3600,
        history_days: int = 60,
        retain_minutes: int = 3 * 1440,
    ) -> None:
        if start.utcoffset() is None:
            raise ValueError("the market start needs a timezone")
        self.start = start
        self.symbols = {spec.symbol: spec for spec in symbols}
        self.script = sorted(script, key=lambda phase: phase.at_s)
        self.switching = switching
        # The script's last phase holds for an hour before the Markov chain takes over.
        self._switching_from_s = (self.script[-1].at_s if self.script else 0) + 3600
        self.origin = _floor_day(start - timedelta(seconds=warmup_s))
        self.listeners: list[MinuteListener] = []
        self._shocks = random.Random(f"{seed}:market")
        self._switch = random.Random(f"{seed}:regime")
        self._retain = retain_minutes
        self._first_minute = 0  # index (from origin) of minutes[0] after pruning
        self._minutes: dict[str, list[Bar]] = {s: [] for s in self.symbols}
        self._closes = {s.symbol: s.start_price for s in symbols}
        self._daily = {s.symbol: _history(s, self.origin, history_days, seed) for s in symbols}
        self._regimes: list[tuple[datetime, RegimeSpec]] = [(self.origin, CALM)]
        self._iv_multiple = 1.0

    # -- time -----------------------------------------------------------------------

    def advance_to(self, now: datetime) -> None:
        """Generate every minute that has closed by ``now``."""
        while self._next_open() + MINUTE <= now:
            self._generate_minute(self._next_open())

    def _next_open(self) -> datetime:
        count = self._first_minute + len(next(iter(self._minutes.values())))
        return self.origin + count * MINUTE

    def _regime_for(self, minute: datetime) -> RegimeSpec:
        if minute < self.start:
            return CALM
        offset_s = (minute - self.start).total_seconds()
        if not self.switching or offset_s < self._switching_from_s:
            phases = [phase for phase in self.script if phase.at_s <= offset_s]
            return phases[-1].regime if phases else CALM
        current = self._regimes[-1][1]
        calm = current.name == CALM.name
        if self._switch.random() < (1 / 720 if calm else 1 / 45):  # ~12 h calm, ~45 min not
            return VOLATILE if calm else CALM
        return current

    def _generate_minute(self, minute: datetime) -> None:
        regime = self._regime_for(minute)
        if regime != self._regimes[-1][1]:
            self._regimes.append((minute, regime))
        draw = self._shocks.gauss
        factors = {name: draw(0.0, 1.0) for name in ("equity", "crypto")}
        for spec in self.symbols.values():
            sigma = spec.annual_vol / math.sqrt(_MINUTES_PER_YEAR) * regime.vol_multiple
            shock = spec.loading * factors[spec.factor]
            shock += math.sqrt(1 - spec.loading**2) * draw(0.0, 1.0)
            drift = regime.drift_per_hour.get(spec.factor, 0.0) / 60
            open_ = self._closes[spec.symbol]
            close = open_ * math.exp(drift + sigma * shock)
            high = max(open_, close) * math.exp(abs(draw(0.0, 0.5)) * sigma)
            low = min(open_, close) * math.exp(-abs(draw(0.0, 0.5)) * sigma)
            volume = spec.volume_per_minute * regime.volume_multiple
            volume *= math.exp(draw(0.0, 0.25) - 0.03125)
            self._closes[spec.symbol] = close
            bar = Bar(
                minute,
                _price(open_),
                _price(high),
                _price(low),
                _price(close),
                Decimal(f"{volume:.{spec.volume_places}f}"),
            )
            self._minutes[spec.symbol].append(bar)
        # Implied volatility follows the regime with a few minutes' lag.
        self._iv_multiple += (math.sqrt(regime.vol_multiple) - self._iv_multiple) * 0.15
        if (minute + MINUTE).time() == datetime.min.time():  # the UTC day is complete
            for symbol, bars in self._minutes.items():
                self._daily[symbol].append(_aggregate(_floor_day(minute), bars[-1440:]))
        self._prune()
        prices = {symbol: float(bars[-1].close) for symbol, bars in self._minutes.items()}
        for listener in self.listeners:
            listener(minute, regime, prices)

    def _prune(self) -> None:
        excess = len(next(iter(self._minutes.values()))) - self._retain
        if excess > 0:
            for bars in self._minutes.values():
                del bars[:excess]
            self._first_minute += excess

    # -- queries --------------------------------------------------------------------

    def bars(
        self, symbol: str, interval_s: int, now: datetime, limit: int | None = None
    ) -> list[Bar]:
        """Completed bars of ``interval_s`` up to ``now``, oldest first (the last ``limit``)."""
        self.advance_to(now)
        if interval_s == DAY_S:
            days = self._daily[symbol]
            return list(days[-limit:] if limit else days)
        if interval_s % 60 or DAY_S % interval_s:
            raise ValueError(f"the sim serves intervals that divide a day, not {interval_s} s")
        minutes = self._minutes[symbol]
        size = interval_s // 60
        if size == 1:
            return list(minutes[-limit:] if limit else minutes)
        tail = minutes[-(limit + 1) * size :] if limit else minutes
        groups: dict[datetime, list[Bar]] = {}
        for bar in tail:
            since_midnight = (bar.timestamp - _floor_day(bar.timestamp)).total_seconds()
            opened = bar.timestamp - timedelta(seconds=since_midnight % interval_s)
            groups.setdefault(opened, []).append(bar)
        built = [_aggregate(t, group) for t, group in groups.items() if len(group) == size]
        return built[-limit:] if limit else built

    def last(self, symbol: str, now: datetime) -> tuple[Decimal, datetime]:
        """The latest close and the time it was printed (the close of its minute)."""
        self.advance_to(now)
        bars = self._minutes[symbol]
        if not bars:
            return _price(self.symbols[symbol].start_price), self.origin
        return bars[-1].close, bars[-1].timestamp + MINUTE

    def regime(self, now: datetime) -> tuple[RegimeSpec, datetime]:
        """The regime in force at ``now`` and when it began."""
        self.advance_to(now)
        changed_at, regime = self._regimes[-1]
        return regime, changed_at

    def implied_vol(self, symbol: str, now: datetime) -> float:
        """The option market's volatility for ``symbol``: calm vol × 1.1, lagging the regime."""
        self.advance_to(now)
        return self.symbols[symbol].annual_vol * 1.1 * self._iv_multiple

    def spread_bps(self, symbol: str, now: datetime) -> float:
        regime, _ = self.regime(now)
        return self.symbols[symbol].spread_bps * regime.vol_multiple


def _aggregate(opened: datetime, bars: Sequence[Bar]) -> Bar:
    volumes = [b.volume for b in bars if b.volume is not None]
    return Bar(
        opened,
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(volumes, Decimal(0)) if volumes else None,
    )


def _history(spec: SymbolSpec, origin: datetime, days: int, seed: int) -> list[Bar]:
    """Calm daily bars for the ``days`` before ``origin``, ending at the start price."""
    draws = random.Random(f"{seed}:history:{spec.symbol}")
    sigma = spec.annual_vol / math.sqrt(_DAYS_PER_YEAR)
    returns = [draws.gauss(0.0, sigma) for _ in range(days)]
    closes = [spec.start_price]
    for value in reversed(returns[1:]):
        closes.append(closes[-1] * math.exp(-value))
    closes.reverse()
    bars = []
    previous = closes[0] * math.exp(-returns[0])
    daily_volume = spec.volume_per_minute * 1440
    for index, close in enumerate(closes):
        high = max(previous, close) * math.exp(abs(draws.gauss(0.0, 0.6)) * sigma)
        low = min(previous, close) * math.exp(-abs(draws.gauss(0.0, 0.6)) * sigma)
        volume = daily_volume * math.exp(draws.gauss(0.0, 0.2))
        opened = origin - timedelta(days=days - index)
        bars.append(
            Bar(
                opened,
                _price(previous),
                _price(high),
                _price(low),
                _price(close),
                Decimal(f"{volume:.{spec.volume_places}f}"),
            )
        )
        previous = close
    return bars
