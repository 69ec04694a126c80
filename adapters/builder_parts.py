"""The pieces of a snapshot the builder assembles: market, positions, order flow, system.

The rules for missing data are in :mod:`bastion.adapters.builder`'s docstring; this
module applies them. Every function returns plain snapshot-document data (Decimals and
datetimes) except :func:`positions`, which builds the model's Position objects directly
(thousands per poll, most of them in one generated loop: engine/snapshot/typed.batch_maker);
engine/snapshot/built.snapshot_from_typed checks both in one go.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.adapters import market_metrics as metrics
from bastion.adapters.builder_state import BuilderState, StrategyKey
from bastion.adapters.market_calendar import Restamped
from bastion.adapters.market_columns import ColumnsMemo
from bastion.adapters.market_metrics import ReturnsMemo, Windows, quantize
from bastion.adapters.option_chains import ChainFetch
from bastion.adapters.sources.base import Quote
from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import AtrMemo, AtrSpec
from bastion.engine.indicators.greeks import ImpliedVolatilityError, implied_volatility
from bastion.engine.indicators.overlap import Overlaps
from bastion.engine.indicators.quality import Bar, QualityConfig
from bastion.engine.indicators.quality_memo import QualityMemo
from bastion.engine.snapshot.history import DEFAULT_LOOKBACK_S
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.snapshot.model import ClosedTrade, Instrument, OptionLeg, Position
from bastion.engine.snapshot.typed import Checked, maker
from bastion.engine.snapshot.typed_batch import batch_maker

_BPS = Decimal(10_000)
_PCT = Decimal(100)
_YEAR_S = 365 * 86_400
_MAKE_POSITION = maker("Position")  # Position(...), its values checked as it is made
# A poll's common positions in one go (typed.batch_maker); a row the adapter could not
# read (``VenuePosition.problem``) is set aside.
_MAKE_POSITIONS = batch_maker(aside_when_set=("problem",))
_NO_DIVIDEND = Decimal(0)  # OptionLeg's default: what the validator gives when absent


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """Calls to one data source and how they went, over the caller's counting window."""

    name: str
    calls: int
    errors: int
    last_success_at: datetime | None


