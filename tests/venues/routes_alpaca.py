"""Alpaca's documented JSON (docs.alpaca.markets; alpaca-py's own route tests) for the stub.

Trading API: ``/v2/account``, ``/v2/positions``, ``/v2/account/activities/FILL``
(paged by ``page_token`` = the last activity's id), ``/v2/orders/{id}`` (404 ``{"code":
40410000, "message": "order not found"}`` for an unknown one). Market data: ``/v2/stocks/bars``
(``{"bars": {symbol: [...]}, "next_page_token": null}``, honouring ``sort`` and ``limit``)
and ``/v2/stocks/quotes/latest``; option chains ``/v1beta1/options/snapshots/{underlying}``
(``{"snapshots": {OCC symbol: {...}}, "next_page_token"}``, paged by ``page_token``).
Auth: the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``
headers, else 401 ``{"code": 40110000, "message": "request is not authorized"}``.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.venues.stub import Malformed, Reply, Seen, VenueFacts, VenueRoutes, VenueStub, serve

KEY = "PKTESTALPACAKEY00000001"
SECRET = "alpaca-test-secret-0123456789abcdefghijklmn"

# docs.alpaca.markets "Get account" (GET /v2/account) example: fields and values.
ACCOUNT = {
    "account_blocked": False,
    "accrued_fees": "0",
    "account_number": "010203ABCD",
    "buying_power": "262113.632",
    "cash": "-23140.2",
    "created_at": "2019-06-12T22:47:07.99658Z",
    "currency": "USD",
    "daytrade_count": 0,
    "daytrading_buying_power": "262113.632",
    "equity": "103820.56",
    "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98",
    "initial_margin": "63480.38",
    "last_equity": "103529.24",
    "last_maintenance_margin": "38000.832",
    "long_market_value": "126960.76",
    "maintenance_margin": "38088.228",
    "multiplier": "4",
    "non_marginable_buying_power": "98945.02",
    "pattern_day_trader": False,
    "portfolio_value": "103820.56",
    "regt_buying_power": "80680.36",
    "short_market_value": "0",
    "shorting_enabled": True,
    "sma": "0",
    "status": "ACTIVE",
    "trade_suspended_by_user": False,
    "trading_blocked": False,
    "transfers_blocked": False,
}


def _position(asset_id: str, symbol: str, asset_class: str, **values: Any) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "symbol": symbol,
        "exchange": "NASDAQ" if asset_class == "us_equity" else "",
        "asset_class": asset_class,
        "asset_marginable": asset_class == "us_equity",
        "unrealized_plpc": "0.0",
        "unrealized_intraday_pl": "0.0",
        "unrealized_intraday_plpc": "0.0",
        "change_today": "0.0",
        **values,
    }


# docs.alpaca.markets "All open positions" (GET /v2/positions): the position entity's
# fields; quantities and prices chosen for the tests.
POSITIONS = [
    _position(
        "904837e3-3b76-47ec-b432-046db621571b", "AAPL", "us_equity",
        avg_entry_price="100.0", qty="5", side="long", market_value="600.0",
        cost_basis="500.0", unrealized_pl="100.0", current_price="120.0",
        lastday_price="119.0", qty_available="5",
    ),
    _position(
        "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "AAPL240119C00190000", "us_option",
        avg_entry_price="3.10", qty="2", side="long", market_value="840",
        cost_basis="620", unrealized_pl="220", current_price="4.2",
        lastday_price="4.0", qty_available="2",
    ),
    _position(
        "8ccae427-5dd0-45b3-b5fe-7ba5e422c766", "TSLA", "us_equity",
        avg_entry_price="250.0", qty="-10", side="short", market_value="-2400.0",
        cost_basis="-2500.0", unrealized_pl="100.0", current_price="240.0",
        lastday_price="241.0", qty_available="-10",
    ),
]  # fmt: skip


def _activity(
    id_: str, symbol: str, side: str, qty: str, price: str, at: str, order_id: str
) -> dict[str, Any]:
    return {
        "activity_type": "FILL",
        "cum_qty": qty,
        "id": id_,
        "leaves_qty": "0",
        "price": price,
        "qty": qty,
        "side": side,
        "symbol": symbol,
        "transaction_time": at,
        "order_id": order_id,
        "type": "fill",
    }


# docs.alpaca.markets "Account activities" (GET /v2/account/activities/FILL): the
# trade-activity entity's fields; ids in Alpaca's "<time>::<uuid>" form.
ACTIVITIES = [
    _activity("20240101150000000::5d5e7c31-0a3b-4f25-9d0e-7b1c6c6f2a01", "AAPL", "buy", "1",
              "183.00", "2024-01-01T15:00:00Z", "61e69015-8549-4bfd-b9c3-01e75843f47d"),
    _activity("20240102090000123::8efc7b9a-8b2b-4000-9955-d36e7db0df74", "AAPL", "buy", "5",
              "185.10", "2024-01-02T14:00:00.123Z", "904837e3-3b76-47ec-b432-046db621571b"),
    _activity("20240102091000456::3a1f2b7c-1d2e-4f5a-8b6c-7d8e9f0a1b2c", "TSLA", "sell_short",
              "10", "250.00", "2024-01-02T14:10:00.456Z", "7a5f4e2b-6f0c-4a8e-9d1b-2c3d4e5f6a7b"),
    # The stop leg of a bracket closing 4 AAPL (1 bought on 1 Jan, 3 of the 5 bought today).
    _activity("20240102092000789::c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f", "AAPL", "sell", "4",
              "182.50", "2024-01-02T14:20:00.789Z", "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"),
]  # fmt: skip


def _order(id_: str, symbol: str, side: str, type_: str, order_class: str) -> dict[str, Any]:
    # GET /v2/orders/{order_id}: the order entity of docs.alpaca.markets "Get order by ID".
    return {
        "id": id_,
        "client_order_id": f"bastion-{id_[:8]}",
        "created_at": "2024-01-01T14:59:59.5Z",
        "updated_at": "2024-01-02T14:20:00.8Z",
        "submitted_at": "2024-01-01T14:59:59.6Z",
        "filled_at": "2024-01-02T14:20:00.789Z",
        "expired_at": None,
        "canceled_at": None,
        "failed_at": None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": "904837e3-3b76-47ec-b432-046db621571b",
        "symbol": symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": "4",
        "filled_qty": "4",
        "filled_avg_price": "182.50",
        "order_class": order_class,
        "order_type": type_,
        "type": type_,
        "side": side,
        "position_intent": "sell_to_close" if side == "sell" else "buy_to_open",
        "time_in_force": "gtc",
        "limit_price": None,
        "stop_price": "182.60" if "stop" in type_ else None,
        "status": "filled",
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }


ORDERS = {
    order["id"]: order
    for order in (
        _order("61e69015-8549-4bfd-b9c3-01e75843f47d", "AAPL", "buy", "market", "simple"),
        _order("904837e3-3b76-47ec-b432-046db621571b", "AAPL", "buy", "limit", "bracket"),
        _order("7a5f4e2b-6f0c-4a8e-9d1b-2c3d4e5f6a7b", "TSLA", "sell", "market", "simple"),
        _order("e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b", "AAPL", "sell", "stop", "bracket"),
    )
}


def _bar(minute: int, close: float) -> dict[str, Any]:
    return {
        "t": f"2024-01-02T14:{minute:02d}:00Z",
        "o": close - 0.05,
        "h": close + 0.10,
        "l": close - 0.12,
        "c": close,
        "v": 1200 + minute,
        "n": 40,
        "vw": close,
    }


# docs.alpaca.markets "Historical bars" (GET /v2/stocks/bars): {"bars": {symbol: [...]},
# "next_page_token"}; bar fields t, o, h, l, c, v, n, vw.
BARS = {
    "bars": {
        "AAPL": [_bar(m, 185.0 + m / 100) for m in range(20, 30)],
        "TSLA": [_bar(m, 240.0 + m / 100) for m in range(20, 30)],
        "SPY": [_bar(m, 470.0 + m / 100) for m in range(20, 30)],
    },
    "next_page_token": None,
}


def _quote(bid: float, ask: float) -> dict[str, Any]:
    # The shape of docs.alpaca.markets "Latest quotes" (/v2/stocks/quotes/latest).
    return {"ap": ask, "as": 2, "ax": "V", "bp": bid, "bs": 1, "bx": "V", "c": ["R"],
            "t": "2024-01-02T14:29:59.969519616Z", "z": "C"}  # fmt: skip


# docs.alpaca.markets "Latest quotes" (GET /v2/stocks/quotes/latest) example.
QUOTE = {
    "quotes": {
        "AAPL": {
            "ap": 185.66,
            "as": 2,
            "ax": "V",
            "bp": 185.6,
            "bs": 1,
            "bx": "V",
            "c": ["R"],
            "t": "2024-01-02T14:29:59.969519616Z",
            "z": "C",
        },
        "TSLA": _quote(239.9, 240.1),
        "SPY": _quote(470.2, 470.3),
    }
}


def _option_snapshot(
    bid: float, ask: float, *, iv: float | None = None, delta: float | None = None
) -> dict[str, Any]:
    # One entry of alpaca-py's test_get_option_chain payload (and docs.alpaca.markets
    # "Option chain"): latestQuote, latestTrade, and greeks / impliedVolatility when known.
    entry: dict[str, Any] = {
        "latestQuote": {"ap": ask, "as": 119, "ax": "W", "bp": bid, "bs": 73, "bx": "N",
                        "c": "A", "t": "2024-01-02T14:29:58.259610112Z"},
        "latestTrade": {"c": "I", "p": round((bid + ask) / 2, 2), "s": 1,
                        "t": "2024-01-02T14:20:16.034908416Z", "x": "N"},
    }  # fmt: skip
    if iv is not None:
        entry["impliedVolatility"] = iv
    if delta is not None:
        entry["greeks"] = {"delta": delta, "gamma": 0.0124, "rho": 0.0233,
                           "theta": -0.1011, "vega": 0.1314}  # fmt: skip
    return entry


# AAPL's chain on 2024-01-02 (spot ~185): the held 190 call, calls a month out, and four
# contracts the adapter must leave out — an adjusted root (AAPL1…), a symbol that is no OCC
# symbol, a snapshot without a quote, a crossed quote (left out by the builder).
OPTION_CHAIN = {
    "AAPL240119C00190000": _option_snapshot(3.95, 4.25, iv=0.2214, delta=0.3902),
    "AAPL240216C00190000": _option_snapshot(5.90, 6.10, iv=0.2301, delta=0.4412),
    "AAPL240216C00200000": _option_snapshot(2.60, 2.75, iv=0.2255, delta=0.2531),
    "AAPL240216C00210000": _option_snapshot(0.98, 1.05),  # a quote, no greeks / IV
    "AAPL240216C00205000": _option_snapshot(1.70, 1.62, iv=0.2270, delta=0.1802),  # crossed
    "AAPL1240216C00200000": _option_snapshot(2.50, 2.80, iv=0.23, delta=0.25),
    "AAPL24216C00200000": _option_snapshot(2.50, 2.80),
    "AAPL240216P00180000": {"latestTrade": {"c": "I", "p": 2.1, "s": 1,
                                            "t": "2024-01-02T14:00:00Z", "x": "N"}},
}  # fmt: skip
CHAIN_PAGE_SIZE = 3  # small pages, so the SDK's paging is exercised


def _asset(symbol: str) -> dict[str, Any]:
    # GET /v2/assets/{symbol}: the asset entity of docs.alpaca.markets "Get an asset".
    return {
        "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "name": f"{symbol} stub asset",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": True,
    }


ASSETS = ("AAPL", "TSLA", "SPY")


def _crypto_asset(symbol: str) -> dict[str, Any]:
    # A crypto asset carries its order rules (alpaca-py Asset: min_order_size,
    # min_trade_increment, price_increment); GET /v2/assets/BTCUSD answers BTC/USD.
    return {
        **_asset(symbol),
        "id": "276e2673-764b-4ab6-a611-caf665ca6340",
        "class": "crypto",
        "exchange": "CRYPTO",
        "symbol": "BTC/USD",
        "marginable": False,
        "shortable": False,
        "easy_to_borrow": False,
        "min_order_size": "0.0001",
        "min_trade_increment": "0.000000001",
        "price_increment": "1",
    }


def _payloads() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "account": ACCOUNT,
            "positions": POSITIONS,
            "activities": ACTIVITIES,
            "orders": ORDERS,
            "bars": BARS,
            "quote": QUOTE,
            "option_chains": {"AAPL": OPTION_CHAIN},
            "assets": {symbol: _asset(symbol) for symbol in ASSETS}
            | {"BTCUSD": _crypto_asset("BTCUSD")},
        }
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _activities(stub: VenueStub, seen: Seen) -> Reply:
    rows = sorted(stub.payloads["activities"], key=lambda row: str(row.get("transaction_time")))
    after = seen.param("after")
    if after:
        rows = [row for row in rows if _time(str(row.get("transaction_time"))) > _time(after)]
    if seen.param("direction") == "desc":
        rows.reverse()
    token = seen.param("page_token")
    if token:
        ids = [row.get("id") for row in rows]
        rows = rows[ids.index(token) + 1 :]
    return Reply(body=rows[: int(seen.param("page_size") or 100)])


def _bars(stub: VenueStub, seen: Seen) -> Reply:
    every = copy.deepcopy(stub.payloads["bars"]["bars"])
    limit = int(seen.param("limit") or 1000)
    out = {}
    for symbol in (seen.param("symbols") or "").split(","):
        if symbol in every:
            rows = every[symbol][::-1] if seen.param("sort") == "desc" else every[symbol]
            out[symbol] = rows[:limit]
    return Reply(body={"bars": out, "next_page_token": None})


def _latest_quotes(stub: VenueStub, seen: Seen) -> Reply:
    quotes = stub.payloads["quote"]["quotes"]
    wanted = (seen.param("symbols") or "").split(",")
    return Reply(body={"quotes": {s: quotes[s] for s in wanted if s in quotes}})


def _assets(stub: VenueStub, seen: Seen) -> Reply:
    symbol = seen.path.rsplit("/", 1)[-1]
    if symbol in stub.payloads["assets"]:
        return Reply(body=stub.payloads["assets"][symbol])
    # Alpaca's error shape: {"code": <status × 100000 + n>, "message": ...}; 404 is 40410000
    # (alpaca-py answers it as APIError; docs.alpaca.markets "Get an asset": 404 Not Found).
    return Reply(404, {"code": 40410000, "message": f"asset not found for {symbol}"})


def _order_by_id(stub: VenueStub, seen: Seen) -> Reply:
    order = stub.payloads["orders"].get(seen.path.rsplit("/", 1)[-1])
    if order is None:  # Alpaca's 404 for an order it does not have
        return Reply(404, {"code": 40410000, "message": "order not found"})
    return Reply(body=order)


def _option_chain(stub: VenueStub, seen: Seen) -> Reply:
    underlying = seen.path.rsplit("/", 1)[-1]
    if seen.param("feed") == "opra":
        # A market-data refusal is {"message": ...} (no code), as for the SIP feed
        # without a subscription: "subscription does not permit querying recent SIP data".
        return Reply(403, {"message": "subscription does not permit querying recent OPRA data"})
    chain = stub.payloads["option_chains"].get(underlying, {})
    low, high = seen.param("expiration_date_gte"), seen.param("expiration_date_lte")
    symbols = [symbol for symbol in sorted(chain) if _within(_occ_day(symbol), low, high)]
    token = seen.param("page_token")
    start = symbols.index(token) if token else 0
    page = symbols[start : start + CHAIN_PAGE_SIZE]
    rest = symbols[start + CHAIN_PAGE_SIZE :]
    return Reply(
        body={
            "snapshots": {symbol: chain[symbol] for symbol in page},
            "next_page_token": rest[0] if rest else None,
        }
    )


def _within(day: str | None, low: str | None, high: str | None) -> bool:
    return day is None or ((low is None or day >= low) and (high is None or day <= high))


def _occ_day(symbol: str) -> str | None:
    """20YY-MM-DD of an OCC symbol's date (the last 15 characters start with YYMMDD);
    None for a symbol without one (Alpaca returns those too: they pass every filter)."""
    day = symbol[-15:-9]
    return f"20{day[:2]}-{day[2:4]}-{day[4:6]}" if day.isdigit() else None


def add_dust(stub: VenueStub) -> str:
    """A fractional dust position whose market value rounds to 0 and has no current price
    (the fields docs.alpaca.markets marks as present may be absent on some account types)."""
    row = _position(
        "64bbff51-59d6-4b3c-9351-13ad85e3c752", "SPY", "us_equity",
        avg_entry_price="470.0", qty="0.000000001", side="long", market_value="0",
        cost_basis="0", unrealized_pl="0", lastday_price="469.0", qty_available="0",
    )  # fmt: skip
    stub.payloads["positions"].append(row)
    return str(row["asset_id"])


def add_unlisted(stub: VenueStub) -> str:
    """A position in a symbol Alpaca's market data does not list."""
    row = _position(
        "0d9d2a70-0000-4e38-9c4b-aa1d5a0ed001", "XYZQ", "us_equity",
        avg_entry_price="1.0", qty="100", side="long", market_value="90.0",
        cost_basis="100.0", unrealized_pl="-10.0", current_price="0.9",
        lastday_price="0.95", qty_available="100",
    )  # fmt: skip
    stub.payloads["positions"].append(row)
    return str(row["asset_id"])


