"""Binance spot on python-binance: balances, fills, klines and the best bid / ask.

The client is built as ``Client(key, secret, ping=False, requests_params={"timeout": ...})``
and pointed at ``base_url`` by setting ``API_URL``: the default constructor pings the real
exchange, and ``testnet=True`` hard-codes its own URL. Nothing goes on the network until a
``fetch_*`` call. ``verbose`` stays off: python-binance's verbose log prints request
headers, which carry the API key.

Endpoints: ``GET /api/v3/account`` (signed) for balances; ``GET /api/v3/ticker/price`` to
value them; ``GET /api/v3/myTrades`` (signed, one symbol per call) for fills and, paired
FIFO, closed trades (``GET /api/v3/order`` for the type of each closing order);
``GET /api/v3/klines``; ``GET /api/v3/ticker/bookTicker`` for quotes.

Valuation: spot has one account whose equity is the sum of every balance (free + locked)
at its ``<ASSET><valuation_asset>`` last price, ``valuation_asset`` (USDT) counted 1:1 as
USD. A held asset without such a ticker (unlisted, delisted), or a balance row that cannot
be read, is left out of equity and comes back as a position with ``problem`` set, naming
it — the builder lists it as unevaluable and evaluates the rest. Add dust to
``ignore_assets`` rather than have it flagged on every poll. Spot balances have no cost
basis: a position's ``entry_price_usd`` is its current price.

Symbols: ``check_symbol`` reads ``GET /api/v3/exchangeInfo?symbol=`` (a symbol Binance does
not list is 400 ``-1121 Invalid symbol.``: :class:`UnknownSymbolError`, naming the request)
and, once, the venue's own ``rateLimits`` (:attr:`BinanceAdapter.rate_limits`; the published
defaults in :data:`PUBLISHED_RATE_LIMITS` until then).

Request weight: every request first spends its documented weight (:data:`WEIGHTS`) from a
token bucket sized from the REQUEST_WEIGHT limit L (:meth:`BinanceAdapter.request_weight_limit`:
0.9 L per minute plus L / 10 as burst, so never more than L in any minute). ``check_symbol``
re-sizes it when exchangeInfo states another limit, and the venue's ``X-MBX-USED-WEIGHT-1M``
answer header drains it to what is left of 0.9 L. An empty bucket is a
:class:`~bastion.adapters.throttle.RateLimited` naming the wait, slept through by the retry
loop up to ``retry.max_delay_s``, else handed back: the request is not sent. A 429 / 418
``Retry-After`` that ends a call blocks the bucket for that long.

Binance's HTTP 403 is a WAF block (rate or security rule), not a key problem; it stays
fatal like every 403 (retrying into a WAF rule earns an IP ban), with Binance's meaning in
the message. 418 (IP banned after ignoring 429s) is transient with its ``Retry-After``.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from binance.client import Client
from binance.exceptions import (
    BinanceAPIException,
    BinanceRequestException,
)

from bastion.adapters import payload as p
from bastion.adapters.bar_memo import BarMemo, raw_key
from bastion.adapters.http_errors import error_for_status, error_for_transport, scrub
from bastion.adapters.instrument_rules import (
    InstrumentFetch,
    RuleCache,
    RuleRead,
    RuleReader,
)
from bastion.adapters.retry import call_with_retry
from bastion.adapters.single_account import SingleAccountScope
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, SystemClock
from bastion.adapters.sources.ratelimit import RateLimit, TokenBucket
from bastion.adapters.throttle import RequestThrottle
from bastion.adapters.trade_ledger import TradeLedger
from bastion.adapters.trade_pairing import exit_reason
from bastion.adapters.venue import (
    Fill,
    UnknownSymbolError,
    VenueAccount,
    VenuePosition,
    unreadable_position,
)
from bastion.adapters.venue_config import Credentials, VenueConfig, credentials_from_env
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot.model import ClosedTrade, Instrument

KEY_VAR = "BINANCE_API_KEY"
SECRET_VAR = "BINANCE_API_SECRET"
PAGE_LIMIT = 1000  # klines and myTrades maximum
KLINE_FIELDS = 12  # open time, o, h, l, c, volume, close time, quote volume, trades, ...
INTERVALS = {
    1: "1s", 60: "1m", 180: "3m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h",
    7200: "2h", 14400: "4h", 21600: "6h", 28800: "8h", 43200: "12h", 86400: "1d",
    259200: "3d", 604800: "1w",
}  # fmt: skip
# Binance error codes that mean the key pair, or this host, is wrong: retrying cannot help.
_KEY_REFUSED = frozenset({-1022, -2014, -2015})  # bad signature, bad key format, key refused
_CLOCK_SKEW = -1021  # timestamp outside recvWindow
_NO_SUCH_ORDER = -2013  # {"code": -2013, "msg": "Order does not exist."} (errors.md)
_INVALID_SYMBOL = (
    -1121
)  # {"code": -1121, "msg": "Invalid symbol."} (binance-spot-api-docs, errors.md)
DEFAULT_BENCHMARK = "BTCUSDT"
# Binance's published spot limits (binance-spot-api-docs, enums.md "Rate limiters", REQUEST_WEIGHT
# raised from 1,200 to 6,000 per minute on 2023-08-25); the venue's own exchangeInfo.rateLimits
# replace them at start.
PUBLISHED_RATE_LIMITS = (
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
)
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_INTERVAL_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}  # in header names
BUDGET_RATIO = 0.9  # of the venue's REQUEST_WEIGHT limit, like the BINANCE preset
# Request weight of each call this adapter makes (binance-spot-api-docs rest-api.md, read
# 2026-12-01): ticker/price without a symbol is 4, bookTicker with one symbol is 2, myTrades
# without orderId is 20.
WEIGHTS = {
    "account": 20,  # GET /api/v3/account
    "ticker/price": 4,  # GET /api/v3/ticker/price, every symbol
    "myTrades": 20,  # GET /api/v3/myTrades, without orderId
    "order": 4,  # GET /api/v3/order (the type of a closing order, once per order)
    "klines": 2,  # GET /api/v3/klines
    "ticker/bookTicker": 2,  # GET /api/v3/ticker/bookTicker?symbol=
    "exchangeInfo": 20,  # GET /api/v3/exchangeInfo
}
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class BinanceConfig(VenueConfig):
    base_url: str = "https://api.binance.com"
    valuation_asset: str = "USDT"  # equity, prices and fees are valued in it, 1:1 as USD
    fill_symbols: tuple[str, ...] = ()  # myTrades needs a symbol: the pairs to read fills of
    # (and closed trades: fetch_trades pairs the same fills)
    ignore_assets: tuple[str, ...] = ()  # balances left out of equity and positions
    quote_assets: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "TUSD", "BTC", "ETH", "BNB")


class BinanceAdapter:
    """The Binance spot venue. Build it with :meth:`from_env`; construction is offline."""

    def __init__(
        self,
        credentials: Credentials,
        config: BinanceConfig | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], object] = time.sleep,
        random: Callable[[], float] = random_module.random,
        throttle: RequestThrottle | None = None,
    ) -> None:
        """``throttle``: share one between adapters on the same IP; else one of its own."""
        self._config = config or BinanceConfig()
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._random = random
        self._account_id = self._config.account_id  # else "binance-<uid>", once read
        key, secret = credentials.values()
        self._client = Client(
            key, secret, ping=False, requests_params={"timeout": self._config.timeout_s}
        )
        self._client.API_URL = self._config.base_url.rstrip("/") + "/api"
        self._rate_limits: tuple[Mapping[str, object], ...] = PUBLISHED_RATE_LIMITS
        self._rate_limits_from = "published defaults (2023-08-25)"
        self._throttle = throttle or RequestThrottle(
            TokenBucket(self.request_weight_limit(), self._clock), self.name, "request weight"
        )
        self._ledger = TradeLedger(horizon_s=self._config.trade_history_horizon_s)
        self._order_reasons: dict[str, str] = {}  # "<symbol>:<orderId>" → exit reason
        self._rules = RuleCache(self._clock)
        self._bars = BarMemo()  # unchanged klines → the same Bar objects, poll after poll

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], config: BinanceConfig | None = None, **kwargs: Any
    ) -> BinanceAdapter:
        """Credentials from BINANCE_API_KEY / BINANCE_API_SECRET in ``environ``."""
        return cls(credentials_from_env(environ, "binance", KEY_VAR, SECRET_VAR), config, **kwargs)

    @property
    def name(self) -> str:
        return "binance"

    @property
    def api_url(self) -> str:
        return str(self._client.API_URL)

    def __repr__(self) -> str:
        return (
            f"BinanceAdapter(api_url={self.api_url!r}, account_type={self._config.account_type!r})"
        )

    def close(self) -> None:
        self._client.session.close()

    def restricted_to(self, owns: Callable[[str], bool]) -> SingleAccountScope:
        """This adapter for a `bastion serve --ray` partition: no account request at all
        unless `owns` the key's account; market data as before (`single_account`)."""
        return SingleAccountScope(self, owns, lambda: self._account_id, self._known_account_id)

    # -- account side ------------------------------------------------------------------

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        account_id, holdings, _unusable, prices = self._holdings()
        valuation = self._config.valuation_asset
        equity = sum(
            (
                self._value(asset, quantity, prices)
                for asset, quantity in holdings.items()
                if self._valued(asset, prices)  # the others are listed as unevaluable
            ),
            Decimal(0),
        )
        return [
            VenueAccount(
                id=account_id,
                type=self._config.account_type,
                equity_usd=equity,
                cash_usd=holdings.get(valuation, Decimal(0)),
            )
        ]

    def fetch_positions(self) -> Sequence[VenuePosition]:
        account_id, holdings, unusable, prices = self._holdings()
        valuation = self._config.valuation_asset
        positions = []
        for asset, quantity in sorted(holdings.items()):
            if asset == valuation:
                continue  # that is the cash
            if not self._valued(asset, prices):
                unusable[asset] = (
                    f"binance: no {asset}{valuation} price to value {quantity} {asset} (left "
                    f"out of equity); if it is dust or delisted, add {asset!r} to "
                    "ignore_assets in the binance feed config"
                )
                continue
            price = self._value(asset, quantity, prices) / quantity
            positions.append(
                VenuePosition(
                    id=f"{account_id}:{asset}",
                    account_id=account_id,
                    symbol=f"{asset}{valuation}",
                    asset_class="crypto",
                    quantity=quantity,
                    side="long",
                    entry_price_usd=price,  # spot has no cost basis (module docstring)
                    price_usd=price,
                    strategy_id=self._config.strategy_id,
                )
            )
        for asset, problem in sorted(unusable.items()):
            positions.append(
                unreadable_position(
                    id=f"{account_id}:{asset}",
                    account_id=account_id,
                    symbol=f"{asset}{valuation}",
                    asset_class="crypto",
                    problem=problem,
                )
            )
        return positions

    def _holdings(
        self,
    ) -> tuple[str, dict[str, Decimal], dict[str, str], Mapping[str, Decimal]]:
        """The account id, non-zero holdings (free + locked) by asset, the rows that could
        not be read (asset or row index → why), and all last prices."""
        where = "binance GET /api/v3/account"
        raw = p.as_mapping(
            self._call(
                where,
                WEIGHTS["account"],
                lambda: self._client.get_account(omitZeroBalances="true"),
            ),
            where,
        )
        if self._account_id is None:
            self._account_id = f"binance-{raw.get('uid', 'spot')}"
        account_id = self._account_id
        holdings: dict[str, Decimal] = {}
        unusable: dict[str, str] = {}
        for index, row in enumerate(p.as_list(p.field(raw, "balances", where), where, "balances")):
            at = f"{where} balances[{index}]"
            asset = row.get("asset") if isinstance(row, Mapping) else None
            name = asset if isinstance(asset, str) and asset else f"balances[{index}]"
            try:
                balance = p.as_mapping(row, at, "balance")
                asset = p.text(balance, "asset", at)
                quantity = p.decimal(balance, "free", at) + p.decimal(balance, "locked", at)
            except DataError as error:  # one unreadable row: left out of equity, listed
                if name not in self._config.ignore_assets:
                    unusable[name] = f"{error.message} (left out of equity)"
                continue
            if quantity and asset not in self._config.ignore_assets:
                holdings[asset] = quantity
        return account_id, holdings, unusable, self._prices()

    def _valued(self, asset: str, prices: Mapping[str, Decimal]) -> bool:
        valuation = self._config.valuation_asset
        return (
            asset == valuation
            or f"{asset}{valuation}" in prices
            or bool(prices.get(f"{valuation}{asset}"))
        )

    def check_symbol(self, symbol: str) -> None:
        """UnknownSymbolError unless Binance lists ``symbol``; reads the venue's rateLimits."""
        where = f"binance GET /api/v3/exchangeInfo {symbol}"
        info = p.as_mapping(
            self._call(
                where,
                WEIGHTS["exchangeInfo"],
                lambda: self._client._get("exchangeInfo", data={"symbol": symbol}),
                symbol,
            ),
            where,
        )
        listed = p.as_list(p.field(info, "symbols", where), where, "field 'symbols'")
        if not any(isinstance(row, Mapping) and row.get("symbol") == symbol for row in listed):
            raise UnknownSymbolError(
                f"{where}: Binance does not list {symbol!r}; use a Binance spot symbol "
                "(e.g. BTCUSDT) in the binance feed config",
                venue="binance",
                symbol=symbol,
            )
        limits = info.get("rateLimits")
        if isinstance(limits, list) and limits and all(isinstance(r, Mapping) for r in limits):
            self._rate_limits = tuple(limits)
            self._rate_limits_from = "exchangeInfo.rateLimits"
            self._throttle.relimit(self.request_weight_limit())

    @property
    def rate_limits(self) -> tuple[Mapping[str, object], ...]:
        """Binance's limits: from exchangeInfo once ``check_symbol`` ran, else published."""
        return self._rate_limits

    def request_weight_limit(self) -> RateLimit:
        """The request-weight budget per second, 90 % of the venue's per-minute limit."""
        limit, seconds, _header = self._request_weight()
        return RateLimit(
            rate_per_s=limit * BUDGET_RATIO / seconds,
            burst=max(1, limit // 10),
            published=f"{limit} request weight per {seconds} s ({self._rate_limits_from})",
        )

    def _request_weight(self) -> tuple[int, int, str]:
        """The REQUEST_WEIGHT limit, its window in seconds and the header counting it."""
        for row in self._rate_limits:
            if row.get("rateLimitType") == "REQUEST_WEIGHT":
                interval, count = str(row.get("interval")), int(str(row.get("intervalNum", 1)))
                header = f"x-mbx-used-weight-{count}{_INTERVAL_LETTER.get(interval, 'M')}"
                return int(str(row.get("limit"))), _INTERVAL_S.get(interval, 60) * count, header
        raise DataError("binance: rateLimits holds no REQUEST_WEIGHT limit")

    def _resync(self, response: object) -> None:
        """Drain the bucket to what Binance's used-weight header leaves of the budget."""
        headers = getattr(response, "headers", None)
        if not isinstance(headers, Mapping):
            return
        limit, _seconds, header = self._request_weight()
        used = headers.get(header)
        if used is not None and str(used).isdigit():
            self._throttle.at_most(limit * BUDGET_RATIO - int(used))

    def _prices(self) -> dict[str, Decimal]:
        where = "binance GET /api/v3/ticker/price"
        rows = p.as_list(
            self._call(where, WEIGHTS["ticker/price"], self._client.get_all_tickers), where
        )
        prices = {}
        for index, row in enumerate(rows):
            ticker = p.as_mapping(row, f"{where} [{index}]", "ticker")
            prices[p.text(ticker, "symbol", where)] = p.decimal(ticker, "price", where)
        return prices

    def _value(self, asset: str, amount: Decimal, prices: Mapping[str, Decimal]) -> Decimal:
        """``amount`` of ``asset`` in the valuation asset; no ticker is an error, never a zero."""
        valuation = self._config.valuation_asset
        if asset == valuation:
            return amount
        if f"{asset}{valuation}" in prices:
            return amount * prices[f"{asset}{valuation}"]
        inverse = prices.get(f"{valuation}{asset}")
        if inverse:
            return amount / inverse
        raise DataError(
            f"binance: no {asset}{valuation} price to value {amount} {asset}; if it is dust "
            f"or delisted, add {asset!r} to ignore_assets in the binance adapter config"
        )

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        account_id = self._known_account_id()
        valuation = self._config.valuation_asset
        fills: list[Fill] = []
        prices: dict[str, Decimal] = {}
        for symbol in self._config.fill_symbols:
            quote = self._quote_asset(symbol)
            for raw in self._trades(symbol, since):
                where = f"binance GET /api/v3/myTrades {symbol} trade {raw.get('id')}"
                fee_asset = p.text(raw, "commissionAsset", where)
                if not prices and {quote, fee_asset} != {valuation}:
                    prices = self._prices()  # only when something is not in USDT already
                fill = self._fill(raw, symbol, account_id, where, prices)
                if fill.filled_at >= since:
                    fills.append(fill)
        return sorted(fills, key=lambda fill: (fill.filled_at, fill.id))

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """Closed trades from the ``myTrades`` fills of ``fill_symbols``, paired FIFO
        (incremental: see :mod:`trade_ledger`). Spot cannot be short: a sell without a
        buy on record (bought before the history fetched) makes no trade.

        A fill does not say its order's type: for each *closing* order, ``GET
        /api/v3/order`` (weight 4, once per order) gives it — STOP_LOSS(_LIMIT) →
        stop_loss, TAKE_PROFIT(_LIMIT) → take_profit, else signal; an order Binance no
        longer has (-2013) or an unreadable answer stays signal, and is asked again next
        poll only if it closes more. Spot has no liquidations.
        """
        return self._ledger.poll(self.fetch_fills, since, exit_reasons=self._exit_reasons)[1]

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        """Fills and closed trades from one fill-history fetch (see :mod:`trade_ledger`)."""
        return self._ledger.poll(self.fetch_fills, trades_since, fills_since, self._exit_reasons)

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """Every Binance spot pair is crypto (sector unknown)."""
        symbols = {position.symbol for position in positions} | set(self._config.fill_symbols)
        return {symbol: Instrument(symbol, "crypto") for symbol in symbols}

    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        """:meth:`instruments` plus each pair's filters from ``GET /api/v3/exchangeInfo
        ?symbol=`` (cached an hour: :class:`~bastion.adapters.instrument_rules.RuleCache`):
        PRICE_FILTER tickSize, LOT_SIZE stepSize / minQty / maxQty, NOTIONAL (else
        MIN_NOTIONAL) minNotional / maxNotional. A zero is Binance's "rule disabled".
        Price and notional rules are in the quote asset: kept only when it is
        ``valuation_asset`` (USDT, counted 1:1 as USD)."""
        wanted = [position for position in positions if position.problem is None]
        found = dict(self.instruments(wanted))
        found |= {symbol: Instrument(symbol, "crypto") for symbol in symbols if symbol not in found}
        return self._rules.fill(found, self._symbol_rules, _exchange_info_where)

    def _symbol_rules(self, symbol: str) -> RuleRead:
        where = _exchange_info_where(symbol)
        info = p.as_mapping(
            self._call(
                where,
                WEIGHTS["exchangeInfo"],
                lambda: self._client._get("exchangeInfo", data={"symbol": symbol}),
                symbol,
            ),
            where,
        )
        listed = p.as_list(p.field(info, "symbols", where), where, "field 'symbols'")
        row = next(
            (r for r in listed if isinstance(r, Mapping) and r.get("symbol") == symbol), None
        )
        if row is None:
            raise DataError(f"{where}: Binance does not list {symbol!r}")
        raw_filters = row.get("filters")
        filters = {
            str(item.get("filterType")): item
            for item in (raw_filters if isinstance(raw_filters, list) else [])
            if isinstance(item, Mapping)
        }
        reader = RuleReader(symbol, where)
        lot = filters.get("LOT_SIZE", {})
        reader.take("lot_size", lot.get("stepSize"), "LOT_SIZE.stepSize")
        reader.take("min_quantity", lot.get("minQty"), "LOT_SIZE.minQty")
        reader.take("max_quantity", lot.get("maxQty"), "LOT_SIZE.maxQty")
        notional_name = "NOTIONAL" if "NOTIONAL" in filters else "MIN_NOTIONAL"
        notional = filters.get(notional_name, {})
        price_rules = (
            ("tick_size", filters.get("PRICE_FILTER", {}).get("tickSize"), "PRICE_FILTER.tickSize"),
            ("min_notional", notional.get("minNotional"), f"{notional_name}.minNotional"),
            ("max_notional", notional.get("maxNotional"), f"{notional_name}.maxNotional"),
        )
        quote = row.get("quoteAsset")
        valuation = self._config.valuation_asset
        for name, raw, venue_field in price_rules:
            if quote == valuation:
                reader.take(name, raw, venue_field)
            elif raw is not None and str(raw).strip("0.") != "":
                reader.skip(name, f"{venue_field} is in {quote}, not {valuation}")
        return reader.read()

    def _exit_reasons(self, parts: Sequence[ClosedTrade]) -> dict[str, str]:
        for part in parts:
            if part.id in self._order_reasons or ":" not in part.id:
                continue
            symbol, order_id = part.id.rsplit(":", 1)
            where = f"binance GET /api/v3/order {symbol} {order_id}"
            try:
                order = p.as_mapping(
                    self._call(
                        where,
                        WEIGHTS["order"],
                        partial(self._client.get_order, symbol=symbol, orderId=int(order_id)),
                        symbol,
                    ),
                    where,
                )
            except DataError:  # archived or unknown: the exit stays "signal"
                continue
            order_type = order.get("type")
            self._order_reasons[part.id] = exit_reason(
                order_type if isinstance(order_type, str) else ""
            )
        return {
            part.id: self._order_reasons[part.id]
            for part in parts
            if part.id in self._order_reasons
        }

    def _fill(
        self,
        raw: Mapping[str, object],
        symbol: str,
        account_id: str,
        where: str,
        prices: Mapping[str, Decimal],
    ) -> Fill:
        quote = self._quote_asset(symbol)
        fee = p.decimal(raw, "commission", where)
        return Fill(
            id=f"{symbol}:{p.field(raw, 'id', where)}",
            account_id=account_id,
            symbol=symbol,
            side="buy" if p.boolean(raw, "isBuyer", where) else "sell",
            quantity=p.decimal(raw, "qty", where),
            price_usd=self._value(quote, p.decimal(raw, "price", where), prices),
            filled_at=p.epoch(p.field(raw, "time", where), where, "time", unit_s=p.MILLISECONDS),
            fee_usd=self._value(p.text(raw, "commissionAsset", where), fee, prices),
            strategy_id=self._config.strategy_id,
            order_id=f"{symbol}:{p.field(raw, 'orderId', where)}",
        )

    def _trades(self, symbol: str, since: datetime) -> list[Mapping[str, object]]:
        """Every trade of ``symbol`` from ``since``, following ``fromId`` across pages."""
        where = f"binance GET /api/v3/myTrades {symbol}"
        params: dict[str, Any] = {"symbol": symbol, "limit": PAGE_LIMIT}
        params["startTime"] = int(since.timestamp() * 1000)
        trades: list[Mapping[str, object]] = []
        while True:
            page = p.as_list(
                self._call(
                    where,
                    WEIGHTS["myTrades"],
                    partial(self._client.get_my_trades, **params),
                    symbol,
                ),
                where,
            )
            trades.extend(p.as_mapping(row, where, "trade") for row in page)
            if len(page) < PAGE_LIMIT:
                return trades
            last_id = p.to_decimal(p.field(trades[-1], "id", where), where, "id")
            params = {"symbol": symbol, "limit": PAGE_LIMIT, "fromId": int(last_id) + 1}

    def _known_account_id(self) -> str:
        if self._account_id is None:
            where = "binance GET /api/v3/account"
            raw = p.as_mapping(
                self._call(
                    where,
                    WEIGHTS["account"],
                    lambda: self._client.get_account(omitZeroBalances="true"),
                ),
                where,
            )
            self._account_id = f"binance-{raw.get('uid', 'spot')}"
        return self._account_id

    def _quote_asset(self, symbol: str) -> str:
        for quote in sorted(self._config.quote_assets, key=len, reverse=True):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return quote
        raise AdapterError(
            f"binance: cannot tell the quote asset of {symbol}; add it to quote_assets in the "
            "binance adapter config"
        )

    # -- market data -------------------------------------------------------------------

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        where = f"binance GET /api/v3/klines {request.symbol}"
        interval = INTERVALS.get(request.interval_s)
        if interval is None:
            raise AdapterError(
                f"binance: no kline interval of {request.interval_s} s; use one of "
                f"{', '.join(str(seconds) for seconds in INTERVALS)} s"
            )
        params: dict[str, Any] = {"symbol": request.symbol, "interval": interval}
        if request.live:  # the newest bars; one more, as the last one is still open
            params["limit"] = min((request.limit or 500) + 1, PAGE_LIMIT)
        else:
            params["limit"] = min(request.limit or PAGE_LIMIT, PAGE_LIMIT)
            params["startTime"] = int(request.start.timestamp() * 1000) if request.start else None
            params["endTime"] = int(request.end.timestamp() * 1000) if request.end else None
        rows = p.as_list(
            self._call(
                where, WEIGHTS["klines"], lambda: self._client.get_klines(**params), request.symbol
            ),
            where,
        )
        now_ms = self._clock.now().timestamp() * 1000
        series_key = (request.symbol, request.interval_s, request.live)
        parse = self._bars.begin(series_key)
        bars = []
        for index, row in enumerate(rows):
            at = f"{where} [{index}]"
            values = p.as_list(row, at, "kline")
            if len(values) < KLINE_FIELDS:
                raise DataError(f"{at}: a kline has {len(values)} values, expected {KLINE_FIELDS}")
            close = values[6]  # an int as Binance sends it: compared as is (exact), else read
            close_ms = close if type(close) is int else p.to_decimal(close, at, "close_time")
            if close_ms >= now_ms:
                continue  # still open: its close is not a close yet
            # The key is what _bar reads: open time, o, h, l, c, volume.
            bars.append(parse.bar(raw_key(values[:6]), _bar, values, at))
        self._bars.end(series_key, parse)
        bars = [bar for bar in bars if request.start is None or bar.timestamp >= request.start]
        return bars[-request.limit :] if request.live and request.limit else bars

    def fetch_quote(self, symbol: str) -> Quote:
        where = f"binance GET /api/v3/ticker/bookTicker {symbol}"
        raw = p.as_mapping(
            self._call(
                where,
                WEIGHTS["ticker/bookTicker"],
                lambda: self._client.get_orderbook_ticker(symbol=symbol),
                symbol,
            ),
            where,
        )
        return Quote(
            symbol=symbol,
            bid=p.decimal(raw, "bidPrice", where),
            ask=p.decimal(raw, "askPrice", where),
            timestamp=self._clock.now(),  # the book ticker carries no time: stamped on receipt
        )

    # -- plumbing ----------------------------------------------------------------------

    def _call(self, where: str, weight: int, call: Callable[[], T], symbol: str | None = None) -> T:
        try:
            return call_with_retry(
                lambda: self._once(where, weight, call, symbol),
                self._config.retry,
                sleep=self._sleep,
                random=self._random,
                venue=self.name,
            )
        except TransientAdapterError as error:
            self._throttle.venue_refused(error)  # Binance's Retry-After blocks the bucket
            raise

    def _once(self, where: str, weight: int, call: Callable[[], T], symbol: str | None = None) -> T:
        self._throttle.spend(weight, where)
        try:
            result = call()
        except BinanceAPIException as error:
            response = error.response
            self._resync(response)
            if error.code == _INVALID_SYMBOL:
                raise UnknownSymbolError(
                    f"{where}: HTTP {error.status_code}: {error.message} (code {error.code}): "
                    f"Binance does not list {symbol or 'the symbol asked for'}; check it in the "
                    "binance feed config",
                    venue="binance",
                    symbol=symbol or "",
                ) from None
            if error.code == _NO_SUCH_ORDER:
                raise DataError(f"{where}: Binance has no such order (code {error.code})") from None
            if error.code in _KEY_REFUSED or error.code == _CLOCK_SKEW:
                fix = (
                    "sync this host's clock (NTP): the request time was outside recvWindow"
                    if error.code == _CLOCK_SKEW
                    else f"{self._credentials.hint} and the key's IP allow-list"
                )
                said = scrub(str(error.message), self._credentials.values())
                raise AdapterError(
                    f"{where}: HTTP {error.status_code}: {said} (code {error.code}). "
                    f"This is fatal: {fix}, then restart"
                ) from None
            raise error_for_status(
                where,
                int(error.status_code),
                response.text if response is not None else str(error.message),
                response.headers if response is not None else {},
                credential_hint=f"{self._credentials.hint} and the key's IP allow-list",
                secrets=self._credentials.values(),
                now=self._clock.now(),
                meaning_403="forbidden by Binance's WAF (a rate or security rule)",
            ) from None
        except BinanceRequestException:
            raise DataError(f"{where}: the venue answered with a body that is not JSON") from None
        except requests.RequestException as error:
            raise error_for_transport(where, error, self._config.timeout_s) from None
        self._resync(getattr(self._client, "response", None))
        return result


def _bar(values: Sequence[object], where: str) -> Bar:
    return Bar(
        timestamp=p.epoch(values[0], where, "open_time", unit_s=p.MILLISECONDS),
        open=p.to_decimal(values[1], where, "open"),
        high=p.to_decimal(values[2], where, "high"),
        low=p.to_decimal(values[3], where, "low"),
        close=p.to_decimal(values[4], where, "close"),
        volume=p.to_decimal(values[5], where, "volume"),
    )


def _exchange_info_where(symbol: str) -> str:
    return f"binance GET /api/v3/exchangeInfo {symbol}"
