"""Kraken spot on krakenex: balances, margin positions, trade history, OHLC and the ticker.

krakenex is pointed at ``base_url`` by setting ``API.uri``. It returns Kraken's envelope
as is — ``{"error": [...], "result": ...}`` with HTTP 200 — and :mod:`kraken_errors` turns
the error array into typed errors. Its nonce is ``int(1000 × time.time())``, which repeats
when two private calls fall in one millisecond (Kraken then answers ``EAPI:Invalid
nonce``); :class:`_KrakenAPI` replaces it with a process-wide, strictly increasing one.

Calls: ``Balance`` and ``TradeBalance`` (asset ``valuation_asset``, default ZUSD) for the
account — equity is ``eb + n`` (every currency's value plus the open margin positions'
unrealised P&L), cash the ZUSD balance; ``OpenPositions`` (``docalcs``) and non-zero
``Balance`` entries for positions, valued with ``AssetPairs`` + ``Ticker`` last prices;
``TradesHistory`` (paged by ``ofs``) for fills and, paired FIFO, closed trades
(:meth:`KrakenAdapter.fetch_trades`; ``QueryOrders`` for liquidations); ``OHLC`` for
bars; ``Ticker`` for quotes.
An asset without a ``<asset><valuation_asset>`` pair, or a position row that cannot be
read, comes back as a position with ``problem`` set (the builder lists it as unevaluable,
every other position is evaluated) — list a dust or staked asset in ``ignore_assets``. A
margin position whose ``value`` is 0 or absent (dust: the documented example holds one
with ``vol`` 0.00000010 and ``value`` 0) comes back with ``price_usd`` 0, which the builder
prices from the ticker. ``TradesHistory`` without ``count`` is paged until a short page.

Every error names the request, pair included (``kraken public/OHLC SPY``): Kraken's own
``EQuery:Unknown asset pair`` does not say which pair it does not know.

``OHLC``'s last row is the current, uncommitted interval (Kraken's docs): it is dropped.
``OHLC`` only returns the latest 720 rows, so history further back is not available here.
``Ticker`` has no timestamp: quotes are stamped on receipt.
"""

from __future__ import annotations

import binascii
import random as random_module
import threading
import time
from base64 import b64decode
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import krakenex
import requests

from bastion.adapters import payload as p
from bastion.adapters.bar_memo import BarMemo, raw_key
from bastion.adapters.http_errors import error_for_status, error_for_transport
from bastion.adapters.instrument_rules import (
    InstrumentFetch,
    RuleCache,
    RuleRead,
    RuleReader,
)
from bastion.adapters.kraken_errors import unwrap
from bastion.adapters.retry import call_with_retry
from bastion.adapters.single_account import SingleAccountScope
from bastion.adapters.sources.base import BarRequest, Quote
from bastion.adapters.sources.clock import Clock, SystemClock
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
from bastion.engine.errors import AdapterError, DataError
from bastion.engine.indicators.quality import Bar
from bastion.engine.snapshot.model import ClosedTrade, Instrument

KEY_VAR = "KRAKEN_API_KEY"
SECRET_VAR = "KRAKEN_API_SECRET"
OHLC_MINUTES = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
OHLC_FIELDS = ("time", "open", "high", "low", "close", "vwap", "volume", "count")
TRADES_PAGE = 50  # TradesHistory's page size (docs.kraken.com, getTradeHistory)
QUERY_ORDERS_MAX = 50  # txids per QueryOrders call (docs.kraken.com, getOrdersInfo)
DEFAULT_BENCHMARK = "XBTUSD"


