"""The `replay` adapter: OHLCV CSV files (one per symbol) and an optional positions file,
played through the same ``VenueAdapter`` interface as a live venue.

- **Bars**: each file is read by :mod:`bars_csv` (any of the layouts it accepts) and must
  run oldest first without duplicates (a :class:`DataError` names the file and line).
  All files share one bar interval, inferred as the smallest step between bars (or
  given as ``interval_s``); ``fetch_bars`` serves that interval only.
- **Time**: market time is a :class:`ScaledClock` over the injected ``clock`` (``speed``
  market seconds per wall second), starting when every file has ``warmup_bars`` closed
  bars (or at ``start``). The replay's ``now`` is the close of the latest bar the clock
  has passed: bars are delivered whole, as they close, and a replayed quote is never
  older than its bar — replay tests policies on history, not staleness. A service
  cycle calls :meth:`hold` first: the whole poll is answered at that bar close (the
  service evaluates at it too, :attr:`market_clock`), so the data age of a replayed bar
  is measured against the bar interval, never against the wall time a poll takes.
- **Quotes**: the last closed bar's close, ± half of ``spread_bps``, stamped at its close.
- **Positions** (:mod:`replay_book` documents the JSON format): marked to the latest
  close; an option with Black–Scholes–Merton at its file's implied volatility
  (``risk_free_rate``; no dividend). A position appears from its ``entered_at``; an
  option is dropped once expired. Account equity = cash + marked positions; fills
  (if any) appear as the clock passes them, and their realised P&L adds to the cash and
  to that day's (UTC) realised P&L. With daily (or longer) bars each bar is a trading
  day: an account's day-start equity is its positions marked at the latest bar's open
  (plus the cash before that day's fills), so daily-loss breakers see the day's move;
  a ``day_start_equity_usd`` in the positions file wins.
- **Closed trades and instruments**: the book's ``trades`` (else its fills paired FIFO)
  as the clock passes their close, and its ``instruments`` (else the positions' asset
  classes); :mod:`replay_book` has the format.
- **End of data**: a poll at or after :attr:`end_at` (the last bar's close) sees all
  the data (`bastion serve` stops after that cycle, with the replay summary); once the
  clock passes it by one interval, :attr:`finished` is true and every fetch raises
  :class:`ReplayFinished`, naming the last bar and how many were replayed.
- **Frames** (`bastion replay`): :meth:`closes_between` lists the bar closes a replay
  evaluates at; :mod:`replay_frames` builds a snapshot at each.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise
from pathlib import Path

from bastion.adapters.bars_csv import read_bars_csv
from bastion.adapters.builder import BuilderConfig
from bastion.adapters.market_metrics import Windows
from bastion.adapters.replay_book import Book, load_book
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, ScaledClock
from bastion.adapters.trade_pairing import merge_parts, pair_fills
from bastion.adapters.venue import Fill, VenueAccount, VenueAdapter, VenuePosition
from bastion.engine.errors import AdapterError, DataError
from bastion.engine.indicators.greeks import bsm_price
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot.history import bounded
from bastion.engine.snapshot.model import ClosedTrade, Instrument

CENT = Decimal("0.01")
DAY_S = 86_400  # bars this long or longer are days: each opens a new trading day
# Windows for daily bars: a week against the month before it.
REPLAY_WINDOWS = Windows(
    recent_bars=5, correlation_bars=20, baseline_bars=20, min_correlation_points=10
)


class ReplayFinished(AdapterError):
    """Every bar has been replayed. Fatal on purpose: the poll loop should stop."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Series:
    symbol: str
    source: str
    bars: tuple[Bar, ...]
    closes: tuple[datetime, ...]  # close time of each bar, for bisecting
    opens: tuple[datetime, ...]  # open time (timestamp) of each bar, for bisecting


