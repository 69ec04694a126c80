"""The replay's positions file: accounts, positions and (optionally) fills, as JSON.

Format (numbers may be JSON numbers or decimal strings; times ISO 8601 with a zone)::

    {
      "accounts": [
        {"id": "gen-01", "type": "gen", "cash_usd": 25000,
         "day_start_equity_usd": 71000, "peak_equity_usd": 73000}      <- last two optional
      ],
      "positions": [
        {"id": "SPY-1", "account_id": "gen-01", "symbol": "SPY", "asset_class": "equity",
         "quantity": 100, "side": "long", "entry_price_usd": 472.10,
         "entered_at": "2024-01-02T21:00:00Z",                          <- optional
         "strategy_id": "trend", "manual": false},                      <- optional
        {"id": "SPY-P", "account_id": "gen-01", "symbol": "SPY240419P00480000",
         "asset_class": "option", "quantity": 2, "side": "short", "entry_price_usd": 6.10,
         "option": {"option_type": "put", "strike_usd": 480,
                    "expires_at": "2024-04-19T20:00:00Z", "underlying_symbol": "SPY",
                    "implied_volatility": 0.16, "multiplier": 100}}    <- multiplier optional
      ],
      "fills": [                                                        <- optional
        {"id": "F-1", "account_id": "gen-01", "symbol": "SPY", "side": "sell",
         "quantity": 10, "price_usd": 480.2, "filled_at": "2024-02-01T15:00:00Z",
         "expected_price_usd": 480.4, "fee_usd": 1, "strategy_id": "trend",
         "realized_pnl_usd": -35.5,
         "order_id": "O-7", "exit_reason": "stop_loss"}                 <- last two optional
      ],
      "trades": [                                                       <- optional
        {"id": "T-1", "account_id": "gen-01", "symbol": "SPY", "side": "long",
         "strategy_id": "trend", "units": 10,                           <- strategy optional
         "opened_at": "2024-01-30T15:00:00Z", "closed_at": "2024-02-01T15:00:00Z",
         "entry_price_usd": 483.7, "exit_price_usd": 480.2,
         "profit_usd": -35.5, "profit_pct": -0.7339,                    <- both optional
         "exit_reason": "stop_loss"}
      ],
      "instruments": {"SPY": {"asset_class": "equity",                  <- optional
                              "sector": "broad-market"}}
    }

Closed trades: the ``trades`` listed, or — when there are none — the fills paired FIFO
(:mod:`trade_pairing`; a fill's ``exit_reason`` labels the trade it closes, ``signal`` by
default). A listed trade without ``profit_usd`` / ``profit_pct`` gets them from its prices
(no fees). Instruments: the ``instruments`` listed, else each position's asset class.

Every problem raises :class:`DataError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from bastion.adapters.venue import Fill, OptionContract, VenuePosition
from bastion.engine.errors import DataError, PolicyError
from bastion.engine.policy.yamlsource import SourceDocument, load_documents
from bastion.engine.snapshot.fields import EXIT_REASONS, INSTRUMENT_ASSET_CLASSES
from bastion.engine.snapshot.model import ClosedTrade, Instrument

T = TypeVar("T")
_CHOICES = {
    "type": ("gen", "rev", "com"),
    "asset_class": ("equity", "crypto", "option"),
    "side": ("long", "short"),
    "option_type": ("call", "put"),
    "exit_reason": EXIT_REASONS,
    "instrument_class": INSTRUMENT_ASSET_CLASSES,
}


@dataclass(frozen=True, slots=True)
class BookAccount:
    id: str
    type: str
    cash_usd: Decimal
    day_start_equity_usd: Decimal | None = None
    peak_equity_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Book:
    """What the file holds; position prices are placeholders the replay marks."""

    accounts: tuple[BookAccount, ...]
    positions: tuple[VenuePosition, ...]
    fills: tuple[Fill, ...]
    trades: tuple[ClosedTrade, ...] = ()
    instruments: Mapping[str, Instrument] = field(default_factory=dict)


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            self.data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise DataError(
                f"not valid JSON: {error.msg} (column {error.colno})",
                file=source,
                line=error.lineno,
            ) from None
        self._where: SourceDocument | None = None
        try:  # JSON is YAML: the YAML composer knows the line of every value
            self._where = load_documents(text, source)[0]
        except (PolicyError, IndexError):
            self._where = None

    def fail(self, pointer: str, message: str) -> DataError:
        line = self._where.locate(pointer).line if self._where is not None else 0
        field = pointer.strip("/").replace("/", ".") or "the file"
        return DataError(f"{field}: {message}", file=self.source, line=line)

    def items(self, key: str, *, required: bool) -> list[tuple[str, Mapping[str, Any]]]:
        if not isinstance(self.data, dict):
            raise self.fail("", 'expected a JSON object with "accounts" and "positions"')
        values = self.data.get(key)
        if values is None and not required:
            return []
        if not isinstance(values, list):
            raise self.fail(f"/{key}", "expected a list")
        found: list[tuple[str, Mapping[str, Any]]] = []
        for index, item in enumerate(values):
            if not isinstance(item, dict):
                raise self.fail(f"/{key}/{index}", "expected an object")
            found.append((f"/{key}/{index}", item))
        return found

    def get(self, item: Mapping[str, Any], at: str, name: str, parse: Callable[[Any], T]) -> T:
        if name not in item:
            raise self.fail(f"{at}/{name}", "is required")
        try:
            return parse(item[name])
        except (TypeError, ValueError, InvalidOperation) as error:
            raise self.fail(f"{at}/{name}", str(error)) from None

    def optional(
        self, item: Mapping[str, Any], at: str, name: str, parse: Callable[[Any], T]
    ) -> T | None:
        return self.get(item, at, name, parse) if item.get(name) is not None else None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _choice(name: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in _CHOICES[name]:
            raise ValueError(f"{value!r} is not one of {', '.join(_CHOICES[name])}")
        return str(value)

    return parse


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"expected a number, got {value!r}")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _positive(value: Any) -> Decimal:
    number = _number(value)
    if number <= 0:
        raise ValueError(f"must be > 0, got {number}")
    return number


def _time(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value).replace("Z", "+00:00"))
    if moment.utcoffset() is None:
        raise ValueError(f"{value!r} has no timezone; add Z or +00:00")
    return moment


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def load_book(path: str | Path) -> Book:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("no such positions file; check the path", file=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the positions file ({error})", file=source) from None
    return parse_book(text, source=source)


def parse_book(text: str, *, source: str = "<positions>") -> Book:
    reader = _Reader(text, source)
    accounts = [_account(reader, at, item) for at, item in reader.items("accounts", required=True)]
    ids = {account.id for account in accounts}
    positions = [
        _position(reader, at, item) for at, item in reader.items("positions", required=True)
    ]
    fills = [_fill(reader, at, item) for at, item in reader.items("fills", required=False)]
    trades = [_trade(reader, at, item) for at, item in reader.items("trades", required=False)]
    owners = [("positions", i, p.account_id) for i, p in enumerate(positions)]
    owners += [("fills", i, f.account_id) for i, f in enumerate(fills)]
    owners += [("trades", i, t.account_id) for i, t in enumerate(trades)]
    for kind, index, account_id in owners:
        if account_id not in ids:
            known = ", ".join(sorted(ids)) or "none"
            raise reader.fail(
                f"/{kind}/{index}/account_id",
                f"no account {account_id!r} in accounts (known: {known})",
            )
    return Book(
        tuple(accounts), tuple(positions), tuple(fills), tuple(trades), _instruments(reader)
    )


def _account(reader: _Reader, at: str, item: Mapping[str, Any]) -> BookAccount:
    return BookAccount(
        id=reader.get(item, at, "id", _text),
        type=reader.get(item, at, "type", _choice("type")),
        cash_usd=reader.get(item, at, "cash_usd", _number),
        day_start_equity_usd=reader.optional(item, at, "day_start_equity_usd", _positive),
        peak_equity_usd=reader.optional(item, at, "peak_equity_usd", _positive),
    )


def _position(reader: _Reader, at: str, item: Mapping[str, Any]) -> VenuePosition:
    asset_class = reader.get(item, at, "asset_class", _choice("asset_class"))
    option = None
    if asset_class == "option":
        leg = item.get("option")
        if not isinstance(leg, dict):
            raise reader.fail(f"{at}/option", "an option position needs an option object")
        where = f"{at}/option"
        option = OptionContract(
            option_type=reader.get(leg, where, "option_type", _choice("option_type")),
            strike_usd=reader.get(leg, where, "strike_usd", _positive),
            expires_at=reader.get(leg, where, "expires_at", _time),
            underlying_symbol=reader.get(leg, where, "underlying_symbol", _text),
            multiplier=reader.optional(leg, where, "multiplier", _positive) or Decimal(100),
            implied_volatility=reader.get(leg, where, "implied_volatility", _positive),
        )
    entry = reader.get(item, at, "entry_price_usd", _positive)
    return VenuePosition(
        id=reader.get(item, at, "id", _text),
        account_id=reader.get(item, at, "account_id", _text),
        symbol=reader.get(item, at, "symbol", _text),
        asset_class=asset_class,
        quantity=reader.get(item, at, "quantity", _positive),
        side=reader.get(item, at, "side", _choice("side")),
        entry_price_usd=entry,
        price_usd=entry,  # a placeholder: the replay marks it to the bars
        entered_at=reader.optional(item, at, "entered_at", _time),
        strategy_id=reader.optional(item, at, "strategy_id", _text) or "unassigned",
        manual=reader.optional(item, at, "manual", _flag) or False,
        option=option,
    )


def _fill(reader: _Reader, at: str, item: Mapping[str, Any]) -> Fill:
    side = reader.get(item, at, "side", _text)
    if side not in ("buy", "sell"):
        raise reader.fail(f"{at}/side", f"{side!r} is not one of buy, sell")
    return Fill(
        id=reader.get(item, at, "id", _text),
        account_id=reader.get(item, at, "account_id", _text),
        symbol=reader.get(item, at, "symbol", _text),
        side=side,
        quantity=reader.get(item, at, "quantity", _positive),
        price_usd=reader.get(item, at, "price_usd", _positive),
        filled_at=reader.get(item, at, "filled_at", _time),
        fee_usd=reader.optional(item, at, "fee_usd", _number) or Decimal(0),
        expected_price_usd=reader.optional(item, at, "expected_price_usd", _positive),
        strategy_id=reader.optional(item, at, "strategy_id", _text) or "unassigned",
        realized_pnl_usd=reader.optional(item, at, "realized_pnl_usd", _number),
        order_id=reader.optional(item, at, "order_id", _text) or "",
        exit_reason=reader.optional(item, at, "exit_reason", _choice("exit_reason")) or "signal",
    )


def _trade(reader: _Reader, at: str, item: Mapping[str, Any]) -> ClosedTrade:
    side = reader.get(item, at, "side", _choice("side"))
    units = reader.get(item, at, "units", _positive)
    entry = reader.get(item, at, "entry_price_usd", _positive)
    exit_ = reader.get(item, at, "exit_price_usd", _positive)
    opened_at = reader.get(item, at, "opened_at", _time)
    closed_at = reader.get(item, at, "closed_at", _time)
    if closed_at < opened_at:
        raise reader.fail(f"{at}/closed_at", "is before opened_at")
    direction = 1 if side == "long" else -1
    profit = reader.optional(item, at, "profit_usd", _number)
    if profit is None:
        profit = (exit_ - entry) * units * direction
    percent = reader.optional(item, at, "profit_pct", _number)
    return ClosedTrade(
        id=reader.get(item, at, "id", _text),
        account_id=reader.get(item, at, "account_id", _text),
        symbol=reader.get(item, at, "symbol", _text),
        side=side,
        strategy_id=reader.optional(item, at, "strategy_id", _text) or "",
        units=units,
        opened_at=opened_at,
        closed_at=closed_at,
        entry_price_usd=entry,
        exit_price_usd=exit_,
        profit_usd=profit,
        profit_pct=(profit / (entry * units) * 100).quantize(Decimal("0.0001"))
        if percent is None
        else percent,
        exit_reason=reader.get(item, at, "exit_reason", _choice("exit_reason")),
    )


def _instruments(reader: _Reader) -> dict[str, Instrument]:
    values = reader.data.get("instruments") if isinstance(reader.data, dict) else None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise reader.fail("/instruments", "expected an object keyed by symbol")
    found = {}
    for symbol, item in values.items():
        at = f"/instruments/{symbol}"
        if not isinstance(item, dict):
            raise reader.fail(at, "expected an object")
        found[symbol] = Instrument(
            symbol,
            reader.get(item, at, "asset_class", _choice("instrument_class")),
            reader.optional(item, at, "sector", _text),
        )
    return found