def _authenticate(stub: VenueStub, seen: Seen) -> Reply | None:
    if seen.headers.get("APCA-API-KEY-ID") == stub.key and (
        seen.headers.get("APCA-API-SECRET-KEY") == stub.secret
    ):
        return None
    return Reply(401, {"code": 40110000, "message": "request is not authorized"})


def _fault_body(status: int) -> object:
    if status == 403:  # Alpaca's refusal of a key's permissions (issue #12 quotes the code)
        return {"code": 40310000, "message": "request is not authorized"}
    words = {429: "too many requests", 500: "internal server error"}
    return {"code": status * 100_000, "message": words.get(status, "service unavailable")}


ROUTES = VenueRoutes(
    venue="alpaca",
    routes={
        ("GET", "/v2/account"): serve("account"),
        ("GET", "/v2/positions"): serve("positions"),
        ("GET", "/v2/account/activities/FILL"): _activities,
        ("GET", "/v2/stocks/bars"): _bars,
        ("GET", "/v2/stocks/quotes/latest"): _latest_quotes,
    },
    payloads=_payloads,
    authenticate=_authenticate,
    fault_body=_fault_body,
    prefixes={
        ("GET", "/v2/assets/"): _assets,
        ("GET", "/v2/orders/"): _order_by_id,
        ("GET", "/v1beta1/options/snapshots/"): _option_chain,
    },
)