class _KrakenAPI(krakenex.API):  # type: ignore[misc]
    """krakenex with a nonce that never repeats, even within one millisecond.

    The counter is shared by every instance in the process (Kraken's advice for a key used
    from several threads: a counter under a mutex), so an adapter rebuilt after a config
    reload cannot go below the one it replaces.
    """

    _nonce_lock = threading.Lock()
    _last_nonce = 0

    def _nonce(self) -> int:
        with _KrakenAPI._nonce_lock:
            nonce = max(_KrakenAPI._last_nonce + 1, time.time_ns() // 1_000_000)
            _KrakenAPI._last_nonce = nonce
            return nonce


@dataclass(frozen=True, slots=True, kw_only=True)
class KrakenConfig(VenueConfig):
    base_url: str = "https://api.kraken.com"
    valuation_asset: str = "ZUSD"  # equity, prices and fees are valued in it
    ignore_assets: tuple[str, ...] = ()  # balances left out of positions (dust, staking)


def _plain(asset: str) -> str:
    """Kraken's asset code without its X/Z class prefix or ``.F``/``.S`` suffix: XXBT → XBT."""
    code = asset.split(".", maxsplit=1)[0]
    return code[1:] if len(code) == 4 and code[0] in "XZ" else code


class KrakenAdapter:
    """The Kraken venue. Build it with :meth:`from_env`; construction is offline."""

    def __init__(
        self,
        credentials: Credentials,
        config: KrakenConfig | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], object] = time.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self._config = config or KrakenConfig()
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._random = random
        key, secret = credentials.values()
        try:
            b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise AdapterError(
                f"kraken: {credentials.secret_var} is not base64; copy the private key exactly "
                "as Kraken shows it"
            ) from None
        self._api = _KrakenAPI(key, secret)
        self._api.uri = self._config.base_url.rstrip("/")
        self._pairs: dict[str, tuple[str, str]] = {}  # pair name and altname → (base, quote)
        self._pair_names: set[str] = set()  # the full names (Ticker's result keys)
        self._ledger = TradeLedger(horizon_s=self._config.trade_history_horizon_s)
        self._liquidated: dict[str, bool] = {}  # closing order txid → Kraken says liquidated
        self._rules = RuleCache(self._clock)
        self._bars = BarMemo()  # unchanged OHLC rows → the same Bar objects, poll after poll

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], config: KrakenConfig | None = None, **kwargs: Any
    ) -> KrakenAdapter:
        """Credentials from KRAKEN_API_KEY / KRAKEN_API_SECRET (base64) in ``environ``."""
        return cls(credentials_from_env(environ, "kraken", KEY_VAR, SECRET_VAR), config, **kwargs)

    @property
    def name(self) -> str:
        return "kraken"

    @property
    def uri(self) -> str:
        return str(self._api.uri)

    def __repr__(self) -> str:
        return f"KrakenAdapter(uri={self.uri!r}, account_type={self._config.account_type!r})"

    def close(self) -> None:
        self._api.close()

    @property
    def _account_id(self) -> str:
        return self._config.account_id or "kraken"

    def restricted_to(self, owns: Callable[[str], bool]) -> SingleAccountScope:
        """This adapter for a `bastion serve --ray` partition: no account request at all
        unless `owns` the key's account; market data as before (`single_account`)."""
        return SingleAccountScope(self, owns, lambda: self._account_id, lambda: self._account_id)

    # -- account side ------------------------------------------------------------------

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        valuation = self._config.valuation_asset
        balances = self._balances()
        where = "kraken private/TradeBalance"
        trade = p.as_mapping(self._private("TradeBalance", {"asset": valuation}), where)
        unrealized = p.decimal(trade, "n", where)
        return [
            VenueAccount(
                id=self._account_id,
                type=self._config.account_type,
                equity_usd=p.decimal(trade, "eb", where) + unrealized,
                cash_usd=balances.get(valuation, Decimal(0)),  # Kraken omits a zero balance
                unrealized_pnl_usd=unrealized,
            )
        ]

    def _balances(self) -> dict[str, Decimal]:
        where = "kraken private/Balance"
        raw = p.as_mapping(self._private("Balance"), where)
        return {asset: p.to_decimal(amount, where, asset) for asset, amount in raw.items()}

    def fetch_positions(self) -> Sequence[VenuePosition]:
        where = "kraken private/OpenPositions"
        margin = p.as_mapping(self._private("OpenPositions", {"docalcs": "true"}), where)
        cash = _plain(self._config.valuation_asset)  # ZUSD, and ZUSD.HOLD too, are cash
        holdings = {
            asset: amount
            for asset, amount in self._balances().items()
            if amount and _plain(asset) != cash and asset not in self._config.ignore_assets
        }
        quotes: set[str] = set()
        for row in margin.values():  # the quote currencies that value margin positions
            pair = row.get("pair") if isinstance(row, Mapping) else None
            if isinstance(pair, str) and self._known_pair(pair):
                quotes.add(self._pair(pair)[1])
        prices = self._prices(set(holdings) | quotes)
        positions = [self._margin_position(txid, row, prices) for txid, row in margin.items()]
        for asset, amount in sorted(holdings.items()):
            if asset not in prices:
                positions.append(
                    unreadable_position(
                        id=f"{self._account_id}:{asset}",
                        account_id=self._account_id,
                        symbol=asset,
                        asset_class="crypto",
                        problem=f"kraken: no {self._config.valuation_asset} pair to value "
                        f"{amount} {asset}; if it is dust or staked, add it to ignore_assets "
                        "in the kraken feed config",
                    )
                )
                continue
            pair, price = prices[asset]
            positions.append(
                VenuePosition(
                    id=f"{self._account_id}:{asset}",
                    account_id=self._account_id,
                    symbol=pair,
                    asset_class="crypto",
                    quantity=amount,
                    side="long",
                    entry_price_usd=price,  # spot balances carry no cost basis
                    price_usd=price,
                    strategy_id=self._config.strategy_id,
                )
            )
        return positions

    def _margin_position(
        self, txid: str, row: object, prices: Mapping[str, tuple[str, Decimal]]
    ) -> VenuePosition:
        """One ``OpenPositions`` row; a row that cannot be read comes back with ``problem``."""
        where = f"kraken private/OpenPositions {txid}"
        pair = row.get("pair") if isinstance(row, Mapping) else None
        try:
            return self._read_margin_position(txid, row, prices, where)
        except DataError as error:
            return unreadable_position(
                id=txid,
                account_id=self._account_id,
                symbol=pair if isinstance(pair, str) else "?",
                asset_class="crypto",
                problem=error.message,
            )

    def _read_margin_position(
        self, txid: str, row: object, prices: Mapping[str, tuple[str, Decimal]], where: str
    ) -> VenuePosition:
        raw = p.as_mapping(row, where, "position")
        pair = p.text(raw, "pair", where)
        quote = self._pair(pair)[1]
        if quote not in prices:
            raise DataError(f"{where}: no {self._config.valuation_asset} price for {quote}")
        quote_usd = prices[quote][1]
        opened = p.decimal(raw, "vol", where)
        open_now = opened - p.decimal(raw, "vol_closed", where)
        if opened <= 0 or open_now <= 0:
            raise DataError(f"{where}: field 'vol' must exceed 'vol_closed', got {opened}")
        kind = p.text(raw, "type", where)
        if kind not in ("buy", "sell"):
            raise DataError(f"{where}: field 'type' is {kind!r}, not buy or sell")
        # `value` is only there with docalcs, and is 0 for dust: 0 means "price it from the
        # ticker" to the builder (never a price of 0 in the snapshot).
        value = p.optional_decimal(raw, "value", where) or Decimal(0)
        return VenuePosition(
            id=txid,
            account_id=self._account_id,
            symbol=pair,
            asset_class="crypto",
            quantity=open_now,
            side="long" if kind == "buy" else "short",
            entry_price_usd=p.decimal(raw, "cost", where) / opened * quote_usd,
            price_usd=value / open_now * quote_usd,
            entered_at=p.epoch(p.field(raw, "time", where), where, "time"),
            strategy_id=self._config.strategy_id,
        )

    def _known_pair(self, pair: str) -> bool:
        try:
            self._pair(pair)
        except DataError:
            return False
        return True

    def check_symbol(self, symbol: str) -> None:
        """UnknownSymbolError unless Kraken lists ``symbol`` (a pair name or altname)."""
        if not self._known_pair(symbol):
            raise UnknownSymbolError(
                f"kraken public/AssetPairs {symbol}: Kraken does not list the pair {symbol!r}; "
                "use Kraken's pair name (e.g. XBTUSD) in the kraken feed config",
                venue="kraken",
                symbol=symbol,
            )

    def _pair(self, pair: str) -> tuple[str, str]:
        """(base, quote) of a pair, from ``AssetPairs`` (read once, again on a miss)."""
        if pair not in self._pairs:
            self._load_pairs()
        if pair not in self._pairs:
            raise DataError(f"kraken public/AssetPairs: no pair {pair!r}")
        return self._pairs[pair]

    def _load_pairs(self) -> None:
        where = "kraken public/AssetPairs"
        for name, row in p.as_mapping(self._public("AssetPairs"), where).items():
            info = p.as_mapping(row, f"{where} {name}", "pair")
            base_quote = (p.text(info, "base", where), p.text(info, "quote", where))
            self._pairs[name] = base_quote
            self._pair_names.add(name)
            if isinstance(info.get("altname"), str):
                self._pairs[str(info["altname"])] = base_quote

    def _prices(self, assets: set[str]) -> dict[str, tuple[str, Decimal]]:
        """For each asset, the pair that values it and its last price in the valuation asset."""
        valuation = self._config.valuation_asset
        prices = {asset: (asset, Decimal(1)) for asset in assets if asset == valuation}
        wanted = assets - set(prices)
        if not wanted:
            return prices
        if not self._pairs:
            self._load_pairs()
        by_base = {
            _plain(base): name
            for name, (base, quote) in self._pairs.items()
            if quote == valuation and name in self._pair_names
        }
        # An asset without such a pair is left out: the caller says what it cannot value.
        names = {asset: by_base[_plain(asset)] for asset in wanted if _plain(asset) in by_base}
        if not names:
            return prices
        where = "kraken public/Ticker"
        pairs = ",".join(sorted(set(names.values())))
        tickers = p.as_mapping(self._public("Ticker", {"pair": pairs}, symbol=pairs), where)
        for asset, name in names.items():
            ticker = p.as_mapping(p.field(tickers, name, where), f"{where} {name}", "ticker")
            last = p.as_list(p.field(ticker, "c", where), where, "field 'c'")
            prices[asset] = (name, p.to_decimal(last[0] if last else None, f"{where} {name}", "c"))
        return prices

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        where = "kraken private/TradesHistory"
        # `start` is exclusive: ask from just before `since`, keep what is at or after it.
        start = (since - timedelta(milliseconds=1)).timestamp()
        raws: dict[str, Mapping[str, object]] = {}
        while True:
            page = p.as_mapping(
                self._private("TradesHistory", {"start": start, "ofs": len(raws)}), where
            )
            trades = p.as_mapping(p.field(page, "trades", where), where, "field 'trades'")
            raws.update(
                {
                    txid: p.as_mapping(row, f"{where} {txid}", "trade")
                    for txid, row in trades.items()
                }
            )
            # `count` (all matching trades) is optional: without it, a short page is the last.
            count = p.optional_decimal(page, "count", where)
            if (
                not trades
                or len(trades) < TRADES_PAGE
                or (count is not None and len(raws) >= count)
            ):
                break
        quotes = {
            self._pair(p.text(raw, "pair", f"{where} {txid}"))[1] for txid, raw in raws.items()
        }
        rates = self._prices(quotes)
        unvalued = sorted(quotes - set(rates))
        if unvalued:
            raise DataError(
                f"{where}: no {self._config.valuation_asset} pair to value fills in "
                f"{', '.join(unvalued)}"
            )
        fills = [self._fill(txid, raw, rates) for txid, raw in raws.items()]
        return sorted(
            (fill for fill in fills if fill.filled_at >= since), key=lambda f: (f.filled_at, f.id)
        )

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        """Closed trades from ``TradesHistory`` fills (incremental: see :mod:`trade_ledger`).

        Exit reason from each closing trade's ``ordertype`` (stop-loss, take-profit, ...:
        :func:`trade_pairing.exit_reason`); a margin trade whose ``misc`` says ``closing``
        closes a position, one with ``margin`` > 0 otherwise opens one (long or short); a
        spot sell only closes. A liquidation is flagged on the *order* (``misc``
        ``liquidated``), not the trade: each new closing order is read once with
        ``QueryOrders`` (up to 50 a call)."""
        return self._ledger.poll(self.fetch_fills, since, exit_reasons=self._exit_reasons)[1]

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        """Fills and closed trades from one fill-history fetch (see :mod:`trade_ledger`)."""
        return self._ledger.poll(self.fetch_fills, trades_since, fills_since, self._exit_reasons)

    def _exit_reasons(self, parts: Sequence[ClosedTrade]) -> dict[str, str]:
        """Liquidations, from the closing orders' ``misc`` (``QueryOrders``)."""
        # Order txids start with "O"; a part named after its trade (no ordertxid) has none.
        ids = {part.id for part in parts if part.id.startswith("O")}
        wanted = sorted(ids - set(self._liquidated))
        where = "kraken private/QueryOrders"
        for start in range(0, len(wanted), QUERY_ORDERS_MAX):
            txids = wanted[start : start + QUERY_ORDERS_MAX]
            try:
                answer = self._private("QueryOrders", {"txid": ",".join(txids)})
            except AdapterError as error:  # one unknown txid refuses the whole query
                if "EOrder:Invalid order" not in str(error):
                    raise
                self._liquidated.update(dict.fromkeys(txids, False))  # the exits stay as typed
                continue
            orders = p.as_mapping(answer, where)
            for txid in txids:
                order = orders.get(txid)
                misc = order.get("misc") if isinstance(order, Mapping) else None
                self._liquidated[txid] = isinstance(misc, str) and "liquidated" in misc.split(",")
        return {part.id: "liquidation" for part in parts if self._liquidated.get(part.id)}

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        """Every Kraken pair this adapter reads is crypto (sector unknown)."""
        return {position.symbol: Instrument(position.symbol, "crypto") for position in positions}

    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        """:meth:`instruments` plus each pair's rules from ``AssetPairs?pair=`` (cached an
        hour: :class:`~bastion.adapters.instrument_rules.RuleCache`): ``tick_size``,
        ``lot_decimals`` → lot size 10^-lot_decimals, ``ordermin`` → min quantity,
        ``costmin`` → min notional. Tick and cost are in the quote asset: kept only when
        it is ``valuation_asset`` (ZUSD)."""
        wanted = [position for position in positions if position.problem is None]
        found = dict(self.instruments(wanted))
        found |= {symbol: Instrument(symbol, "crypto") for symbol in symbols if symbol not in found}
        return self._rules.fill(found, self._pair_rules, _asset_pairs_where)

    def _pair_rules(self, symbol: str) -> RuleRead:
        where = _asset_pairs_where(symbol)
        pairs = p.as_mapping(self._public("AssetPairs", {"pair": symbol}, symbol=symbol), where)
        info = next(
            (
                row
                for name, row in pairs.items()
                if isinstance(row, Mapping) and symbol in (name, row.get("altname"))
            ),
            None,
        )
        if info is None:
            raise DataError(f"{where}: Kraken does not list the pair {symbol!r}")
        reader = RuleReader(symbol, where)
        decimals = info.get("lot_decimals")
        if isinstance(decimals, int) and not isinstance(decimals, bool) and 0 <= decimals <= 18:
            reader.take("lot_size", Decimal(1).scaleb(-decimals), "lot_decimals")
        elif decimals is not None:
            reader.skip("lot_size", f"lot_decimals is {decimals!r}, not a whole number 0..18")
        reader.take("min_quantity", info.get("ordermin"), "ordermin")
        quote, valuation = info.get("quote"), self._config.valuation_asset
        for name, venue_field in (("tick_size", "tick_size"), ("min_notional", "costmin")):
            if quote == valuation:
                reader.take(name, info.get(venue_field), venue_field)
            elif info.get(venue_field) is not None:
                reader.skip(name, f"{venue_field} is in {quote}, not {valuation}")
        return reader.read()

    def _fill(
        self, txid: str, raw: Mapping[str, object], rates: Mapping[str, tuple[str, Decimal]]
    ) -> Fill:
        where = f"kraken private/TradesHistory {txid}"
        pair = p.text(raw, "pair", where)
        quote_usd = rates[self._pair(pair)[1]][1]
        side = p.text(raw, "type", where)
        if side not in ("buy", "sell"):
            raise DataError(f"{where}: field 'type' is {side!r}, not buy or sell")
        order_type = raw.get("ordertype")
        misc = raw.get("misc")
        closing = isinstance(misc, str) and "closing" in misc.split(",")
        margin = p.optional_decimal(raw, "margin", where) or Decimal(0)
        effect = "close" if closing else "open" if margin > 0 else ""
        order_id = raw.get("ordertxid")
        return Fill(
            id=txid,
            account_id=self._account_id,
            symbol=pair,
            side=side,
            quantity=p.decimal(raw, "vol", where),
            price_usd=p.decimal(raw, "price", where) * quote_usd,
            filled_at=p.epoch(p.field(raw, "time", where), where, "time"),
            fee_usd=p.decimal(raw, "fee", where) * quote_usd,
            strategy_id=self._config.strategy_id,
            order_id=order_id if isinstance(order_id, str) else "",
            exit_reason=exit_reason(order_type if isinstance(order_type, str) else ""),
            position_effect=effect,
        )

    # -- market data -------------------------------------------------------------------

    def fetch_bars(self, request: BarRequest) -> Sequence[Bar]:
        where = f"kraken public/OHLC {request.symbol}"
        minutes = request.interval_s / 60
        if minutes not in OHLC_MINUTES:
            raise AdapterError(
                f"kraken: no OHLC interval of {request.interval_s} s; use one of "
                f"{', '.join(str(m * 60) for m in OHLC_MINUTES)} s"
            )
        query: dict[str, object] = {"pair": request.symbol, "interval": int(minutes)}
        if request.start is not None:
            query["since"] = int(request.start.timestamp()) - 1
        result = p.as_mapping(self._public("OHLC", query, symbol=request.symbol), where)
        series = [key for key in result if key != "last"]
        if len(series) != 1:
            raise DataError(f"{where}: expected one pair in the result, got {series}")
        rows = p.as_list(result[series[0]], where, f"field '{series[0]}'")
        series_key = (request.symbol, request.interval_s, request.live)
        parse = self._bars.begin(series_key)
        bars = []
        for index, row in enumerate(rows[:-1]):  # the last row is the uncommitted interval
            at = f"{where} [{index}]"
            values = p.as_list(row, at, "OHLC row")
            bars.append(parse.bar(raw_key(values), _bar, values, at))
        self._bars.end(series_key, parse)
        bars = [
            bar
            for bar in bars
            if (request.start is None or bar.timestamp >= request.start)
            and (request.end is None or bar.timestamp <= request.end)
        ]
        if request.limit:
            return bars[-request.limit :] if request.live else bars[: request.limit]
        return bars

    def fetch_quote(self, symbol: str) -> Quote:
        where = f"kraken public/Ticker {symbol}"
        result = p.as_mapping(self._public("Ticker", {"pair": symbol}, symbol=symbol), where)
        if len(result) != 1:
            raise DataError(f"{where}: expected one pair in the result, got {sorted(result)}")
        ticker = p.as_mapping(next(iter(result.values())), where, "ticker")

        def first(key: str) -> Decimal:
            values = p.as_list(p.field(ticker, key, where), where, f"field '{key}'")
            return p.to_decimal(values[0] if values else None, where, key)

        return Quote(
            symbol=symbol,
            bid=first("b"),
            ask=first("a"),
            last=first("c"),
            timestamp=self._clock.now(),
        )

    # -- plumbing ----------------------------------------------------------------------

    def _public(
        self, method: str, data: Mapping[str, object] | None = None, *, symbol: str | None = None
    ) -> object:
        return self._query(method, data, private=False, symbol=symbol)

    def _private(self, method: str, data: Mapping[str, object] | None = None) -> object:
        return self._query(method, data, private=True)

    def _query(
        self,
        method: str,
        data: Mapping[str, object] | None,
        *,
        private: bool,
        symbol: str | None = None,
    ) -> object:
        where = f"kraken {'private' if private else 'public'}/{method}"
        if symbol:
            where += f" {symbol}"  # Kraken's errors do not say which pair was asked for
        query = self._api.query_private if private else self._api.query_public

        def once() -> object:
            try:
                # A fresh dict each time: krakenex writes the nonce into it.
                body = query(method, dict(data or {}), timeout=self._config.timeout_s)
            except requests.HTTPError as error:
                response = error.response
                raise error_for_status(
                    where,
                    response.status_code if response is not None else 0,
                    response.text if response is not None else "",
                    response.headers if response is not None else {},
                    credential_hint=self._credentials.hint,
                    secrets=self._credentials.values(),
                    now=self._clock.now(),
                ) from None
            except requests.RequestException as error:
                raise error_for_transport(where, error, self._config.timeout_s) from None
            return unwrap(where, body, self._credentials.hint, symbol)

        return call_with_retry(
            once, self._config.retry, sleep=self._sleep, random=self._random, venue=self.name
        )


def _bar(row: object, where: str) -> Bar:
    values = p.as_list(row, where, "OHLC row")
    if len(values) < len(OHLC_FIELDS):
        raise DataError(
            f"{where}: an OHLC row has {len(values)} values, expected {len(OHLC_FIELDS)} "
            f"({', '.join(OHLC_FIELDS)})"
        )
    named = dict(zip(OHLC_FIELDS, values, strict=False))
    return Bar(
        timestamp=p.epoch(named["time"], where, "time"),
        open=p.to_decimal(named["open"], where, "open"),
        high=p.to_decimal(named["high"], where, "high"),
        low=p.to_decimal(named["low"], where, "low"),
        close=p.to_decimal(named["close"], where, "close"),
        volume=p.to_decimal(named["volume"], where, "volume"),
    )


def _asset_pairs_where(symbol: str) -> str:
    return f"kraken public/AssetPairs {symbol}"