class ReplayAdapter:
    """A VenueAdapter over CSV bars and a positions file (see the module docstring)."""

    name = "replay"

    def __init__(
        self,
        bar_files: Mapping[str, str | Path],
        *,
        clock: Clock,
        speed: float = 1.0,
        positions_file: str | Path | None = None,
        interval_s: int | None = None,
        warmup_bars: int = REPLAY_WINDOWS.required_bars,
        start: datetime | None = None,
        spread_bps: Decimal = Decimal(2),
        risk_free_rate: float = 0.04,
    ) -> None:
        if not bar_files:
            raise DataError("a replay needs at least one bar file (SYMBOL=path)")
        raw = {symbol: _read(symbol, path) for symbol, path in sorted(bar_files.items())}
        self.interval_s = interval_s or _infer_interval(raw)
        step = timedelta(seconds=self.interval_s)
        self._series = {
            symbol: _Series(
                symbol,
                source,
                bars,
                tuple(b.timestamp + step for b in bars),
                tuple(b.timestamp for b in bars),
            )
            for symbol, (source, bars) in raw.items()
        }
        self.book = load_book(positions_file) if positions_file is not None else Book((), (), ())
        self._check_symbols()
        self.end_at = max(series.closes[-1] for series in self._series.values())
        self.clock = ScaledClock(clock, speed, start or self._start(warmup_bars))
        self._spread = spread_bps / 20_000
        self._rate = risk_free_rate
        self._positions_at: tuple[datetime, tuple[VenuePosition, ...]] | None = None
        self._now_at: tuple[datetime, datetime] | None = None  # (clock, market time)
        self._held_at: datetime | None = None  # the moment a service cycle polls at
        self.market_clock = BarCloseClock(self)

    def builder_config(self) -> BuilderConfig:
        """Builder settings for these files: one interval for every metric and the ATR."""
        benchmark = "SPY" if "SPY" in self._series else min(self._series)
        return BuilderConfig(
            bar_interval_s=self.interval_s,
            atr_interval_s=self.interval_s,
            windows=REPLAY_WINDOWS,
            atr_history_bars=15,
            benchmark=benchmark,
        )

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._series)

    @property
    def finished(self) -> bool:
        return self.clock.now() >= self.end_at + timedelta(seconds=self.interval_s)

    def closes_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every bar close of every file from `start` to `end` (both included), once each,
        oldest first: the moments a replay evaluates."""
        return sorted(
            {close for s in self._series.values() for close in s.closes if start <= close <= end}
        )

    def hold(self) -> datetime:
        """Answer every fetch at the close of the latest bar passed now, until the next
        `hold` (the service calls it at the start of each cycle); returns that moment."""
        self._held_at = None
        self._held_at = self.now()
        return self._held_at

    def now(self) -> datetime:
        """The close of the latest bar the clock has passed (the replay's market time);
        while held, the moment `hold` fixed."""
        return self._held_at if self._held_at is not None else self.live_now()

    def live_now(self) -> datetime:
        """The close of the latest bar the clock has passed now, held or not."""
        moment = self.clock.now()
        if self._now_at is not None and self._now_at[0] == moment:  # one poll asks often
            return self._now_at[1]
        passed = [
            s.closes[i - 1] for s in self._series.values() if (i := bisect_right(s.closes, moment))
        ]
        market_time = max(passed, default=self.clock.start)
        self._now_at = (moment, market_time)
        return market_time

    # -- market data ------------------------------------------------------------------

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        now = self._now_or_finished()
        series = self._get(request.symbol)
        if request.interval_s != self.interval_s:
            raise DataError(
                f"replay serves {self.interval_s} s bars (the files' interval), not "
                f"{request.interval_s} s; set the builder's intervals to {self.interval_s}"
            )
        end = now if request.end is None else min(now, request.end)
        count = bisect_right(series.closes, end)
        first = 0 if request.start is None else bisect_left(series.opens, request.start)
        if request.limit:
            first = max(first, count - request.limit)
        return series.bars[first:count] if first < count else ()

    def fetch_quote(self, symbol: str) -> Quote:
        now = self._now_or_finished()
        bar, closed_at = self._last_bar(symbol, now)
        half = bar.close * self._spread
        bid = (bar.close - half).quantize(CENT, rounding=ROUND_FLOOR)
        ask = (bar.close + half).quantize(CENT, rounding=ROUND_CEILING)
        return Quote(symbol, bid, ask, closed_at, last=bar.close)

    # -- account side -----------------------------------------------------------------

    def fetch_positions(self) -> Sequence[VenuePosition]:
        now = self._now_or_finished()
        if self._positions_at is not None and self._positions_at[0] == now:
            return self._positions_at[1]  # a poll asks twice (positions, then accounts)
        marked = tuple(
            self._marked(p, now)
            for p in self.book.positions
            if (p.entered_at is None or p.entered_at <= now)
            and (p.option is None or p.option.expires_at > now)
        )
        self._positions_at = (now, marked)
        return marked

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        positions = self.fetch_positions()
        now = self.now()
        fills = [f for f in self.book.fills if f.filled_at <= now and f.realized_pnl_usd]
        daily = self.interval_s >= DAY_S
        accounts = []
        for account in self.book.accounts:
            value = unrealized = at_open = Decimal(0)
            for p in (p for p in positions if p.account_id == account.id):
                size = p.quantity * (p.option.multiplier if p.option else 1)
                sign = 1 if p.side == "long" else -1
                value += sign * size * p.price_usd
                unrealized += sign * size * (p.price_usd - p.entry_price_usd)
                if daily:
                    at_open += sign * size * self._price_at_open(p, now)
            own = [f for f in fills if f.account_id == account.id]
            realized = sum((f.realized_pnl_usd or Decimal(0) for f in own), Decimal(0))
            today = sum(
                (f.realized_pnl_usd or Decimal(0) for f in own if f.filled_at.date() == now.date()),
                Decimal(0),
            )
            cash = account.cash_usd + realized
            day_start = account.day_start_equity_usd
            if day_start is None and daily:  # the bar is the day: it opened at its open
                day_start = (cash - today + at_open).quantize(CENT)
            accounts.append(
                VenueAccount(
                    id=account.id,
                    type=account.type,
                    equity_usd=(cash + value).quantize(CENT),
                    cash_usd=cash,
                    realized_pnl_usd=today,
                    unrealized_pnl_usd=unrealized.quantize(CENT),
                    day_start_equity_usd=day_start,
                    peak_equity_usd=account.peak_equity_usd,
                )
            )
        return tuple(accounts)

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        now = self._now_or_finished()
        return tuple(
            sorted(
                (f for f in self.book.fills if since <= f.filled_at <= now),
                key=lambda f: (f.filled_at, f.id),
            )
        )

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """The book's closed trades, or its fills paired FIFO when it lists none; those
        closed from ``since`` up to the replay's now, oldest close first."""
        now = self._now_or_finished()
        trades = self.book.trades
        if not trades:
            played = [f for f in self.book.fills if f.filled_at <= now]
            trades = merge_parts(pair_fills(played, allow_short=True).parts)
        return bounded((t for t in trades if t.closed_at <= now), since)

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """The book's instruments, else each position's asset class."""
        found = {p.symbol: Instrument(p.symbol, p.asset_class) for p in positions}
        return found | dict(self.book.instruments)

    # -- helpers ----------------------------------------------------------------------

    def _now_or_finished(self) -> datetime:
        if self._held_at is not None:  # a held poll sees the data of its moment, whole
            return self._held_at
        if self.finished:
            last = max(self._series.values(), key=lambda s: s.closes[-1])
            total = sum(len(s.bars) for s in self._series.values())
            raise ReplayFinished(
                f"replay finished: every bar of {len(self._series)} file(s) has been played "
                f"({total} bars); the last, {last.symbol} opened "
                f"{last.bars[-1].timestamp.isoformat()}, closed at {self.end_at.isoformat()} "
                f"({last.source})"
            )
        return self.now()

    def _get(self, symbol: str) -> _Series:
        series = self._series.get(symbol)
        if series is None:
            raise DataError(
                f"replay has no bar file for {symbol!r}; it has {', '.join(self._series)}"
            )
        return series

    def _last_bar(self, symbol: str, now: datetime) -> tuple[Bar, datetime]:
        series = self._get(symbol)
        count = bisect_right(series.closes, now)
        if not count:
            raise DataError(
                f"no {symbol} bar has closed by {now.isoformat()}; its first closes at "
                f"{series.closes[0].isoformat()}",
                file=series.source,
            )
        return series.bars[count - 1], series.closes[count - 1]

    def _marked(self, position: VenuePosition, now: datetime) -> VenuePosition:
        option = position.option
        if option is None:
            return dataclasses.replace(
                position, price_usd=self._last_bar(position.symbol, now)[0].close
            )
        spot = self._last_bar(option.underlying_symbol, now)[0].close
        assert option.implied_volatility is not None  # the positions file requires it
        value = bsm_price(
            option.option_type,
            spot=spot,
            strike=option.strike_usd,
            time_years=(option.expires_at - now).total_seconds() / (365 * 86_400),
            rate=self._rate,
            volatility=option.implied_volatility,
        )
        return dataclasses.replace(position, price_usd=max(CENT, Decimal(f"{value:.2f}")))

    def _price_at_open(self, position: VenuePosition, now: datetime) -> Decimal:
        """The position's price at the open of the latest bar (its day's opening mark)."""
        option = position.option
        if option is None:
            return self._last_bar(position.symbol, now)[0].open
        bar, closed_at = self._last_bar(option.underlying_symbol, now)
        opened_at = closed_at - timedelta(seconds=self.interval_s)
        assert option.implied_volatility is not None  # the positions file requires it
        value = bsm_price(
            option.option_type,
            spot=bar.open,
            strike=option.strike_usd,
            time_years=max(0.0, (option.expires_at - opened_at).total_seconds()) / (365 * 86_400),
            rate=self._rate,
            volatility=option.implied_volatility,
        )
        return max(CENT, Decimal(f"{value:.2f}"))

    def _check_symbols(self) -> None:
        for position in self.book.positions:
            needed = position.option.underlying_symbol if position.option else position.symbol
            if needed not in self._series:
                raise DataError(
                    f"position {position.id} needs bars for {needed}; add a bar file for it"
                )

    def _start(self, warmup_bars: int) -> datetime:
        index = max(warmup_bars, 1) - 1
        for series in self._series.values():
            if len(series.bars) <= index:
                raise DataError(
                    f"{series.symbol} has {len(series.bars)} bars; the replay starts after "
                    f"{warmup_bars} warm-up bars — pass a longer file or fewer warm-up bars",
                    file=series.source,
                )
        return max(series.closes[index] for series in self._series.values())


class BarCloseClock:
    """The replay's market time as a `Clock` for the service (cycles, order checks,
    resets): the close of the latest bar the scaled clock has passed, so that the time
    the service evaluates at is the time of the data it has — a replayed bar is not
    stale while the next one has not closed."""

    def __init__(self, replay: ReplayAdapter) -> None:
        self._replay = replay

    def now(self) -> datetime:
        return self._replay.live_now()

    def monotonic(self) -> float:
        return self._replay.clock.monotonic()


def _read(symbol: str, path: str | Path) -> tuple[str, tuple[Bar, ...]]:
    bar_file = read_bars_csv(path)
    for row in range(1, len(bar_file.bars)):
        previous, current = bar_file.bars[row - 1].timestamp, bar_file.bars[row].timestamp
        if current <= previous:
            raise DataError(
                f"{symbol}: bar at {current.isoformat()} is not after the one on line "
                f"{bar_file.line_of(row - 1)} ({previous.isoformat()}); sort the file oldest "
                "first and drop duplicate rows",
                file=bar_file.source,
                line=bar_file.line_of(row),
            )
    return bar_file.source, bar_file.bars


def _infer_interval(raw: Mapping[str, tuple[str, tuple[Bar, ...]]]) -> int:
    found: dict[int, str] = {}
    for source, bars in raw.values():
        if len(bars) < 2:
            raise DataError(
                "one bar is not enough to infer the interval; pass interval_s", file=source
            )
        steps = [int((b.timestamp - a.timestamp).total_seconds()) for a, b in pairwise(bars)]
        found.setdefault(min(steps), source)
    if len(found) > 1:
        detail = "; ".join(f"{source}: {step} s" for step, source in sorted(found.items()))
        raise DataError(f"the bar files have different intervals ({detail}); replay one interval")
    return next(iter(found))


def _is_venue_adapter(adapter: ReplayAdapter) -> VenueAdapter:
    return adapter  # mypy checks that ReplayAdapter implements the protocol
