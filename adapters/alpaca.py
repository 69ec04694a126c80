"""Alpaca on alpaca-py: the account, equity and option positions, fills, stock bars and quotes.

Endpoints (through the SDK's clients, with ``raw_data=True`` so that this module is the
one strict parser — the SDK's models would turn bar prices into floats and reject enum
values they do not know):

- ``TradingClient.get_account`` → ``GET /v2/account``: equity, cash, and ``last_equity``
  (equity at the previous close) as the day-start equity.
- ``TradingClient.get_all_positions`` → ``GET /v2/positions``; option positions carry an
  OCC symbol, parsed by :func:`parse_occ_symbol`.
- fills: ``GET /v2/account/activities/FILL`` through the SDK's generic ``get`` — alpaca-py's
  ``TradingClient`` has no account-activities method (alpacahq/alpaca-py#232, #595).
- closed trades: the same fills paired FIFO (:mod:`trade_pairing`), the type of each
  closing order from ``TradingClient.get_order_by_id`` → ``GET /v2/orders/{id}``.
- ``StockHistoricalDataClient.get_stock_bars`` / ``get_stock_latest_quote`` →
  ``GET /v2/stocks/bars`` / ``/v2/stocks/quotes/latest`` (feed ``iex`` unless configured).
- option chains: ``OptionHistoricalDataClient.get_option_chain`` →
  ``GET /v1beta1/options/snapshots/{underlying}`` (latest quote, implied volatility,
  greeks per contract; expiries up to ``option_chain_days`` ahead; feed
  ``option_feed``), read by :mod:`alpaca_options`. An underlying whose chain Alpaca
  refuses (403 without an options data subscription, say) is left out, not a failed poll.

Tolerance: ``last_equity`` is optional (absent on some account types: the builder then
tracks the day-start equity itself); a position row that cannot be read comes back with
``problem`` set (one unevaluable subject, not a failed poll). A symbol Alpaca does not
list — ``GET /v2/assets/{symbol}`` answers 404, or the latest-quotes answer leaves it out
— is an :class:`UnknownSymbolError` naming the request.

The paper endpoint is the default (``paper=True``); ``trading_url`` / ``data_url`` override
the base URLs (the SDK's ``url_override``). alpaca-py reads no environment variables.

Two SDK behaviours are replaced, both on the SDK's private attributes and both covered by
tests that fail if an SDK upgrade renames them: its own retry (a fixed ``time.sleep(3)`` up
to 3 times on 429 / 504, ignoring ``Retry-After``) is switched off so :mod:`retry` owns
backoff; and its ``requests`` session, which sends without any timeout, gets one.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from operator import itemgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.enums import DataFeed, OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import OptionChainRequest, StockBarsRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient

from bastion.adapters import payload as p
from bastion.adapters.alpaca_options import read_chain
from bastion.adapters.bar_memo import BarMemo, raw_key
from bastion.adapters.http_errors import error_for_status, error_for_transport, install_timeout
from bastion.adapters.instrument_rules import (
    InstrumentFetch,
    RuleCache,
    RuleRead,
    RuleReader,
)
from bastion.adapters.option_chains import ChainCache, ChainFetch, ChainRead
from bastion.adapters.retry import call_with_retry
from bastion.adapters.single_account import SingleAccountScope
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, SystemClock
from bastion.adapters.trade_ledger import TradeLedger
from bastion.adapters.trade_pairing import exit_reason
from bastion.adapters.venue import (
    Fill,
    OptionContract,
    UnknownSymbolError,
    VenueAccount,
    VenuePosition,
    unreadable_position,
)
from bastion.adapters.venue_config import Credentials, VenueConfig, credentials_from_env
from bastion.engine.errors import AdapterError, DataError
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot.model import ClosedTrade, Instrument

KEY_VAR = "ALPACA_API_KEY_ID"
SECRET_VAR = "ALPACA_API_SECRET_KEY"
ACTIVITIES_PAGE_SIZE = 100  # the documented maximum
LIVE_BARS_DEFAULT = 200
_NEW_YORK = ZoneInfo("America/New_York")
_ASSET_CLASSES = {"us_equity": "equity", "crypto": "crypto", "us_option": "option"}
DEFAULT_BENCHMARK = "SPY"
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaConfig(VenueConfig):
    paper: bool = True
    trading_url: str | None = None  # None: the SDK's paper (or live) trading endpoint
    data_url: str | None = None  # None: https://data.alpaca.markets
    feed: str = "iex"  # iex is free; sip needs a subscription (Alpaca answers 403 without)
    option_feed: str | None = None  # indicative (free, delayed) | opra; None: Alpaca's default
    option_chain_days: int = 90  # list expiries up to this many days ahead


def parse_occ_symbol(symbol: str, where: str = "alpaca") -> OptionContract:
    """An OCC option symbol (``AAPL240119C00190000``, root padded or not) as a contract.

    The last 15 characters are YYMMDD, C or P, and the strike × 1000 in 8 digits; the rest
    is the root. Expiry is 16:00 New York time on the expiration date. The multiplier is
    the standard 100 (adjusted contracts' deliverables are not in the symbol).
    """
    compact = symbol.replace(" ", "")
    root, date, kind, strike = compact[:-15], compact[-15:-9], compact[-9:-8], compact[-8:]
    if not (1 <= len(root) <= 6 and date.isdigit() and kind in ("C", "P") and strike.isdigit()):
        raise DataError(f"{where}: '{symbol}' is not an OCC option symbol (ROOT YYMMDD C|P STRIKE)")
    try:
        expiry_day = datetime.strptime(date, "%y%m%d")
    except ValueError:
        raise DataError(f"{where}: '{symbol}' has no valid expiration date ({date})") from None
    expires_at = expiry_day.replace(hour=16, tzinfo=_NEW_YORK).astimezone(UTC)
    return OptionContract(
        option_type="call" if kind == "C" else "put",
        strike_usd=Decimal(int(strike)) / 1000,
        expires_at=expires_at,
        underlying_symbol=root,
    )


def timeframe_for(interval_s: int) -> TimeFrame:
    """Alpaca's bar timeframe for an interval; an unsupported one is a fatal config error."""
    minutes, hours, days = interval_s / 60, interval_s / 3600, interval_s / 86_400
    if days == 7:
        return TimeFrame(1, TimeFrameUnit.Week)
    if days == 1:
        return TimeFrame(1, TimeFrameUnit.Day)
    if hours.is_integer() and 1 <= hours <= 23:
        return TimeFrame(int(hours), TimeFrameUnit.Hour)
    if minutes.is_integer() and 1 <= minutes <= 59:
        return TimeFrame(int(minutes), TimeFrameUnit.Minute)
    raise AdapterError(
        f"alpaca: no bar timeframe of {interval_s} s; use whole minutes (60–3540 s), "
        "whole hours (1–23 h), one day or one week"
    )


class AlpacaAdapter:
    """The Alpaca venue. Build it with :meth:`from_env`; it makes no request until asked."""

    def __init__(
        self,
        credentials: Credentials,
        config: AlpacaConfig | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], object] = time.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self._config = config or AlpacaConfig()
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._random = random
        self._account_id = self._config.account_id  # the venue's, once the account is read
        try:
            self._feed = DataFeed(self._config.feed)
        except ValueError:
            feeds = ", ".join(feed.value for feed in DataFeed)
            raise AdapterError(
                f"alpaca: feed {self._config.feed!r} is not one of {feeds}"
            ) from None
        try:
            option_feed = self._config.option_feed
            self._option_feed = None if option_feed is None else OptionsFeed(option_feed)
        except ValueError:
            feeds = ", ".join(feed.value for feed in OptionsFeed)
            raise AdapterError(
                f"alpaca: option_feed {self._config.option_feed!r} is not one of {feeds}"
            ) from None
        key, secret = credentials.values()
        self._trading = TradingClient(
            api_key=key,
            secret_key=secret,
            paper=self._config.paper,
            raw_data=True,
            url_override=self._config.trading_url,
        )
        self._data = StockHistoricalDataClient(
            api_key=key, secret_key=secret, raw_data=True, url_override=self._config.data_url
        )
        if self._config.option_chain_days < 1:
            raise AdapterError(
                f"alpaca: option_chain_days must be at least 1, got "
                f"{self._config.option_chain_days}"
            )
        self._options = OptionHistoricalDataClient(
            api_key=key, secret_key=secret, raw_data=True, url_override=self._config.data_url
        )
        for client in (self._trading, self._data, self._options):
            _take_over_retries_and_timeouts(client, self._config.timeout_s)
        self._ledger = TradeLedger(allow_short=True, horizon_s=self._config.trade_history_horizon_s)
        self._order_reasons: dict[str, str] = {}  # order id → exit reason
        self._asset_classes: dict[str, str] = {}  # symbol → asset class, from GET /v2/assets
        self._rules = RuleCache(self._clock)
        self._bars = BarMemo()  # unchanged bar rows → the same Bar objects, poll after poll
        self._chains = ChainCache(self._clock.now)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], config: AlpacaConfig | None = None, **kwargs: Any
    ) -> AlpacaAdapter:
        """Credentials from ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY in ``environ``."""
        return cls(credentials_from_env(environ, "alpaca", KEY_VAR, SECRET_VAR), config, **kwargs)

    @property
    def name(self) -> str:
        return "alpaca"

    @property
    def trading_url(self) -> str:
        base = self._trading._base_url  # a BaseURL enum member unless overridden
        return str(getattr(base, "value", base))

    def __repr__(self) -> str:
        return (
            f"AlpacaAdapter(trading_url={self.trading_url!r}, paper={self._config.paper}, "
            f"account_type={self._config.account_type!r})"
        )

    def close(self) -> None:
        self._trading._session.close()
        self._data._session.close()
        self._options._session.close()

    def restricted_to(self, owns: Callable[[str], bool]) -> SingleAccountScope:
        """This adapter for a `bastion serve --ray` partition: no account request at all
        unless `owns` the key's account; market data as before (`single_account`)."""
        return SingleAccountScope(self, owns, lambda: self._account_id, self._known_account_id)

    # -- account side ------------------------------------------------------------------

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        where = "alpaca GET /v2/account"
        raw = p.as_mapping(self._call(where, self._trading.get_account), where)
        self._account_id = self._config.account_id or p.text(raw, "id", where)
        return [
            VenueAccount(
                id=self._account_id,
                type=self._config.account_type,
                equity_usd=p.decimal(raw, "equity", where),
                cash_usd=p.decimal(raw, "cash", where),
                # Optional: absent on some account types; the builder then tracks it.
                day_start_equity_usd=p.optional_decimal(raw, "last_equity", where),
            )
        ]

    def fetch_positions(self) -> Sequence[VenuePosition]:
        where = "alpaca GET /v2/positions"
        account_id = self._known_account_id()
        rows = p.as_list(self._call(where, self._trading.get_all_positions), where)
        return [self._row(row, account_id, index) for index, row in enumerate(rows)]

    def _row(self, row: object, account_id: str, index: int) -> VenuePosition:
        """One position row; a row that cannot be read comes back with ``problem`` set."""
        where = f"alpaca GET /v2/positions [{index}]"
        try:
            return self._position(p.as_mapping(row, where, "position"), account_id, index)
        except DataError as error:
            known = row if isinstance(row, Mapping) else {}
            symbol, asset_id = known.get("symbol"), known.get("asset_id")
            raw_class = known.get("asset_class")
            return unreadable_position(
                id=asset_id if isinstance(asset_id, str) and asset_id else f"alpaca:{index}",
                account_id=account_id,
                symbol=symbol if isinstance(symbol, str) and symbol else "?",
                asset_class=_ASSET_CLASSES.get(str(raw_class), "equity"),
                problem=error.message,
            )

    def check_symbol(self, symbol: str) -> None:
        """UnknownSymbolError unless Alpaca lists ``symbol`` (``GET /v2/assets/{symbol}``)."""
        where = f"alpaca GET /v2/assets/{symbol}"
        try:
            asset = self._call(where, lambda: self._trading.get_asset(symbol))
        except AdapterError as error:
            if "HTTP 404" not in str(error):
                raise
            raise UnknownSymbolError(
                f"{where}: Alpaca does not list {symbol!r} (HTTP 404); use a US equity symbol "
                "(e.g. SPY) in the alpaca feed config",
                venue="alpaca",
                symbol=symbol,
            ) from None
        raw_class = asset.get("class") if isinstance(asset, Mapping) else None
        if raw_class in _ASSET_CLASSES:
            self._asset_classes[symbol] = _ASSET_CLASSES[str(raw_class)]

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """Asset class from ``GET /v2/assets/{symbol}`` where :meth:`check_symbol` read it,
        else from the position; Alpaca gives no sector. Makes no request."""
        classes = {position.symbol: position.asset_class for position in positions}
        classes |= self._asset_classes
        return {symbol: Instrument(symbol, asset_class) for symbol, asset_class in classes.items()}

    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        """:meth:`instruments` plus each asset's rules from ``GET /v2/assets/{symbol}``
        (alpaca-py ``Asset``; cached an hour: :class:`~bastion.adapters.instrument_rules.
        RuleCache`): ``price_increment`` → tick size, ``min_trade_increment`` → lot size,
        ``min_order_size`` → min quantity (crypto); an equity that is not ``fractionable``
        trades whole shares (lot size 1). Options have no asset rules here."""
        wanted = [position for position in positions if position.problem is None]
        found = dict(self.instruments(wanted))
        found |= {symbol: Instrument(symbol, "equity") for symbol in symbols if symbol not in found}
        return self._rules.fill(
            found,
            self._asset_rules,
            _asset_where,
            asks=lambda instrument: instrument.asset_class != "option",
            settled=lambda instrument: replace(
                instrument,
                asset_class=self._asset_classes.get(instrument.symbol, instrument.asset_class),
            ),
        )

    def _asset_rules(self, symbol: str) -> RuleRead:
        where = _asset_where(symbol)
        asset = p.as_mapping(self._call(where, lambda: self._trading.get_asset(symbol)), where)
        raw_class = asset.get("class")
        if raw_class in _ASSET_CLASSES:  # the asset's own class, as check_symbol reads it
            self._asset_classes[symbol] = _ASSET_CLASSES[str(raw_class)]
        reader = RuleReader(symbol, where)
        reader.take("tick_size", asset.get("price_increment"), "price_increment")
        reader.take("lot_size", asset.get("min_trade_increment"), "min_trade_increment")
        reader.take("min_quantity", asset.get("min_order_size"), "min_order_size")
        whole_shares = asset.get("class") == "us_equity" and asset.get("fractionable") is False
        if whole_shares and "lot_size" not in reader.rules:
            reader.take("lot_size", 1, "fractionable")
        return reader.read()

    def _position(self, raw: Mapping[str, object], account_id: str, index: int) -> VenuePosition:
        where = f"alpaca GET /v2/positions [{index}]"
        symbol = p.text(raw, "symbol", where)
        raw_class = p.text(raw, "asset_class", where)
        if raw_class not in _ASSET_CLASSES:
            raise DataError(
                f"{where}: field 'asset_class' is {raw_class!r}, "
                "not one of us_equity, crypto, us_option"
            )
        asset_class = _ASSET_CLASSES[raw_class]
        option = parse_occ_symbol(symbol, where) if asset_class == "option" else None
        quantity = abs(p.decimal(raw, "qty", where))
        side = p.text(raw, "side", where)
        if side not in ("long", "short"):
            raise DataError(f"{where}: field 'side' is {side!r}, not long or short")
        price = p.optional_decimal(raw, "current_price", where)
        if price is None:  # left out when the venue has no quote: derive it from the value
            size = quantity * (option.multiplier if option else Decimal(1))
            if not size:
                raise DataError(f"{where}: field 'current_price' is missing and qty is 0")
            price = abs(p.decimal(raw, "market_value", where)) / size
        return VenuePosition(
            id=p.text(raw, "asset_id", where),
            account_id=account_id,
            symbol=symbol,
            asset_class=asset_class,
            quantity=quantity,
            side=side,
            entry_price_usd=p.decimal(raw, "avg_entry_price", where),
            price_usd=price,
            strategy_id=self._config.strategy_id,
            option=option,
        )

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        where = "alpaca GET /v2/account/activities/FILL"
        account_id = self._known_account_id()
        # `after` is exclusive: ask from just before `since`, keep what is at or after it.
        params: dict[str, Any] = {
            "after": (since - timedelta(milliseconds=1)).astimezone(UTC).isoformat(),
            "direction": "asc",
            "page_size": ACTIVITIES_PAGE_SIZE,
        }
        fills: list[Fill] = []
        while True:
            page = p.as_list(
                self._call(where, lambda: self._trading.get("/account/activities/FILL", params)),
                where,
            )
            for index, row in enumerate(page):
                fill = self._fill(
                    p.as_mapping(row, where, "activity"), account_id, f"{where} [{index}]"
                )
                if fill.filled_at >= since:
                    fills.append(fill)
            if len(page) < ACTIVITIES_PAGE_SIZE:
                break
            params["page_token"] = p.text(p.as_mapping(page[-1], where), "id", where)
        return sorted(fills, key=lambda fill: (fill.filled_at, fill.id))

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """Closed trades from the FILL activities, paired FIFO (incremental: see
        :mod:`trade_ledger`). ``sell_short`` opens a short, ``sell`` closes a long.

        An activity does not say its order's type: for each *closing* order,
        ``TradingClient.get_order_by_id`` (``GET /v2/orders/{id}``, once per order) gives it
        — stop, stop_limit, trailing_stop → stop_loss; a limit order of class bracket, oco
        or oto (a take-profit leg) → take_profit; anything else → signal. Alpaca marks no
        fill as a liquidation. An order Alpaca no longer has (404), or a fill without an order
        id, stays signal."""
        return self._ledger.poll(self.fetch_fills, since, exit_reasons=self._exit_reasons)[1]

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        """Fills and closed trades from one fill-history fetch (see :mod:`trade_ledger`)."""
        return self._ledger.poll(self.fetch_fills, trades_since, fills_since, self._exit_reasons)

    def _exit_reasons(self, parts: Sequence[ClosedTrade]) -> dict[str, str]:
        for part in parts:
            if part.id in self._order_reasons:
                continue
            where = f"alpaca GET /v2/orders/{part.id}"
            fetch = partial(self._trading.get_order_by_id, part.id)
            try:
                order = p.as_mapping(self._call(where, fetch), where)
            except DataError:  # no order id (not a UUID) or an unreadable answer
                continue  # the exit stays "signal"
            except AdapterError as error:
                if "HTTP 404" not in str(error):
                    raise
                continue  # gone: the exit stays "signal"
            order_type, order_class = order.get("type"), order.get("order_class")
            self._order_reasons[part.id] = exit_reason(
                order_type if isinstance(order_type, str) else "",
                take_profit_leg=order_class in ("bracket", "oco", "oto"),
            )
        return {
            part.id: self._order_reasons[part.id]
            for part in parts
            if part.id in self._order_reasons
        }

    def _fill(self, raw: Mapping[str, object], account_id: str, where: str) -> Fill:
        side = p.text(raw, "side", where)
        if side not in ("buy", "sell", "sell_short"):
            raise DataError(f"{where}: field 'side' is {side!r}, not buy, sell or sell_short")
        order_id = raw.get("order_id")
        effect = {"sell_short": "open", "sell": "close"}.get(side, "")
        return Fill(
            id=p.text(raw, "id", where),
            account_id=account_id,
            symbol=p.text(raw, "symbol", where),
            side="buy" if side == "buy" else "sell",
            quantity=p.decimal(raw, "qty", where),
            price_usd=p.decimal(raw, "price", where),
            filled_at=p.timestamp(raw, "transaction_time", where),
            strategy_id=self._config.strategy_id,
            order_id=order_id if isinstance(order_id, str) else "",
            position_effect=effect,
        )

    # -- market data -------------------------------------------------------------------

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        where = f"alpaca GET /v2/stocks/bars {request.symbol}"
        timeframe = timeframe_for(request.interval_s)
        if request.live:
            limit = request.limit or LIVE_BARS_DEFAULT
            # Newest first, far enough back to cover weekends and overnight gaps.
            lookback = timedelta(seconds=limit * request.interval_s * 3, days=4)
            query = StockBarsRequest(
                symbol_or_symbols=request.symbol,
                timeframe=timeframe,
                start=request.start or self._clock.now() - lookback,
                limit=limit,
                feed=self._feed,
                sort=Sort.DESC,
            )
        else:
            query = StockBarsRequest(
                symbol_or_symbols=request.symbol,
                timeframe=timeframe,
                start=request.start,
                end=request.end,
                limit=request.limit,
                feed=self._feed,
                sort=Sort.ASC,
            )
        raw = p.as_mapping(self._call(where, lambda: self._data.get_stock_bars(query)), where)
        rows = p.as_list(raw.get(request.symbol, []), where, "bars")
        series_key = (request.symbol, request.interval_s, request.live)
        parse = self._bars.begin(series_key)
        bars = []
        for index, row in enumerate(rows):
            values = p.as_mapping(row, where, "bar")
            try:
                key = raw_key(_BAR_VALUES(values))  # what _bar reads
            except KeyError:  # a field missing: _bar says which
                key = raw_key([values.get(name) for name in _BAR_FIELDS])
            bars.append(parse.bar(key, _bar, values, f"{where} [{index}]"))
        self._bars.end(series_key, parse)
        return sorted(bars, key=lambda bar: bar.timestamp)

    def fetch_quote(self, symbol: str) -> Quote:
        where = f"alpaca GET /v2/stocks/quotes/latest {symbol}"
        query = StockLatestQuoteRequest(symbol_or_symbols=symbol, feed=self._feed)
        raw = p.as_mapping(
            self._call(where, lambda: self._data.get_stock_latest_quote(query)), where
        )
        if raw.get(symbol) is None:  # Alpaca leaves out a symbol it has no quote for
            raise UnknownSymbolError(
                f"{where}: Alpaca has no quote for {symbol!r} on the {self._config.feed} "
                "feed; check the symbol in the alpaca feed config",
                venue="alpaca",
                symbol=symbol,
            )
        quote = p.as_mapping(p.field(raw, symbol, where), where, "quote")
        return Quote(
            symbol=symbol,
            bid=p.decimal(quote, "bp", where),
            ask=p.decimal(quote, "ap", where),
            timestamp=p.timestamp(quote, "t", where),
        )

    def fetch_option_chains(self, underlyings: Sequence[str]) -> ChainFetch:
        """The listed chain of each underlying (see the module docstring), read again
        every ``option_chains.REFRESH_S`` (:class:`~bastion.adapters.option_chains.
        ChainCache`); an underlying whose request fails (after retries) keeps its last
        chain, or is left out, with the error's words."""
        return self._chains.fetch(underlyings, self._chain_of)

    def _chain_of(self, underlying: str) -> ChainRead:
        today = self._clock.now().astimezone(_NEW_YORK).date()
        where = f"alpaca GET /v1beta1/options/snapshots/{underlying}"
        query = OptionChainRequest(
            underlying_symbol=underlying,
            feed=self._option_feed,
            expiration_date_gte=today,
            expiration_date_lte=today + timedelta(days=self._config.option_chain_days),
        )
        try:
            raw = self._call(where, partial(self._options.get_option_chain, query))
        except AdapterError as error:  # DataError and TransientAdapterError included
            return None, [(f"option_chains[{underlying!r}]", str(error))]
        read = read_chain(raw, underlying, self._clock.now(), parse_occ_symbol, where)
        return read.chain, [(f"option_chains[{underlying!r}] {s}", why) for s, why in read.left_out]

    # -- plumbing ----------------------------------------------------------------------

    def _known_account_id(self) -> str:
        if self._account_id is None:
            self.fetch_accounts()
        assert self._account_id is not None
        return self._account_id

    def _call(self, where: str, call: Callable[[], T]) -> T:
        return call_with_retry(
            lambda: self._once(where, call),
            self._config.retry,
            sleep=self._sleep,
            random=self._random,
            venue=self.name,
        )

    def _once(self, where: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except APIError as error:
            response = error.response
            raise error_for_status(
                where,
                error.status_code or 0,
                str(error),
                response.headers if response is not None else {},
                credential_hint=f"{self._credentials.hint} (paper keys for the paper endpoint)",
                secrets=self._credentials.values(),
                now=self._clock.now(),
            ) from None
        except requests.RequestException as error:
            raise error_for_transport(where, error, self._config.timeout_s) from None
        except ValueError as error:  # the SDK's "does not match any known keys"
            raise DataError(f"{where}: unreadable answer: {error}") from None


_BAR_FIELDS = ("t", "o", "h", "l", "c", "v")
_BAR_VALUES = itemgetter(*_BAR_FIELDS)


def _bar(raw: Mapping[str, object], where: str) -> Bar:
    return Bar(
        timestamp=p.timestamp(raw, "t", where),
        open=p.decimal(raw, "o", where),
        high=p.decimal(raw, "h", where),
        low=p.decimal(raw, "l", where),
        close=p.decimal(raw, "c", where),
        volume=p.decimal(raw, "v", where),
    )


def _take_over_retries_and_timeouts(client: RESTClient, timeout_s: float) -> None:
    """Switch off the SDK's blind retry and bound its requests (see the module docstring)."""
    if not isinstance(getattr(client, "_session", None), requests.Session) or not hasattr(
        client, "_retry"
    ):
        raise AdapterError(
            "alpaca: this alpaca-py version no longer has RESTClient._session / _retry; "
            "pin alpaca-py to a tested version (see pyproject.toml)"
        )
    client._retry = 0
    install_timeout(client._session, timeout_s)


def _asset_where(symbol: str) -> str:
    return f"alpaca GET /v2/assets/{symbol}"
