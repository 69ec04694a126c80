"""Binance spot's documented JSON (developers.binance.com; python-binance docstrings).

Public: ``/api/v3/ticker/price``, ``/api/v3/klines`` (rows of 12 values, honouring
``limit`` / ``startTime`` / ``endTime``), ``/api/v3/ticker/bookTicker``. Signed (key in
``X-MBX-APIKEY``, HMAC-SHA256 of the query string in ``signature``): ``/api/v3/account``
``/api/v3/myTrades`` (``startTime``, ``fromId``, ``limit``) and ``/api/v3/order``
(``symbol``, ``orderId``; 400 ``-2013 Order does not exist.`` for an unknown one). A wrong
key is 401 ``-2015``; a wrong signature is 400 ``-1022``, as on Binance.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from decimal import Decimal
from typing import Any

from tests.venues.stub import (
    Malformed,
    NotJson,
    Reply,
    Seen,
    VenueFacts,
    VenueRoutes,
    VenueStub,
    serve,
)

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW_MS = 1_704_205_800_000  # 2024-01-02T14:30:00Z, the tests' clock
MINUTE_MS = 60_000

# binance-spot-api-docs rest-api.md "Account information" (GET /api/v3/account) example.
ACCOUNT = {
    "makerCommission": 15,
    "takerCommission": 15,
    "buyerCommission": 0,
    "sellerCommission": 0,
    "commissionRates": {"maker": "0.00150000", "taker": "0.00150000", "buyer": "0", "seller": "0"},
    "canTrade": True,
    "canWithdraw": True,
    "canDeposit": True,
    "brokered": False,
    "requireSelfTradePrevention": False,
    "preventSor": False,
    "updateTime": 123456789,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "0.50000000", "locked": "0.10000000"},
        {"asset": "ETH", "free": "2.00000000", "locked": "0.00000000"},
        {"asset": "USDT", "free": "10000.00000000", "locked": "500.00000000"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}

# binance-spot-api-docs rest-api.md "Symbol price ticker" (GET /api/v3/ticker/price).
TICKERS = [
    {"symbol": "BTCUSDT", "price": "42000.00000000"},
    {"symbol": "ETHUSDT", "price": "2300.50000000"},
    {"symbol": "BNBUSDT", "price": "310.00000000"},
    {"symbol": "ETHBTC", "price": "0.05477000"},
]


# binance-spot-api-docs rest-api.md "Account trade list" (GET /api/v3/myTrades) fields.
def _trade(
    id_: int, price: str, qty: str, fee: str, fee_asset: str, time_ms: int, buyer: bool
) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "id": id_,
        "orderId": 100000 + id_,
        "orderListId": -1,
        "price": price,
        "qty": qty,
        "quoteQty": str(Decimal(price) * Decimal(qty)),
        "commission": fee,
        "commissionAsset": fee_asset,
        "time": time_ms,
        "isBuyer": buyer,
        "isMaker": False,
        "isBestMatch": True,
    }


TRADES = [
    _trade(28455, "41500.00000000", "0.01000000", "0.41500000", "USDT", 1_704_124_800_000, True),
    _trade(28457, "42000.10000000", "0.01000000", "0.00001000", "BNB", 1_704_204_000_000, True),
    _trade(28460, "42100.00000000", "0.00500000", "0.21050000", "USDT", 1_704_204_600_000, False),
]  # fmt: skip


# binance-spot-api-docs rest-api.md "Query order (USER_DATA)" (GET /api/v3/order) fields;
# the order behind each trade above (orderId = 100000 + trade id).
def _order(order_id: int, side: str, type_: str, qty: str) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": f"bastion-{order_id}",
        "price": "0.00000000",
        "origQty": qty,
        "executedQty": qty,
        "cummulativeQuoteQty": "0.00000000",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": type_,
        "side": side,
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": 1_704_124_800_000,
        "updateTime": 1_704_124_800_000,
        "isWorking": True,
        "workingTime": 1_704_124_800_000,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "NONE",
    }


ORDERS = {
    128455: _order(128455, "BUY", "MARKET", "0.01000000"),
    128457: _order(128457, "BUY", "LIMIT", "0.01000000"),
    128460: _order(128460, "SELL", "STOP_LOSS_LIMIT", "0.00500000"),
}
# Binance's answer for an order it does not have (errors.md, -2013), with HTTP 400.
NO_SUCH_ORDER = {"code": -2013, "msg": "Order does not exist."}


# binance-spot-api-docs rest-api.md "Kline/Candlestick data": 12 values per row.
def _kline(open_ms: int, close: Decimal) -> list[Any]:
    return [
        open_ms,
        f"{close - Decimal('5'):.8f}",
        f"{close + Decimal('10'):.8f}",
        f"{close - Decimal('12'):.8f}",
        f"{close:.8f}",
        "12.34500000",
        open_ms + MINUTE_MS - 1,
        "518490.00000000",
        308,
        "6.10000000",
        "256200.00000000",
        "0",
    ]


# 14:21 … 14:30; the 14:30 kline is still open at the tests' clock.
KLINES = [_kline(NOW_MS - (9 - i) * MINUTE_MS, Decimal(41950 + 10 * i)) for i in range(10)]

# binance-spot-api-docs rest-api.md "Symbol order book ticker" example.
BOOK_TICKER = {
    "symbol": "BTCUSDT",
    "bidPrice": "41999.90000000",
    "bidQty": "1.20000000",
    "askPrice": "42000.10000000",
    "askQty": "0.80000000",
}


def _filters(tick: str, step: str, max_qty: str, min_notional: str) -> list[Any]:
    # A symbol's filters in the shape of binance-spot-api-docs filters.md (PRICE_FILTER,
    # LOT_SIZE with minQty = stepSize, NOTIONAL); a 0 disables that rule (maxPrice and
    # maxNotional here).
    return [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "0.00000000",
         "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": max_qty, "stepSize": step},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": True,
         "maxNotional": "0.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
    ]  # fmt: skip


# GET /api/v3/exchangeInfo: the shape of binance-spot-api-docs rest-api.md "Exchange
# information"; rateLimits as in its enums.md "Rate limiters" (REQUEST_WEIGHT 6000 / minute).
EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": NOW_MS,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ],
    "exchangeFilters": [],
    "symbols": [
        {"symbol": symbol, "status": "TRADING", "baseAsset": symbol[:-4] or symbol[:3],
         "quoteAsset": symbol[-4:] if symbol.endswith("USDT") else symbol[-3:],
         "isSpotTradingAllowed": True, "permissions": [], "filters": filters}
        for symbol, filters in (
            ("BTCUSDT", _filters("0.01", "0.00001", "9000", "5")),
            ("ETHUSDT", _filters("0.01", "0.0001", "9000", "5")),
            ("BNBUSDT", _filters("0.1", "0.001", "9000", "5")),
            ("ETHBTC", _filters("0.00001", "0.0001", "100000", "0.0001")),
        )
    ],
}  # fmt: skip
# binance-spot-api-docs errors.md: {"code": -1121, "msg": "Invalid symbol."}, HTTP 400.
INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}


def _listed(stub: VenueStub, symbol: str | None) -> bool:
    return any(row["symbol"] == symbol for row in stub.payloads["exchange_info"]["symbols"])


def _exchange_info(stub: VenueStub, seen: Seen) -> Reply:
    info = stub.payloads["exchange_info"]
    symbol = seen.param("symbol")
    if symbol is None:
        return Reply(body=info)
    if not _listed(stub, symbol):
        return Reply(400, INVALID_SYMBOL)
    return Reply(body={**info, "symbols": [r for r in info["symbols"] if r["symbol"] == symbol]})


def _book_ticker(stub: VenueStub, seen: Seen) -> Reply:
    symbol = seen.param("symbol")
    if not _listed(stub, symbol):
        return Reply(400, INVALID_SYMBOL)
    return Reply(body={**stub.payloads["book_ticker"], "symbol": symbol})


def add_dust(stub: VenueStub) -> str:
    """A BNB balance below any lot size: Binance still prices it from the BNBUSDT ticker."""
    stub.payloads["account"]["balances"].append(
        {"asset": "BNB", "free": "0.00000010", "locked": "0.00000000"}
    )
    return "binance-354937868:BNB"


def add_unlisted(stub: VenueStub) -> str:
    """A balance in a token with no USDT ticker (delisted): no price, no market data."""
    stub.payloads["account"]["balances"].append(
        {"asset": "LUNC", "free": "1000.00000000", "locked": "0.00000000"}
    )
    return "binance-354937868:LUNC"


def _payloads() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "account": ACCOUNT,
            "tickers": TICKERS,
            "trades": TRADES,
            "orders": ORDERS,
            "klines": KLINES,
            "book_ticker": BOOK_TICKER,
            "exchange_info": EXCHANGE_INFO,
        }
    )


def _my_trades(stub: VenueStub, seen: Seen) -> Reply:
    rows = [row for row in stub.payloads["trades"] if row.get("symbol") == seen.param("symbol")]
    from_id, start = seen.param("fromId"), seen.param("startTime")
    if from_id is not None:
        rows = [row for row in rows if row["id"] >= int(from_id)]
    elif start is not None:
        rows = [row for row in rows if row.get("time", 0) >= int(start)]
    return Reply(body=rows[: int(seen.param("limit") or 500)])


def _query_order(stub: VenueStub, seen: Seen) -> Reply:
    order = stub.payloads["orders"].get(int(seen.param("orderId") or 0))
    if order is None or order.get("symbol") != seen.param("symbol"):
        return Reply(400, NO_SUCH_ORDER)
    return Reply(body=order)


def _klines(stub: VenueStub, seen: Seen) -> Reply:
    if not _listed(stub, seen.param("symbol")):
        return Reply(400, INVALID_SYMBOL)
    rows = stub.payloads["klines"]
    start, end = seen.param("startTime"), seen.param("endTime")
    limit = int(seen.param("limit") or 500)
    if start is not None or end is not None:
        low, high = int(start or 0), int(end or 2**62)
        return Reply(body=[row for row in rows if low <= row[0] <= high][:limit])
    return Reply(body=rows[-limit:])


SIGNED = {"/api/v3/account", "/api/v3/myTrades", "/api/v3/order"}


def _authenticate(stub: VenueStub, seen: Seen) -> Reply | None:
    if seen.path not in SIGNED:
        return None
    if seen.headers.get("X-MBX-APIKEY") != stub.key:
        return Reply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    signed_part, _, signature = seen.raw_query.rpartition("&signature=")
    expected = hmac.new(stub.secret.encode(), signed_part.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return Reply(400, {"code": -1022, "msg": "Signature for this request is not valid."})
    return None


def _fault_body(status: int) -> object:
    if status == 403:  # Binance's WAF answers with an HTML page
        return NotJson("<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>")
    if status in (418, 429):
        return {
            "code": -1003,
            "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
        }
    if status == 401:
        return {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    return {
        "code": -1001,
        "msg": "Internal error; unable to process your request. Please try again.",
    }


ROUTES = VenueRoutes(
    venue="binance",
    routes={
        ("GET", "/api/v3/account"): serve("account"),
        ("GET", "/api/v3/ticker/price"): serve("tickers"),
        ("GET", "/api/v3/myTrades"): _my_trades,
        ("GET", "/api/v3/order"): _query_order,
        ("GET", "/api/v3/klines"): _klines,
        ("GET", "/api/v3/ticker/bookTicker"): _book_ticker,
        ("GET", "/api/v3/exchangeInfo"): _exchange_info,
    },
    payloads=_payloads,
    authenticate=_authenticate,
    fault_body=_fault_body,
)

FACTS = VenueFacts(
    routes=ROUTES,
    key=KEY,
    secret=SECRET,
    key_var="BINANCE_API_KEY",
    secret_var="BINANCE_API_SECRET",
    symbol="BTCUSDT",
    # 0.6 BTC × 42000 + 2 ETH × 2300.5 + 10500 USDT
    equity_usd=Decimal("40301"),
    cash_usd=Decimal("10500"),
    position_symbols=("BTCUSDT", "ETHUSDT"),
    bid=Decimal("41999.9"),
    ask=Decimal("42000.1"),
    fill_ids=("BTCUSDT:28457", "BTCUSDT:28460"),
    benchmark="BTCUSDT",
    unknown_symbol="SPY",
    add_dust=add_dust,
    add_unlisted=add_unlisted,
    malformed={
        # One unreadable balance row is one unevaluable position (see "positions"); the
        # account fails only when its balances cannot be read at all.
        "accounts": Malformed(("account", "balances"), "'balances' is missing", "balances"),
        "positions": Malformed(("account", "balances", 1, "free"), "'free' is missing", "'free'"),
        "bars": Malformed(("klines", -2, 4), "11 values", "'close'"),
        "quote": Malformed(("book_ticker", "askPrice"), "'askPrice' is missing", "'askPrice'"),
        "fills": Malformed(("trades", 1, "qty"), "'qty' is missing", "'qty'"),
    },
)
