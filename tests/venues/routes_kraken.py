"""Kraken spot's documented JSON (docs.kraken.com REST API) for the stub.

Every answer is ``{"error": [...], "result": ...}`` with HTTP 200. Public (GET):
``/0/public/AssetPairs``, ``Ticker`` and ``OHLC`` (``pair`` may be the altname, the result
is keyed by the full pair name; OHLC's last row is the uncommitted interval). Private
(POST, form-encoded): ``Balance``, ``TradeBalance``, ``OpenPositions``, ``TradesHistory``
(newest first, ``start`` exclusive, 50 per page from ``ofs``), ``QueryOrders`` (``txid``
comma-separated; one unknown txid refuses the query with ``EOrder:Invalid order``).
Auth: ``API-Key`` and ``API-Sign`` = base64(HMAC-SHA512(base64-decoded secret, path +
SHA256(nonce + body))), and a nonce above the last one seen, else ``EAPI:Invalid key`` /
``EAPI:Invalid nonce``.
"""

from __future__ import annotations

import base64
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
)

KEY = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
SECRET = base64.b64encode(b"kraken-test-private-key-0123456789" * 2).decode()
NOW_S = 1_704_205_800  # 2024-01-02T14:30:00Z, the tests' clock
TRADES_PAGE = 50


def ok(result: object) -> dict[str, Any]:
    return {"error": [], "result": result}


# docs.kraken.com REST "Get Account Balance" (getAccountBalance): asset -> amount.
BALANCE = ok(
    {"ZUSD": "25000.5000", "XXBT": "0.7500000000", "XETH": "3.0000000000", "DOT.S": "0.0000000000"}
)

# docs.kraken.com REST "Get Trade Balance" (getTradeBalance): eb, tb, m, n, c, v, e, mf, ml.
TRADE_BALANCE = ok(
    {
        "eb": "76543.2100",
        "tb": "50000.0000",
        "m": "1500.0000",
        "n": "250.5000",
        "c": "1400.0000",
        "v": "1650.5000",
        "e": "50250.5000",
        "mf": "48750.5000",
        "ml": "3350.03",
    }
)

# docs.kraken.com REST "Get Open Positions" (getOpenPositions, docalcs=true) example row.
OPEN_POSITIONS = ok(
    {
        "TF5GVO-T7ZZ2-6NBKBI": {
            "ordertxid": "OLWNFG-LLH4R-D6SFFP",
            "posstatus": "open",
            "pair": "XXBTZUSD",
            "time": 1704200000.1234,
            "type": "buy",
            "ordertype": "limit",
            "cost": "4200.00000",
            "fee": "11.34000",
            "vol": "0.10000000",
            "vol_closed": "0.00000000",
            "margin": "840.00000",
            "value": "4250.0",
            "net": "+50.0000",
            "terms": "0.0100% per 4 hours",
            "rollovertm": "1704214400",
            "misc": "",
            "oflags": "",
        }
    }
)


def _pair(altname: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "altname": altname,
        "wsname": f"{altname[:-3]}/{altname[-3:]}",
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "pair_decimals": 1,
        "cost_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "fees": [[0, 0.26], [50000, 0.24]],
        "fees_maker": [[0, 0.16], [50000, 0.14]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": "0.1",
        "status": "online",
    }


# docs.kraken.com REST "Get Tradable Asset Pairs" (getTradableAssetPairs) fields.
ASSET_PAIRS = ok(
    {
        "XXBTZUSD": _pair("XBTUSD", "XXBT", "ZUSD"),
        "XETHZUSD": _pair("ETHUSD", "XETH", "ZUSD"),
        "XETHXXBT": _pair("ETHXBT", "XETH", "XXBT"),
    }
)


def _ticker(bid: str, ask: str, last: str) -> dict[str, Any]:
    return {
        "a": [ask, "1", "1.000"],
        "b": [bid, "2", "2.000"],
        "c": [last, "0.00100000"],
        "v": ["1000.10000000", "2000.20000000"],
        "p": [last, last],
        "t": [12000, 24000],
        "l": ["41000.00000", "40900.00000"],
        "h": ["42500.00000", "42600.00000"],
        "o": "41500.00000",
    }


# docs.kraken.com REST "Get Ticker Information" (getTickerInformation): a, b, c, v, p, t, l, h, o.
TICKER = ok(
    {
        "XXBTZUSD": _ticker("42000.10000", "42000.20000", "42000.10000"),
        "XETHZUSD": _ticker("2300.40000", "2300.60000", "2300.50000"),
        "XETHXXBT": _ticker("0.05476", "0.05478", "0.05477"),
    }
)


def _trade(
    pair: str,
    time_s: float,
    side: str,
    price: str,
    vol: str,
    fee: str,
    order: str = "OQCLML-BW3P3-BUCMWZ",
    ordertype: str = "limit",
) -> dict[str, Any]:
    return {
        "ordertxid": order,
        "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": pair,
        "time": time_s,
        "type": side,
        "ordertype": ordertype,
        "price": price,
        "cost": str(Decimal(price) * Decimal(vol)),
        "fee": fee,
        "vol": vol,
        "margin": "0.00000",
        "misc": "",
        "trade_id": 40274859,
        "maker": True,
    }


# docs.kraken.com REST "Get Trades History" (getTradeHistory) trade fields.
TRADES = {
    # A stop-loss order closing the first buy (the ordertype Kraken reports on the trade).
    "THVRQM-33VKH-UCI7BS": _trade(
        "XXBTZUSD",
        1704205000.5,
        "sell",
        "42010.0",
        "0.01",
        "1.09226",
        "OSTOPL-XQ4DN-7YHR2K",
        "stop-loss",
    ),
    "TCWJEG-FL4SZ-3FKGH6": _trade("XXBTZUSD", 1704204000.25, "buy", "41990.0", "0.02", "2.18348"),
    "TZX2WP-XSEOP-FP7WYR": _trade("XXBTZUSD", 1704124800.0, "buy", "41500.0", "0.01", "1.07900"),
}


# docs.kraken.com REST "Query Orders Info" (getOrdersInfo): the closed order behind each
# trade's ordertxid; `misc` "liquidated" marks a liquidation (stopped: triggered by stop).
def _order(status: str, side: str, ordertype: str, vol: str, misc: str) -> dict[str, Any]:
    return {
        "refid": None,
        "userref": 0,
        "status": status,
        "reason": None,
        "opentm": 1704124700.1,
        "closetm": 1704205000.6,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "type": side,
            "ordertype": ordertype,
            "price": "0",
            "price2": "0",
            "leverage": "none",
            "order": f"{side} {vol} XBTUSD @ {ordertype}",
            "close": "",
        },
        "vol": vol,
        "vol_exec": vol,
        "cost": "0",
        "fee": "0",
        "price": "0",
        "stopprice": "0",
        "limitprice": "0",
        "misc": misc,
        "oflags": "fciq",
        "trades": [],
    }