@dataclass(frozen=True, slots=True)
class Fallback:
    """A value the builder could not take from the venue, what it used, and why."""

    where: str  # e.g. market["SPY"].normal_volatility
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where} = {self.value}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll of a venue returned. ``atr_bars`` None: ATR from ``bars``."""

    accounts: tuple[VenueAccount, ...]
    positions: tuple[VenuePosition, ...]
    bars: Mapping[str, Sequence[Bar]]
    quotes: Mapping[str, Quote]
    fills: tuple[Fill, ...] = ()
    atr_bars: Mapping[str, Sequence[Bar]] | None = None
    # Symbols the venue would not serve (it does not list them): symbol -> the venue's words.
    unavailable: Mapping[str, str] = field(default_factory=dict)
    # Closed trades (bounded to the trade lookback) and instruments, where the adapter has them.
    trades: tuple[ClosedTrade, ...] = ()
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    # Listed option chains of the option positions' underlyings, where the adapter has them.
    option_chains: ChainFetch = field(default_factory=ChainFetch)
    # Why an instrument's venue order rules are missing or old: (where, value used, reason).
    instrument_notes: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BuilderConfig:
    bar_interval_s: int = 60
    atr_interval_s: int = 86_400
    atr: AtrSpec = field(default_factory=AtrSpec)
    atr_history_bars: int = 45  # Wilder smoothing converges with history: ask for 3 periods
    windows: Windows = field(default_factory=Windows)
    seconds_per_year: float = metrics.SECONDS_PER_YEAR_24X7
    seconds_per_year_by_symbol: Mapping[str, float] = field(default_factory=dict)
    # For correlation / regime metrics; None: no benchmark (correlations are unevaluable).
    benchmark: str | None = "SPY"
    benchmarks: Mapping[str, str] = field(default_factory=dict)  # per-symbol override
    quality: QualityConfig = field(default_factory=QualityConfig)
    # An exchange_calendars name (XNYS) for equity feeds: data age and bar gaps are counted
    # in open-market time, so weekends, holidays and early closes are neither stale nor
    # gaps. None: 24/7 (crypto). See adapters.market_calendar.
    market_calendar: str | None = None
    orders_window_s: int = 60
    slippage_window_s: int = 300
    connectivity_window_s: float = 300.0
    max_clock_skew_s: float = 5.0
    day_timezone: tzinfo = UTC
    day_starts_at: time = time(0)  # local time in day_timezone when a trading day begins
    risk_free_rate: Decimal = Decimal("0.04")  # only to imply a missing IV from a mark
    dividend_yields: Mapping[str, Decimal] = field(default_factory=dict)  # by underlying
    # Closed trades kept in the snapshot: those closed within this many seconds. The
    # service passes the longest lookback of the loaded history protections; 7 days if not.
    trade_lookback_s: float = DEFAULT_LOOKBACK_S

    def __post_init__(self) -> None:
        if self.bar_interval_s <= 0 or self.atr_interval_s <= 0:
            raise ValueError(f"bar intervals must be > 0: {self}")
        if self.orders_window_s <= 0 or self.slippage_window_s <= 0:
            raise ValueError(f"fill windows must be > 0: {self}")
        if self.atr_history_bars < self.atr_bars_needed:
            raise ValueError(
                f"atr_history_bars {self.atr_history_bars} is below the "
                f"{self.atr_bars_needed} bars ATR({self.atr.period}) needs"
            )

    @property
    def atr_bars_needed(self) -> int:
        """The fewest bars that give an ATR value."""
        return self.atr.first_index + 1

    @property
    def fill_lookback_s(self) -> int:
        return max(self.orders_window_s, self.slippage_window_s)

    def benchmark_of(self, symbol: str) -> str | None:
        return self.benchmarks.get(symbol, self.benchmark)

    def trading_day(self, now: datetime) -> date:
        """The trading day ``now`` belongs to (it starts at ``day_starts_at`` local time)."""
        local = now.astimezone(self.day_timezone)
        start = timedelta(hours=self.day_starts_at.hour, minutes=self.day_starts_at.minute)
        return (local - start).date()


@dataclass(slots=True)
class SeriesMemos:
    """What earlier builds worked out of the bars, reused for the very same bar objects
    only (a cache: the snapshot is the same without it). One per builder and thread."""

    # Per (symbol, interval): the bars' true ranges (engine/indicators/atr.py).
    atr: dict[tuple[str, int], AtrMemo] = field(default_factory=dict)
    # Every series' close-to-close log returns (market_metrics.py).
    returns: ReturnsMemo = field(default_factory=ReturnsMemo)
    # Per symbol: what each bar of its series gives the metrics (market_columns.py).
    columns: ColumnsMemo = field(default_factory=ColumnsMemo)
    # Per symbol: what its market record took from its bars alone, the last time
    # (builder_market.from_bars): reused while the very same bars come again.
    bar_metrics: dict[str, BarMetrics] = field(default_factory=dict)
    # Per (symbol, interval) on an exchange calendar: the bars re-stamped on its session
    # clock the last time (market_calendar.Restamped), so a moved series re-stamps its
    # new bars only.
    restamped: dict[tuple[str, int], Restamped] = field(default_factory=dict)
    # Texts (ids, accounts, symbols, strategies) known to meet the snapshot's text rule
    # (engine/snapshot/typed.Checked): each distinct text is checked once, not per poll.
    texts: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class BarMetrics:
    """What one symbol's market record takes from its bars alone — ATR, volatility,
    volume, liquidity, correlation, each with its baseline — and the fallbacks that
    working them out listed; kept with the bars it came from."""

    bars: tuple[Bar, ...]
    atr_bars: tuple[Bar, ...]
    benchmark: tuple[Bar, ...]
    values: tuple[tuple[str, Decimal], ...]
    fallbacks: tuple[Fallback, ...]


@dataclass(slots=True)
class Context:
    config: BuilderConfig
    now: datetime
    fallbacks: list[Fallback]
    # Per (symbol, interval): what the previous builds already checked of the bars, so a
    # build checks the new bars only (a cache: the snapshot is the same without it).
    quality_memos: dict[tuple[str, int], QualityMemo] = field(default_factory=dict)
    # Log returns of each benchmark's bars, worked out once per build (market_metrics).
    benchmark_returns: dict[str, dict[datetime, float]] = field(default_factory=dict)
    # What earlier builds worked out of the bars: true ranges, returns (a cache too).
    memos: SeriesMemos = field(default_factory=SeriesMemos)
    # The poll being built, and what market_batch worked out of all its symbols'
    # columns at once (per symbol, metric name -> value, or None: ask again alone).
    poll: Poll | None = None
    batch: dict[str, dict[str, Decimal | None]] | None = None
    # How each series carries on the one its memos saw last, found once for all of them
    # (engine/indicators/overlap.py), and each of the poll's series as one tuple for the
    # whole build (series()): what the memos keep, the same object for all of them.
    overlaps: Overlaps = field(default_factory=Overlaps)
    frozen: dict[int, tuple[Sequence[Bar], tuple[Bar, ...]]] = field(default_factory=dict)

    def series(self, bars: Sequence[Bar]) -> tuple[Bar, ...]:
        """``bars`` as a tuple, the same one all build long (a venue's list is copied
        once, not once per memo)."""
        if type(bars) is tuple:
            return bars
        held = self.frozen.get(id(bars))
        if held is None or held[0] is not bars:
            held = self.frozen[id(bars)] = (bars, tuple(bars))
        return held[1]

    def fallback(self, where: str, value: object, reason: str) -> None:
        self.fallbacks.append(Fallback(where, str(value), reason))

    def age_s(self, moment: datetime, what: str) -> Decimal:
        """Seconds from ``moment`` to now; DataError when it is ahead beyond the skew."""
        age = (self.now - moment).total_seconds()
        if age < -self.config.max_clock_skew_s:
            raise DataError(
                f"{what} is stamped {moment.isoformat()}, {-age:.1f} s after now "
                f"({self.now.isoformat()}): check the venue's and this host's clocks"
            )
        return quantize(Decimal(repr(max(0.0, age))), 3)


# -- positions ------------------------------------------------------------------------


def positions(
    context: Context,
    venue_positions: Sequence[VenuePosition],
    market_records: Mapping[str, Mapping[str, Any]],
    state: BuilderState,
    unavailable: Mapping[str, str] | None = None,
    *,
    accounts: Collection[str],
) -> tuple[Mapping[str, datetime], tuple[Position, ...], list[Unevaluable], Checked]:
    """(first-seen times to remember, the snapshot's positions, the records left out,
    what checking the positions found).

    The positions are the model's own objects, made from the venue's typed values and
    checked as they are made: the common ones — no option, market data, positive
    numbers, an entry time, every value valid, a known account (``accounts``: the
    poll's), not entered after now — in one go, their cross-references proven with them
    (:func:`typed.batch_maker`); the rest one by one (:func:`typed.maker`). What else a
    venue's values can break is checked by engine/snapshot/built.snapshot_from_typed.
    One bad record never blanks the snapshot: a row the adapter could not read, a
    position without market data (the venue does not list its symbol), an option leg
    that cannot be built, a position without a usable price or entry price — each is
    left out and listed as :class:`Unevaluable`; every other position is kept. A price
    the venue reports as 0 (dust: value ÷ volume rounds to 0) is taken from the quote.
    """
    left_out: list[Unevaluable] = []
    checked = Checked(context.memos.texts)
    batch = _MAKE_POSITIONS(
        checked,
        venue_positions,
        market=market_records,
        accounts=accounts,
        as_of=context.now,
        first_seen=state.first_seen,
    )
    first_seen: Mapping[str, datetime] = batch.stamped  # no entry time: when first seen
    seen_aside: dict[str, datetime] = {}  # (the batch's own is part of its proof: not added to)
    made: dict[int, Position] = {}
    # The rest one by one, as before the batch (one it could have made comes out alike:
    # `_priced` keeps its price and gives it no leg).
    for index in batch.aside:
        position = venue_positions[index]
        try:
            price, option = _priced(context, position, market_records, unavailable or {})
        except DataError as error:
            left_out.append(
                Unevaluable(position.id, position.account_id, position.symbol, error.message)
            )
            continue
        entered_at = position.entered_at
        if entered_at is None:
            entered_at = state.first_seen.get(position.id, context.now)
            seen_aside[position.id] = entered_at
        made[index] = _MAKE_POSITION(
            checked,
            position.id,
            position.account_id,
            position.symbol,
            position.asset_class,
            position.quantity,
            position.side,
            position.entry_price_usd,
            entered_at,
            price,
            position.strategy_id,
            position.manual,
            option,
        )
    if seen_aside:
        first_seen = {**first_seen, **seen_aside}
    if first_seen:  # one line for them all (10,000 a poll were noise, and cost ~10 ms)
        context.fallback(
            "positions[*].entered_at",
            "the time first seen",
            "the venue gives no entry time for its positions: each keeps the time the "
            "builder first saw it (kept in the builder state, and in --state)",
        )
    return first_seen, batch.finish(made), left_out, checked


def _priced(
    context: Context,
    position: VenuePosition,
    market_records: Mapping[str, Mapping[str, Any]],
    unavailable: Mapping[str, str],
) -> tuple[Decimal, OptionLeg | None]:
    """The price and option leg of one position; DataError when it cannot be used."""
    if position.problem is not None:
        raise DataError(position.problem)
    if _at_most_zero(position.quantity):
        raise DataError(f"quantity is {position.quantity}; a held position has a positive one")
    market = market_records.get(position.symbol)
    if position.option is None and market is None:
        why = unavailable.get(position.symbol)
        raise DataError(
            why or f"no market data for {position.symbol}: the venue sent no bars or quote"
        )
    price = position.price_usd
    if _at_most_zero(price):
        if market is None:
            raise DataError(f"price_usd is {price} and there is no quote to price it from")
        price = market["price_usd"]
        context.fallback(
            f"positions[{position.id}].price_usd",
            price,
            f"the venue values the position at {position.price_usd} (dust: value ÷ volume "
            "rounds to 0); priced from the venue's quote instead",
        )
    if _at_most_zero(position.entry_price_usd):
        raise DataError(
            f"entry_price_usd is {position.entry_price_usd}: the venue gives no usable cost"
        )
    if position.option is None:
        return price, None
    return price, _option_leg(context, position, market_records)


def _at_most_zero(value: Decimal) -> bool:
    """``value <= 0``; False for NaN or what is no number at all (the comparison raises):
    such a value is the validator's to refuse, naming the field (engine/snapshot/built)."""
    try:
        return value <= 0
    except (InvalidOperation, TypeError):
        return False


def _option_leg(
    context: Context, position: VenuePosition, market_records: Mapping[str, Mapping[str, Any]]
) -> OptionLeg:
    contract = position.option
    assert contract is not None
    underlying = market_records.get(contract.underlying_symbol)
    if underlying is None:
        raise DataError(
            f"position {position.id}: no market data for the underlying "
            f"{contract.underlying_symbol}, so underlying_price_usd is unknown"
        )
    spot: Decimal = underlying["price_usd"]
    if contract.expires_at <= context.now:
        raise DataError(
            f"position {position.id}: expires_at {contract.expires_at.isoformat()} has passed "
            "but the venue still reports the option; settle or remove it"
        )
    return OptionLeg(
        option_type=contract.option_type,
        strike_usd=contract.strike_usd,
        expires_at=contract.expires_at,
        underlying_price_usd=spot,
        implied_volatility=contract.implied_volatility or _implied_vol(context, position, spot),
        dividend_yield=context.config.dividend_yields.get(contract.underlying_symbol, _NO_DIVIDEND),
        multiplier=contract.multiplier,
        delta=contract.delta,
    )


def _implied_vol(context: Context, position: VenuePosition, spot: Decimal) -> Decimal:
    contract = position.option
    assert contract is not None
    years = (contract.expires_at - context.now).total_seconds() / _YEAR_S
    try:
        sigma = implied_volatility(
            position.price_usd,
            contract.option_type,
            spot=spot,
            strike=contract.strike_usd,
            time_years=years,
            rate=context.config.risk_free_rate,
            dividend_yield=context.config.dividend_yields.get(contract.underlying_symbol, 0),
        )
    except (ImpliedVolatilityError, ValueError) as error:
        raise DataError(
            f"position {position.id}: the venue gives no implied_volatility and none can be "
            f"implied from the mark {position.price_usd} ({error})"
        ) from None
    value = quantize(Decimal(repr(sigma)), 6)
    context.fallback(
        f"positions[{position.id}].option.implied_volatility",
        value,
        f"the venue gives none; implied from the mark {position.price_usd} at "
        f"r = {context.config.risk_free_rate}",
    )
    return value


# -- order flow and system ------------------------------------------------------------


def order_flow(
    context: Context,
    fills: Sequence[Fill],
    accounts: frozenset[str],
    streaks: Mapping[StrategyKey, int],
) -> list[dict[str, Any]]:
    """One record per (account, strategy) with recent fills or a losing streak."""
    config, now = context.config, context.now
    recent: dict[StrategyKey, list[Fill]] = {}
    for fill in fills:
        if fill.account_id not in accounts:
            raise DataError(f"fill {fill.id}: account_id {fill.account_id!r} is not polled")
        if not (fill.quantity > 0 and fill.price_usd > 0) or fill.side not in ("buy", "sell"):
            raise DataError(
                f"fill {fill.id}: needs quantity > 0, price_usd > 0 and side buy or sell; "
                f"got {fill.quantity}, {fill.price_usd}, {fill.side!r}"
            )
        context.age_s(fill.filled_at, f"fill {fill.id}")
        if (now - fill.filled_at).total_seconds() < config.fill_lookback_s:
            recent.setdefault((fill.account_id, fill.strategy_id), []).append(fill)
    records = []
    for key in sorted(set(recent) | set(streaks)):
        pair_fills = recent.get(key, [])
        records.append(
            {
                "account_id": key[0],
                "strategy_id": key[1],
                "orders_last_minute": sum(
                    1 for f in pair_fills if _within(now, f.filled_at, config.orders_window_s)
                ),
                "slippage_bps": _slippage_bps(context, key, pair_fills),
                "consecutive_losses": streaks.get(key, 0),
            }
        )
    return records


def _within(now: datetime, moment: datetime, window_s: float) -> bool:
    return (now - moment).total_seconds() < window_s


def _slippage_bps(context: Context, key: StrategyKey, fills: Sequence[Fill]) -> Decimal:
    window = [
        f for f in fills if _within(context.now, f.filled_at, context.config.slippage_window_s)
    ]
    priced = [f for f in window if f.expected_price_usd is not None and f.expected_price_usd > 0]
    if not priced:
        if window:
            context.fallback(
                f"order_flow[{key[0]}/{key[1]}].slippage_bps",
                0,
                f"{len(window)} recent fill(s), none with an expected price to measure against",
            )
        return Decimal(0)
    total = Decimal(0)
    for fill in priced:
        expected = fill.expected_price_usd
        assert expected is not None
        adverse = fill.price_usd - expected if fill.side == "buy" else expected - fill.price_usd
        total += adverse / expected * _BPS
    return quantize(max(Decimal(0), total / len(priced)), 2)


def system(
    context: Context,
    market_records: Mapping[str, Mapping[str, Any]],
    health: Sequence[SourceHealth],
) -> dict[str, Any]:
    ages = [record["data_age_s"] for record in market_records.values()]
    if not health:
        context.fallback(
            "system",
            "error_rate_pct 0, connectivity_ratio 1",
            "no source health was given; the adapter that answered this poll is the only "
            "source, and it answered",
        )
        return {
            "error_rate_pct": Decimal(0),
            "connectivity_ratio": Decimal(1),
            "data_age_s": max(ages, default=Decimal(0)),
        }
    calls = sum(source.calls for source in health)
    errors = sum(source.errors for source in health)
    window = context.config.connectivity_window_s
    reachable = 0
    for source in health:
        if source.last_success_at is None:
            continue
        age = context.age_s(source.last_success_at, f"the last success of {source.name}")
        ages.append(age)
        reachable += age <= Decimal(repr(window))
    error_rate = Decimal(errors) * _PCT / calls if calls else Decimal(0)
    return {
        "error_rate_pct": quantize(min(_PCT, error_rate), 2),
        "connectivity_ratio": quantize(Decimal(reachable) / len(health), 4),
        "data_age_s": max(ages, default=Decimal(0)),
    }
