"""Binance spot on python-binance: balances, fills, klines and the best bid / ask.

The client is built as ``Client(key, secret, ping=False, requests_params={"timeout": ...})``
and pointed at ``base_url`` by setting ``API_URL``: the default constructor pings the real
exchange, and ``testnet=True`` hard-codes its own URL. Nothing goes on the network until a
``fetch_*`` call. ``verbose`` stays off: python-binance's verbose log prints request
headers, which carry the API key.

Endpoints: ``GET /api/v3/account`` (signed) for balances; ``GET /api/v3/ticker/price`` to
value them; ``GET /api/v3/myTrades`` (signed, one symbol per call) for fills;
``GET /api/v3/klines``; ``GET /api/v3/ticker/bookTicker`` for quotes.

Valuation: spot has one account whose equity is the sum of every balance (free + locked)
at its ``<ASSET><valuation_asset>`` last price, ``valuation_asset`` (USDT) counted 1:1 as
USD. A held asset without such a ticker is a DataError naming it — add it to
``ignore_assets`` (dust, delisted tokens) rather than have it silently valued at zero.
Spot balances have no cost basis: a position's ``entry_price_usd`` is its current price.

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
from bastion.adapters.http_errors import error_for_status, error_for_transport, scrub
from bastion.adapters.retry import call_with_retry
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, SystemClock
from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.adapters.venue_config import Credentials, VenueConfig, credentials_from_env
from bastion.engine.errors import AdapterError, DataError
from bastion.engine.indicators.quality import Bar

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
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class BinanceConfig(VenueConfig):
    base_url: str = "https://api.binance.com"
    valuation_asset: str = "USDT"  # equity, prices and fees are valued in it, 1:1 as USD
    fill_symbols: tuple[str, ...] = ()  # myTrades needs a symbol: the pairs to read fills of
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
    ) -> None:
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

    # -- account side ------------------------------------------------------------------

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        account_id, holdings, prices = self._holdings()
        valuation = self._config.valuation_asset
        equity = sum(
            (self._value(asset, quantity, prices) for asset, quantity in holdings.items()),
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
        account_id, holdings, prices = self._holdings()
        valuation = self._config.valuation_asset
        positions = []
        for asset, quantity in sorted(holdings.items()):
            if asset == valuation:
                continue  # that is the cash
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
        return positions

    def _holdings(self) -> tuple[str, dict[str, Decimal], Mapping[str, Decimal]]:
        """The account id, non-zero holdings (free + locked) by asset, and all last prices."""
        where = "binance GET /api/v3/account"
        raw = p.as_mapping(
            self._call(where, lambda: self._client.get_account(omitZeroBalances="true")), where
        )
        if self._account_id is None:
            self._account_id = f"binance-{raw.get('uid', 'spot')}"
        account_id = self._account_id
        holdings: dict[str, Decimal] = {}
        for index, row in enumerate(p.as_list(p.field(raw, "balances", where), where, "balances")):
            at = f"{where} balances[{index}]"
            balance = p.as_mapping(row, at, "balance")
            asset = p.text(balance, "asset", at)
            quantity = p.decimal(balance, "free", at) + p.decimal(balance, "locked", at)
            if quantity and asset not in self._config.ignore_assets:
                holdings[asset] = quantity
        return account_id, holdings, self._prices()

    def _prices(self) -> dict[str, Decimal]:
        where = "binance GET /api/v3/ticker/price"
        rows = p.as_list(self._call(where, self._client.get_all_tickers), where)
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
        )

    def _trades(self, symbol: str, since: datetime) -> list[Mapping[str, object]]:
        """Every trade of ``symbol`` from ``since``, following ``fromId`` across pages."""
        where = f"binance GET /api/v3/myTrades {symbol}"
        params: dict[str, Any] = {"symbol": symbol, "limit": PAGE_LIMIT}
        params["startTime"] = int(since.timestamp() * 1000)
        trades: list[Mapping[str, object]] = []
        while True:
            page = p.as_list(
                self._call(where, partial(self._client.get_my_trades, **params)), where
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
                self._call(where, lambda: self._client.get_account(omitZeroBalances="true")),
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
        rows = p.as_list(self._call(where, lambda: self._client.get_klines(**params)), where)
        now_ms = self._clock.now().timestamp() * 1000
        bars = []
        for index, row in enumerate(rows):
            at = f"{where} [{index}]"
            values = p.as_list(row, at, "kline")
            if len(values) < KLINE_FIELDS:
                raise DataError(f"{at}: a kline has {len(values)} values, expected {KLINE_FIELDS}")
            if p.to_decimal(values[6], at, "close_time") >= now_ms:
                continue  # still open: its close is not a close yet
            bars.append(_bar(values, at))
        bars = [bar for bar in bars if request.start is None or bar.timestamp >= request.start]
        return bars[-request.limit :] if request.live and request.limit else bars

    def fetch_quote(self, symbol: str) -> Quote:
        where = f"binance GET /api/v3/ticker/bookTicker {symbol}"
        raw = p.as_mapping(
            self._call(where, lambda: self._client.get_orderbook_ticker(symbol=symbol)), where
        )
        return Quote(
            symbol=symbol,
            bid=p.decimal(raw, "bidPrice", where),
            ask=p.decimal(raw, "askPrice", where),
            timestamp=self._clock.now(),  # the book ticker carries no time: stamped on receipt
        )

    # -- plumbing ----------------------------------------------------------------------

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
        except BinanceAPIException as error:
            response = error.response
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


def _bar(values: Sequence[object], where: str) -> Bar:
    return Bar(
        timestamp=p.epoch(values[0], where, "open_time", unit_s=p.MILLISECONDS),
        open=p.to_decimal(values[1], where, "open"),
        high=p.to_decimal(values[2], where, "high"),
        low=p.to_decimal(values[3], where, "low"),
        close=p.to_decimal(values[4], where, "close"),
        volume=p.to_decimal(values[5], where, "volume"),
    )