ORDERS = {
    "OQCLML-BW3P3-BUCMWZ": _order("closed", "buy", "limit", "0.03", ""),
    "OSTOPL-XQ4DN-7YHR2K": _order("closed", "sell", "stop-loss", "0.01", "stopped"),
}


def _row(time_s: int, close: Decimal) -> list[Any]:
    return [time_s, f"{close - 5:.1f}", f"{close + 10:.1f}", f"{close - 12:.1f}", f"{close:.1f}",
            f"{close:.1f}", "1.23400000", 40]  # fmt: skip


# docs.kraken.com REST "Get OHLC Data" (getOHLCData): rows of 8 values and "last".
OHLC = ok(
    {
        "XXBTZUSD": [_row(NOW_S - (9 - i) * 60, Decimal(41950 + 10 * i)) for i in range(10)],
        "last": NOW_S,
    }
)


# docs.kraken.com REST "Get Open Positions" (getOpenPositions), the documented example's
# second position, as is: a dust position whose `value` rounds to "0".
DUST_POSITION = {
    "TYMRFG-URRG5-2ZTQSD": {
        "ordertxid": "OF5WFH-V57DP-QANDAC",
        "posstatus": "open",
        "pair": "XXBTZUSD",
        "time": 1610448039.8374,
        "type": "buy",
        "ordertype": "limit",
        "cost": "0.00240",
        "fee": "0.00000",
        "vol": "0.00000010",
        "vol_closed": "0.00000000",
        "margin": "0.00048",
        "value": "0",
        "net": "+0.0006",
        "terms": "0.0100% per 4 hours",
        "rollovertm": "1616672637",
        "misc": "",
        "oflags": "",
    }
}


def add_dust(stub: VenueStub) -> str:
    stub.payloads["open_positions"]["result"].update(copy.deepcopy(DUST_POSITION))
    return "TYMRFG-URRG5-2ZTQSD"


def add_unlisted(stub: VenueStub) -> str:
    """A balance in an asset with no ZUSD pair in AssetPairs: it cannot be valued."""
    stub.payloads["balance"]["result"]["XXDG"] = "1000.0000000000"
    return "kraken:XXDG"


def _payloads() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "balance": BALANCE,
            "trade_balance": TRADE_BALANCE,
            "open_positions": OPEN_POSITIONS,
            "asset_pairs": ASSET_PAIRS,
            "ticker": TICKER,
            "trades_history": ok({"trades": TRADES, "count": len(TRADES)}),
            "orders": ORDERS,
            "ohlc": OHLC,
        }
    )


def _full_name(stub: VenueStub, pair: str) -> str | None:
    pairs = stub.payloads["asset_pairs"]["result"]
    if pair in pairs:
        return pair
    return next((name for name, info in pairs.items() if info.get("altname") == pair), None)


def _serve(name: str) -> Any:
    return lambda stub, _seen: Reply(body=stub.payloads[name])


def _ticker_route(stub: VenueStub, seen: Seen) -> Reply:
    payload = stub.payloads["ticker"]
    names = [_full_name(stub, pair) for pair in (seen.param("pair") or "").split(",")]
    if None in names or "result" not in payload:
        return Reply(
            body=payload if "result" not in payload else {"error": ["EQuery:Unknown asset pair"]}
        )
    return Reply(
        body={"error": payload["error"], "result": {n: payload["result"][n] for n in names}}
    )


