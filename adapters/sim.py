"""The `sim` adapter, the default: a seeded synthetic market and portfolio that needs nothing.

- **Market** (:mod:`sim_market`): SPY, QQQ, AAPL, BTC-USD and ETH-USD as minute bars
  (and any interval that divides a day, daily included), quotes from the latest close
  with a regime-dependent spread, 24×7. Regimes: calm, then the scripted tour — a
  sell-off from 10 to 40 market minutes after the start, a recovery, calm again — then
  random switching between calm and volatile.
- **Portfolio**: three accounts — ``gen-01`` (gen: SPY and AAPL long), ``rev-01`` (rev:
  BTC and ETH long, and four short SPY puts 2.5 % out of the money, ~30 days out) and
  ``com-01`` (com: QQQ long, opened by hand). Entry prices are set from the prices at the
  start so that the calm minutes are quiet. Day-start and peak equity are not reported
  (the snapshot builder tracks them). The option is priced with Black–Scholes–Merton at
  the market's implied volatility, which follows the regime; at expiry it is settled in
  cash at its intrinsic value and disappears.
- **Fills**: two scalping strategies (``trend-spy`` in gen-01, ``crypto-momentum`` in
  rev-01) trade round trips, more often and with more slippage and losses when the
  market is not calm; each fill carries its expected price and, on the closing side, the
  realised P&L.
- **Closed trades**: each round trip is a closed long trade (``fetch_trades``), held 30
  market days. Its exit reason follows the scalper's brackets: out more than
  :data:`STOP_LOSS_BPS` below the entry is a ``stop_loss`` (stop-outs cluster in the
  sell-off), at least :data:`TAKE_PROFIT_BPS` above is a ``take_profit``, else ``signal``.
- **Instruments**: asset class and a sector per symbol (:data:`SECTORS`); the SPY put is
  an option in SPY's sector.
- **Option chains** (:mod:`sim_options`): listed calls and puts on the optionable
  symbols (:data:`OPTIONABLE`), with a volatility skew and an upward term structure
  around the market's implied vol, quoted now; deterministic under the seed.
- **Time**: ``clock`` is the wall clock (a ManualClock in tests); market time is a
  :class:`ScaledClock` over it, ``speed`` market seconds per wall second, starting at
  ``start`` (default: the wall clock's now, to the minute). Polling intervals from the
  policies are market seconds: at ``speed=60`` a 300 s interval is 5 wall seconds. A
  service cycle calls :meth:`SimAdapter.hold` first: its whole poll sees one moment.

Same seed, same market, fills and portfolio, whatever the polling pattern.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bastion.adapters.builder import BuilderConfig, SourceHealth
from bastion.adapters.option_chains import ChainCache, ChainFetch, ChainRead
from bastion.adapters.sim_market import CALM, TOUR, Phase, RegimeSpec, SyntheticMarket
from bastion.adapters.sim_options import synthetic_chain
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, ScaledClock
from bastion.adapters.venue import (
    Fill,
    OptionContract,
    VenueAccount,
    VenueAdapter,
    VenuePosition,
)
from bastion.engine.errors import DataError
from bastion.engine.indicators.greeks import bsm_price
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot import ClosedTrade, Instrument, Regime

CENT = Decimal("0.01")
RISK_FREE_RATE = 0.04
DIVIDEND_YIELDS = {"SPY": Decimal("0.013")}
_ACCOUNTS = (
    ("gen-01", "gen", Decimal(30_000)),
    ("rev-01", "rev", Decimal(60_000)),
    ("com-01", "com", Decimal(8_000)),
)


@dataclass(frozen=True, slots=True)
class _Scalper:
    account_id: str
    strategy_id: str
    symbol: str
    quantity: Decimal
    calm_every_min: int
    busy_every_min: int


_SCALPERS = (
    _Scalper("gen-01", "trend-spy", "SPY", Decimal(50), 10, 2),
    _Scalper("rev-01", "crypto-momentum", "BTC-USD", Decimal("0.05"), 15, 3),
)
# The scalpers' brackets, for the exit reason of a round trip: a stop this far below the
# entry, a take-profit this far above.
STOP_LOSS_BPS = Decimal(15)
TAKE_PROFIT_BPS = Decimal(10)
TRADE_HISTORY = timedelta(days=30)
OPTIONABLE = ("SPY", "QQQ", "AAPL")  # the sim lists options on these
CHAIN_STRIKE_RANGE_RATIO = Decimal("0.08")  # strikes within ±8 % of spot: ~400 contracts
SECTORS = {
    "SPY": "broad-market",
    "QQQ": "technology",
    "AAPL": "technology",
    "BTC-USD": "digital-assets",
    "ETH-USD": "digital-assets",
}


class SimAdapter:
    """A VenueAdapter over :class:`SyntheticMarket` (see the module docstring)."""

    name = "sim"

    def __init__(
        self,
        clock: Clock,
        *,
        speed: float = 1.0,
        seed: int = 7,
        start: datetime | None = None,
        script: Sequence[Phase] = TOUR,
        switching: bool = True,
    ) -> None:
        start = (start or clock.now()).astimezone(UTC).replace(second=0, microsecond=0)
        self.seed = seed
        self.clock = ScaledClock(clock, speed, start)
        self._held_at: datetime | None = None  # the moment a service cycle polls at
        self.market = SyntheticMarket(start, seed=seed, script=script, switching=switching)
        self.market.listeners.append(self._on_minute)
        self._trades = random.Random(f"{seed}:fills")
        self._fills: list[Fill] = []
        self._closed: list[ClosedTrade] = []
        self._cash = {account_id: cash for account_id, _, cash in _ACCOUNTS}
        self._realized: dict[tuple[str, date], Decimal] = {}
        self.market.advance_to(start)
        self._positions = _opening_book(self.market, start)
        self._chains = ChainCache(self.now)  # market time: read again every 5 minutes

    @staticmethod
    def builder_config() -> BuilderConfig:
        """The builder settings that fit the sim: crypto is benchmarked against BTC."""
        return BuilderConfig(
            benchmarks={"BTC-USD": "BTC-USD", "ETH-USD": "BTC-USD"},
            dividend_yields=DIVIDEND_YIELDS,
        )

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.market.symbols)

    def now(self) -> datetime:
        return self._held_at if self._held_at is not None else self.clock.now()

    def hold(self) -> datetime:
        """Answer every fetch at market time now until the next `hold` (the service
        calls it at the start of each cycle): at a high --speed the wall time a poll
        takes would otherwise stamp its data minutes after the cycle's `now` (a clock
        skew) or age it; returns that moment."""
        self._held_at = self.clock.now()
        return self._held_at

    def regime(self) -> Regime:
        spec, changed_at = self.market.regime(self.now())
        return Regime(spec.name, spec.severity, changed_at)

    def health(self) -> tuple[SourceHealth, ...]:
        """The sim never fails: one source, reachable now."""
        return (SourceHealth(self.name, 1, 0, self.now()),)

    # -- market data ------------------------------------------------------------------

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        now = self.now()
        self._known(request.symbol)
        end = now if request.end is None else min(now, request.end)
        step = timedelta(seconds=request.interval_s)
        live = request.end is None and request.start is None
        try:
            bars = self.market.bars(
                request.symbol, request.interval_s, now, request.limit if live else None
            )
        except ValueError as error:
            raise DataError(f"sim: {error}") from None
        chosen = [
            bar
            for bar in bars
            if bar.timestamp + step <= end
            and (request.start is None or bar.timestamp >= request.start)
        ]
        return tuple(chosen[-request.limit :] if request.limit else chosen)

    def fetch_quote(self, symbol: str) -> Quote:
        now = self.now()
        self._known(symbol)
        last, printed_at = self.market.last(symbol, now)
        half = last * Decimal(repr(self.market.spread_bps(symbol, now))) / 20_000
        bid = (last - half).quantize(CENT, rounding=ROUND_FLOOR)
        ask = (last + half).quantize(CENT, rounding=ROUND_CEILING)
        return Quote(symbol, bid, ask, printed_at, last=last)

    def _known(self, symbol: str) -> None:
        if symbol not in self.market.symbols:
            known = ", ".join(self.market.symbols)
            raise DataError(f"sim has no symbol {symbol!r}; it trades {known}")

    def fetch_option_chains(self, underlyings: Sequence[str]) -> ChainFetch:
        """The listed chain of each optionable underlying, quoted when it was last read:
        chains are read again every ``option_chains.REFRESH_S`` of market time
        (:class:`~bastion.adapters.option_chains.ChainCache`; module docstring)."""
        return self._chains.fetch(underlyings, self._chain_of)

    def _chain_of(self, underlying: str) -> ChainRead:
        if underlying not in OPTIONABLE:
            listed = ", ".join(OPTIONABLE)
            return None, [(f"option_chains[{underlying!r}]", f"sim lists options on {listed}")]
        now = self.now()
        spot, _ = self.market.last(underlying, now)
        chain = synthetic_chain(
            underlying,
            spot=spot,
            base_vol=self.market.implied_vol(underlying, now),
            now=now,
            seed=self.seed,
            rate=RISK_FREE_RATE,
            dividend_yield=DIVIDEND_YIELDS.get(underlying, Decimal(0)),
            strike_range_ratio=CHAIN_STRIKE_RANGE_RATIO,
        )
        return chain, []

    # -- account side -----------------------------------------------------------------

    def fetch_positions(self) -> Sequence[VenuePosition]:
        now = self.now()
        self._settle_expired(now)
        return tuple(self._marked(position, now) for position in self._positions)

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        positions = self.fetch_positions()
        today = self.now().date()
        accounts = []
        for account_id, account_type, _ in _ACCOUNTS:
            value = unrealized = Decimal(0)
            for p in (p for p in positions if p.account_id == account_id):
                size = p.quantity * (p.option.multiplier if p.option else 1)
                sign = 1 if p.side == "long" else -1
                value += sign * size * p.price_usd
                unrealized += sign * size * (p.price_usd - p.entry_price_usd)
            cash = self._cash[account_id]
            accounts.append(
                VenueAccount(
                    id=account_id,
                    type=account_type,
                    equity_usd=(cash + value).quantize(CENT),
                    cash_usd=cash.quantize(CENT),
                    realized_pnl_usd=self._realized.get((account_id, today), Decimal(0)),
                    unrealized_pnl_usd=unrealized.quantize(CENT),
                )
            )
        return tuple(accounts)

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        now = self.now()
        self.market.advance_to(now)
        return tuple(f for f in self._fills if since <= f.filled_at <= now)

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """The scalpers' round trips closed from ``since`` to now, oldest close first."""
        now = self.now()
        self.market.advance_to(now)
        return tuple(t for t in self._closed if since <= t.closed_at <= now)

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """Every symbol the sim trades and every position's, with its sector."""
        found = {
            symbol: Instrument(symbol, _asset_class(symbol), SECTORS.get(symbol))
            for symbol in self.market.symbols
        }
        for position in positions:
            underlying = position.option.underlying_symbol if position.option else position.symbol
            found.setdefault(
                position.symbol,
                Instrument(position.symbol, position.asset_class, SECTORS.get(underlying)),
            )
        return found

    def _marked(self, position: VenuePosition, now: datetime) -> VenuePosition:
        option = position.option
        if option is None:
            price, _ = self.market.last(position.symbol, now)
            return _replace_price(position, price)
        spot, _ = self.market.last(option.underlying_symbol, now)
        volatility = self.market.implied_vol(option.underlying_symbol, now)
        contract = OptionContract(
            option.option_type,
            option.strike_usd,
            option.expires_at,
            option.underlying_symbol,
            implied_volatility=Decimal(f"{volatility:.4f}"),
        )
        price = _option_price(contract, spot, volatility, now)
        return _replace_price(position, price, contract)

    def _settle_expired(self, now: datetime) -> None:
        for position in [p for p in self._positions if p.option and p.option.expires_at <= now]:
            option = position.option
            assert option is not None
            spot, _ = self.market.last(option.underlying_symbol, now)
            intrinsic = max(Decimal(0), option.strike_usd - spot)
            if option.option_type == "call":
                intrinsic = max(Decimal(0), spot - option.strike_usd)
            sign = 1 if position.side == "long" else -1
            self._cash[position.account_id] += sign * intrinsic * position.quantity * 100
            self._positions.remove(position)

    # -- fills ------------------------------------------------------------------------

    def _on_minute(self, minute: datetime, regime: RegimeSpec, prices: Mapping[str, float]) -> None:
        if minute < self.clock.start:
            return
        index = int((minute - self.clock.start).total_seconds() // 60)
        calm = regime.name == CALM.name
        for scalper in _SCALPERS:
            every = scalper.calm_every_min if calm else scalper.busy_every_min
            if index % every == 0:
                self._round_trip(scalper, minute, regime, prices[scalper.symbol])
        horizon = minute - timedelta(days=2)
        if self._fills and self._fills[0].filled_at < horizon:
            self._fills = [f for f in self._fills if f.filled_at >= horizon]
        if self._closed and self._closed[0].closed_at < minute - TRADE_HISTORY:
            self._closed = [t for t in self._closed if t.closed_at >= minute - TRADE_HISTORY]

    def _round_trip(
        self, scalper: _Scalper, minute: datetime, regime: RegimeSpec, price: float
    ) -> None:
        draw, calm = self._trades.gauss, regime.name == CALM.name
        slip_in, slip_out = (
            (abs(draw(1.5, 1.0)), abs(draw(1.5, 1.0)))
            if calm
            else (max(0.0, draw(12 * regime.vol_multiple, 15)), max(0.0, draw(12, 10)))
        )
        edge_bps = draw(3, 6) if calm else draw(-20, 12)
        expected_in = Decimal(f"{price:.2f}")
        bought = _cents(price * (1 + slip_in / 1e4))
        expected_out = _cents(float(bought) * (1 + edge_bps / 1e4))
        sold = _cents(float(expected_out) * (1 - slip_out / 1e4))
        quantity = scalper.quantity
        fee = _cents(float(bought * quantity) * 1e-4)
        pnl = (sold - bought) * quantity - 2 * fee
        stamp = f"{scalper.strategy_id}-{minute:%Y%m%d%H%M}"
        for side, price_usd, expected, after_s, realized in (
            ("buy", bought, expected_in, 5, None),
            ("sell", sold, expected_out, 35, pnl),
        ):
            self._fills.append(
                Fill(
                    id=f"{stamp}-{side}",
                    account_id=scalper.account_id,
                    symbol=scalper.symbol,
                    side=side,
                    quantity=quantity,
                    price_usd=price_usd,
                    filled_at=minute + timedelta(seconds=after_s),
                    fee_usd=fee,
                    expected_price_usd=expected,
                    strategy_id=scalper.strategy_id,
                    realized_pnl_usd=realized,
                )
            )
        self._closed.append(
            ClosedTrade(
                id=stamp,
                account_id=scalper.account_id,
                symbol=scalper.symbol,
                side="long",
                strategy_id=scalper.strategy_id,
                units=quantity,
                opened_at=minute + timedelta(seconds=5),
                closed_at=minute + timedelta(seconds=35),
                entry_price_usd=bought,
                exit_price_usd=sold,
                profit_usd=pnl,
                profit_pct=(pnl / (bought * quantity) * 100).quantize(Decimal("0.0001")),
                exit_reason=_exit_reason(bought, sold),
            )
        )
        self._cash[scalper.account_id] += pnl
        key = (scalper.account_id, minute.date())
        self._realized[key] = self._realized.get(key, Decimal(0)) + pnl


def _exit_reason(bought: Decimal, sold: Decimal) -> str:
    move_bps = (sold - bought) / bought * 10_000
    if move_bps < -STOP_LOSS_BPS:
        return "stop_loss"
    return "take_profit" if move_bps >= TAKE_PROFIT_BPS else "signal"


def _asset_class(symbol: str) -> str:
    return "crypto" if symbol.endswith("-USD") else "equity"


def _cents(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _replace_price(
    position: VenuePosition, price: Decimal, option: OptionContract | None = None
) -> VenuePosition:
    return dataclasses.replace(position, price_usd=price, option=option or position.option)


def _option_price(
    contract: OptionContract, spot: Decimal, volatility: float, now: datetime
) -> Decimal:
    years = max((contract.expires_at - now).total_seconds(), 60.0) / (365 * 86_400)
    value = bsm_price(
        contract.option_type,
        spot=spot,
        strike=contract.strike_usd,
        time_years=years,
        rate=RISK_FREE_RATE,
        volatility=volatility,
        dividend_yield=DIVIDEND_YIELDS.get(contract.underlying_symbol, Decimal(0)),
    )
    return max(CENT, _cents(value))


def _opening_book(market: SyntheticMarket, start: datetime) -> list[VenuePosition]:
    """The positions, priced off the market at ``start`` so the calm minutes stay quiet."""

    def at_start(symbol: str, factor: str) -> Decimal:
        price, _ = market.last(symbol, start)
        return (price * Decimal(factor)).quantize(CENT)

    def opened(days: int) -> datetime:
        return start - timedelta(days=days, hours=3)

    spy, _ = market.last("SPY", start)
    strike = (spy * Decimal("0.975") / 5).to_integral_value(rounding=ROUND_FLOOR) * 5
    expiry_day = (start + timedelta(days=28)).date()
    expiry_day += timedelta(days=(4 - expiry_day.weekday()) % 7)  # a Friday
    expires_at = datetime(expiry_day.year, expiry_day.month, expiry_day.day, 21, tzinfo=UTC)
    put = OptionContract("put", strike, expires_at, "SPY")
    premium = _option_price(put, spy, market.implied_vol("SPY", start), start)
    occ = f"SPY{expiry_day:%y%m%d}P{int(strike * 1000):08d}"

    def holding(
        pid: str, account: str, symbol: str, quantity: str, entry: str, days: int, strategy: str
    ) -> VenuePosition:
        price = at_start(symbol, entry)
        return VenuePosition(
            id=pid,
            account_id=account,
            symbol=symbol,
            asset_class=_asset_class(symbol),
            quantity=Decimal(quantity),
            side="long",
            entry_price_usd=price,
            price_usd=price,
            entered_at=opened(days),
            strategy_id=strategy,
            manual=strategy == "core-index",  # bought by hand
        )

    return [
        holding("SPY-101", "gen-01", "SPY", "250", "1.0015", 12, "trend-spy"),
        holding("AAPL-207", "gen-01", "AAPL", "300", "0.985", 9, "quality-tilt"),
        holding("BTC-033", "rev-01", "BTC-USD", "0.5", "0.99", 4, "crypto-momentum"),
        holding("ETH-011", "rev-01", "ETH-USD", "8", "0.98", 6, "crypto-momentum"),
        holding("QQQ-015", "com-01", "QQQ", "140", "0.975", 30, "core-index"),
        VenuePosition(
            id="SPY-P-004",
            account_id="rev-01",
            symbol=occ,
            asset_class="option",
            quantity=Decimal(4),
            side="short",
            entry_price_usd=(premium * Decimal("1.25")).quantize(CENT),  # sold higher
            price_usd=premium,
            entered_at=opened(5),
            strategy_id="put-write",
            option=put,
        ),
    ]


def _is_venue_adapter(adapter: SimAdapter) -> VenueAdapter:
    return adapter  # mypy checks that SimAdapter implements the protocol


__all__ = ["SimAdapter"]