FACTS = VenueFacts(
    routes=ROUTES,
    key=KEY,
    secret=SECRET,
    key_var="ALPACA_API_KEY_ID",
    secret_var="ALPACA_API_SECRET_KEY",
    symbol="AAPL",
    equity_usd=Decimal("103820.56"),
    cash_usd=Decimal("-23140.2"),
    position_symbols=("AAPL", "AAPL240119C00190000", "TSLA"),
    bid=Decimal("185.6"),
    ask=Decimal("185.66"),
    fill_ids=(ACTIVITIES[1]["id"], ACTIVITIES[2]["id"], ACTIVITIES[3]["id"]),
    market_data_needs_key=True,
    benchmark="SPY",
    unknown_symbol="XYZQ",
    add_dust=add_dust,
    add_unlisted=add_unlisted,
    malformed={
        "accounts": Malformed(("account", "equity"), "'equity' is missing", "'equity'"),
        "positions": Malformed(
            ("positions", 0, "avg_entry_price"),
            "'avg_entry_price' is missing",
            "'avg_entry_price'",
        ),
        "bars": Malformed(("bars", "bars", "AAPL", -1, "c"), "'c' is missing", "'c'"),
        "quote": Malformed(("quote", "quotes", "AAPL", "ap"), "'ap' is missing", "'ap'"),
        "fills": Malformed(("activities", 1, "price"), "'price' is missing", "'price'"),
    },
)