def _ohlc(stub: VenueStub, seen: Seen) -> Reply:
    payload = stub.payloads["ohlc"]
    if _full_name(stub, seen.param("pair") or "") is None:
        return Reply(body={"error": ["EQuery:Unknown asset pair"]})
    return Reply(body=payload)


def _trades_history(stub: VenueStub, seen: Seen) -> Reply:
    payload = stub.payloads["trades_history"]
    if "result" not in payload or not isinstance(payload["result"].get("trades"), dict):
        return Reply(body=payload)
    start = float(seen.param("start") or 0)
    trades = payload["result"]["trades"]
    matching = sorted(
        (txid for txid, row in trades.items() if float(row.get("time", 0)) > start),
        key=lambda txid: -float(trades[txid].get("time", 0)),
    )
    offset = int(seen.param("ofs") or 0)
    page = {txid: trades[txid] for txid in matching[offset : offset + TRADES_PAGE]}
    result: dict[str, Any] = {"trades": page}
    if "count" in payload["result"]:  # optional: some answers leave it out
        result["count"] = len(matching)
    return Reply(body={"error": payload["error"], "result": result})


def _query_orders(stub: VenueStub, seen: Seen) -> Reply:
    wanted = (seen.param("txid") or "").split(",")
    orders = stub.payloads["orders"]
    if not all(txid in orders for txid in wanted):  # Kraken refuses the whole query
        return Reply(body={"error": ["EOrder:Invalid order"]})
    return Reply(body=ok({txid: orders[txid] for txid in wanted}))


def _authenticate(stub: VenueStub, seen: Seen) -> Reply | None:
    if "/private/" not in seen.path:
        return None
    nonce = seen.param("nonce") or ""
    digest = hashlib.sha256((nonce + seen.body).encode()).digest()
    expected = base64.b64encode(
        hmac.new(
            base64.b64decode(stub.secret), seen.path.encode() + digest, hashlib.sha512
        ).digest()
    ).decode()
    if seen.headers.get("API-Key") != stub.key or not hmac.compare_digest(
        seen.headers.get("API-Sign", ""), expected
    ):
        return Reply(body={"error": ["EAPI:Invalid key"]})
    if not nonce.isdigit() or int(nonce) <= stub.state.get("last_nonce", 0):
        return Reply(body={"error": ["EAPI:Invalid nonce"]})
    stub.state["last_nonce"] = int(nonce)
    return None


def _fault_body(status: int) -> object:
    return NotJson(f"<html><head><title>{status}</title></head><body>cloudflare</body></html>")


ROUTES = VenueRoutes(
    venue="kraken",
    routes={
        ("GET", "/0/public/AssetPairs"): _serve("asset_pairs"),
        ("GET", "/0/public/Ticker"): _ticker_route,
        ("GET", "/0/public/OHLC"): _ohlc,
        ("POST", "/0/private/Balance"): _serve("balance"),
        ("POST", "/0/private/TradeBalance"): _serve("trade_balance"),
        ("POST", "/0/private/OpenPositions"): _serve("open_positions"),
        ("POST", "/0/private/TradesHistory"): _trades_history,
        ("POST", "/0/private/QueryOrders"): _query_orders,
    },
    payloads=_payloads,
    authenticate=_authenticate,
    fault_body=_fault_body,
)

FACTS = VenueFacts(
    routes=ROUTES,
    key=KEY,
    secret=SECRET,
    key_var="KRAKEN_API_KEY",
    secret_var="KRAKEN_API_SECRET",
    symbol="XBTUSD",
    equity_usd=Decimal("76793.71"),  # eb + n
    cash_usd=Decimal("25000.5"),
    position_symbols=("XXBTZUSD", "XETHZUSD", "XXBTZUSD"),  # margin first, then balances
    bid=Decimal("42000.1"),
    ask=Decimal("42000.2"),
    fill_ids=("TCWJEG-FL4SZ-3FKGH6", "THVRQM-33VKH-UCI7BS"),
    benchmark="XBTUSD",
    unknown_symbol="SPY",
    add_dust=add_dust,
    add_unlisted=add_unlisted,
    malformed={
        "accounts": Malformed(("trade_balance", "result", "eb"), "'eb' is missing", "'eb'"),
        "positions": Malformed(
            ("open_positions", "result", "TF5GVO-T7ZZ2-6NBKBI", "cost"),
            "'cost' is missing",
            "'cost'",
        ),
        "bars": Malformed(("ohlc", "result", "XXBTZUSD", -2, 4), "7 values", "'close'"),
        "quote": Malformed(("ticker", "result", "XXBTZUSD", "a"), "'a' is missing", "'a'"),
        "fills": Malformed(
            ("trades_history", "result", "trades", "THVRQM-33VKH-UCI7BS", "price"),
            "'price' is missing",
            "'price'",
        ),
    },
)
