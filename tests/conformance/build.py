"""Turn a conformance scenario's compact data into Bastion inputs: policies, snapshots,
requests and state, all through the public loaders (`load_policy_set`,
`validate_snapshot`, `request_from_dict`, `State.from_dict`).

Compact forms (every field optional unless said):

    policies:            merged over policies/*.yaml (the everything-open baseline)
      limits: {...}      LimitPolicy spec changes (nested mappings merge, null removes)
      protection: {...}  ProtectionPolicy spec changes (adds the ProtectionPolicy)
      breakers: [...]    BreakerPolicy breakers (adds a BreakerPolicy; cooldown 0, auto)
    snapshot:
      account: {equity, cash, day_start, peak}          USD; cash, day_start, peak = equity
      market: {SYMBOL: price | {price, atr, liquidity}}
      positions: [{symbol, quantity, side, entry, price, strategy, id, entered_min}]
      trades: [{symbol, side, profit_pct, exit_reason, closed_min, opened_min, strategy}]
      instruments: {SYMBOL: {asset_class, sector}}

Times are minutes relative to the scenario's `now` (negative: before it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bastion.engine.authority.order_list import OrderList, order_list_from_dict
from bastion.engine.authority.request import OrderRequest, request_from_dict
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, validate_snapshot
from bastion.engine.state import State

HERE = Path(__file__).resolve().parent
BASELINE = {
    stem: yaml.safe_load((HERE / "policies" / f"{stem}.yaml").read_text(encoding="utf-8"))
    for stem in ("limits", "protection")
}
ACCOUNT = "acct-1"
NOW_DEFAULT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it: mappings merge, None removes a key."""
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def policy_documents(policies: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The policy files (stem -> document) a scenario's `policies` section stands for."""
    documents = {
        "limits": {
            **BASELINE["limits"],
            "spec": merged(BASELINE["limits"]["spec"], policies.get("limits", {})),
        }
    }
    if "protection" in policies:
        documents["protection"] = {
            **BASELINE["protection"],
            "spec": merged(BASELINE["protection"]["spec"], policies["protection"]),
        }
    if "breakers" in policies:
        documents["breakers"] = {
            "apiVersion": "bastion/v1",
            "kind": "BreakerPolicy",
            "metadata": {"name": "conformance-breakers", "owner": "conformance-suite"},
            "spec": {
                "defaults": {"cooldown_s": 0, "reset": "auto"},
                "breakers": copy.deepcopy(policies["breakers"]),
            },
        }
    kinds = [document["kind"] for document in documents.values()]
    documents["bastion"] = {
        "apiVersion": "bastion/v1",
        "kind": "PolicySet",
        "metadata": {"name": "conformance"},
        "spec": {"required_kinds": kinds},
    }
    return documents


class PolicyCache:
    """Each distinct policy set written, linted and compiled once; closed at the end."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._built: dict[str, CompiledPolicySet] = {}
        self._written = 0  # folders written, refused sets included

    def get(self, policies: Mapping[str, Any]) -> CompiledPolicySet:
        key = json.dumps(policies, sort_keys=True, default=str)
        if key not in self._built:
            folder = self._folder / f"set-{self._written}"
            self._written += 1
            folder.mkdir(parents=True)
            for stem, document in policy_documents(policies).items():
                text = yaml.safe_dump(document, sort_keys=False)
                (folder / f"{stem}.yaml").write_text(text, encoding="utf-8")
            self._built[key] = compile_policy_set(load_policy_set([folder]))
        return self._built[key]

    def close(self) -> None:
        for compiled in self._built.values():
            compiled.close()


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _at(now: datetime, minutes: Any) -> str:
    return (now + timedelta(minutes=float(minutes))).isoformat()


def _market(spec: Any) -> dict[str, Any]:
    fields = spec if isinstance(spec, Mapping) else {"price": spec}
    price = _d(fields["price"])
    liquidity = str(fields.get("liquidity", 10_000_000_000))
    return {
        "price_usd": str(price),
        "bid_usd": str(price),
        "ask_usd": str(price),
        "atr_usd": str(fields.get("atr", price / 50)),
        "volume": 1_000_000,
        "avg_volume": 1_000_000,
        "volatility": "0.2",
        "normal_volatility": "0.2",
        "liquidity_usd": liquidity,
        "normal_liquidity_usd": liquidity,
        "correlation": "0.5",
        "normal_correlation": "0.5",
        "data_age_s": 1,
        "quality_score_ratio": 1,
    }


def _position(spec: Mapping[str, Any], prices: Mapping[str, Decimal], now: datetime) -> Any:
    symbol, side = spec["symbol"], spec.get("side", "long")
    entry = _d(spec.get("entry", prices.get(symbol, 1)))
    return {
        "id": spec.get("id", f"{symbol}-{side}"),
        "account_id": ACCOUNT,
        "symbol": symbol,
        "asset_class": spec.get("asset_class", "equity"),
        "quantity": str(spec["quantity"]),
        "side": side,
        "entry_price_usd": str(entry),
        "entered_at": _at(now, spec.get("entered_min", -30 * 24 * 60)),
        "price_usd": str(_d(spec.get("price", prices.get(symbol, entry)))),
        "strategy_id": spec.get("strategy", "s1"),
        "manual": False,
    }


def _trade(index: int, spec: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A closed trade of 1 unit entered at 100 USD with the given profit in per cent."""
    side, profit_pct = spec.get("side", "long"), _d(spec["profit_pct"])
    entry = Decimal(100)
    direction = 1 if side == "long" else -1
    exit_price = entry * (1 + direction * profit_pct / 100)
    closed = spec["closed_min"]
    return {
        "id": spec.get("id", f"T{index + 1}"),
        "account_id": ACCOUNT,
        "symbol": spec["symbol"],
        "side": side,
        "strategy_id": spec.get("strategy", "s1"),
        "units": "1",
        "opened_at": _at(now, spec.get("opened_min", float(closed) - 60)),
        "closed_at": _at(now, closed),
        "entry_price_usd": str(entry),
        "exit_price_usd": str(exit_price),
        "profit_usd": str(entry * profit_pct / 100),
        "profit_pct": str(profit_pct),
        "exit_reason": spec.get("exit_reason", "signal"),
    }


def snapshot_document(spec: Mapping[str, Any], as_of: datetime, base: datetime) -> dict[str, Any]:
    """The snapshot JSON document for `spec` as of `as_of` (times relative to `base`)."""
    account = spec.get("account", {})
    equity = _d(account.get("equity", 1_000_000))
    day_start = _d(account.get("day_start", equity))
    markets = {symbol: _market(value) for symbol, value in spec.get("market", {}).items()}
    prices = {symbol: _d(m["price_usd"]) for symbol, m in markets.items()}
    positions = [_position(p, prices, base) for p in spec.get("positions", ())]
    for held in positions:  # a held symbol without market data is valued at its price
        markets.setdefault(held["symbol"], _market(held["price_usd"]))
    document: dict[str, Any] = {
        "version": 1,
        "as_of": as_of.isoformat(),
        "accounts": [
            {
                "id": ACCOUNT,
                "type": "gen",
                "equity_usd": str(equity),
                "cash_usd": str(_d(account.get("cash", equity))),
                "day_start_equity_usd": str(day_start),
                "peak_equity_usd": str(_d(account.get("peak", max(equity, day_start)))),
                "realized_pnl_usd": 0,
                "unrealized_pnl_usd": 0,
                "drift_flag": bool(account.get("drift", False)),
            }
        ],
        "positions": positions,
        "market": markets,
        "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
        "order_flow": [],
        "regime": {"name": "calm", "severity": "low", "changed_at": _at(base, -7 * 24 * 60)},
    }
    if spec.get("trades"):
        document["trades"] = [_trade(i, t, base) for i, t in enumerate(spec["trades"])]
    if spec.get("instruments"):
        document["instruments"] = copy.deepcopy(dict(spec["instruments"]))
    return document


def snapshot(spec: Mapping[str, Any], as_of: datetime, base: datetime) -> Snapshot:
    return validate_snapshot(snapshot_document(spec, as_of, base))


def advanced(spec: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot spec after a step's changes: trades are appended (history grows),
    everything else merges (market, account) or replaces (positions)."""
    result = merged(spec, {k: v for k, v in changes.items() if k != "trades"})
    if "positions" in changes:
        result["positions"] = copy.deepcopy(changes["positions"])
    if "trades" in changes:
        result["trades"] = [*spec.get("trades", ()), *changes["trades"]]
    return result


def order(spec: Mapping[str, Any]) -> OrderRequest:
    return request_from_dict(json.loads(json.dumps(spec, default=str)), source="scenario")


def order_list(spec: Mapping[str, Any]) -> OrderList:
    """An order list step: `id` defaults to "L-1", `contingency` to none."""
    document = {"id": "L-1", **json.loads(json.dumps(spec, default=str))}
    return order_list_from_dict(document, source="scenario")


def state(spec: Mapping[str, Any]) -> State:
    """Initial engine state (State.from_dict): trading_states, halted / reducing symbols."""
    data: dict[str, Any] = {"version": 1}
    for name in ("trading_states", "halted_symbols", "reducing_symbols"):
        if name in spec:
            data[name] = spec[name]
    return State.from_dict(data) if len(data) > 1 else State()
