"""Fixtures for the history protections: policies with `history:` entries, snapshots with
closed trades, and the evaluation cycle that turns them into locks.

Times are minutes before NOW, as freqtrade's tests write them (`min_ago_close`), and
profits are what freqtrade's `generate_mock_trade` books with its 0.25 % fee on each
side (tests/plugins/test_protections.py): a long closed at 0.9 × the entry loses
10.45 %, at 0.8 × 20.40 %, at 0.5 × 50.25 %; at 1.1 × it gains 9.45 %, at 1.5 ×
49.25 %; a short closed at 0.85 × the entry gains 14.57 %.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.engine.authority.history.evolve import evolve_locks
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.decision import Decision
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Snapshot, validate_snapshot
from tests.authority.builders import account, market
from tests.conftest import POLICIES

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ACCOUNT = "acct-1"
POLICY = "default-protection"

# freqtrade's profit_rate -> close_profit in per cent, fees included (see the docstring).
LOSS_10 = "-10.45"  # long, profit_rate 0.9
LOSS_20 = "-20.40"  # long, profit_rate 0.8
LOSS_50 = "-50.25"  # long, profit_rate 0.5
GAIN_9 = "9.45"  # long, profit_rate 1.1
GAIN_49 = "49.25"  # long, profit_rate 1.5
SHORT_GAIN_14 = "14.57"  # short, profit_rate 1.15

_SHIPPED = {
    stem: yaml.safe_load((POLICIES / f"{stem}.yaml").read_text(encoding="utf-8"))
    for stem in ("protection", "limits")
}
_LOOSE_LIMITS: dict[str, Any] = {
    "risk": {
        "max_risk_per_trade_pct": 100,
        "max_portfolio_risk_pct": 100,
        "max_open_positions": 100,
        "max_per_asset_pct": 100,
    },
    "orders": {
        "max_notional_per_order_usd": None,
        "max_position_per_symbol_usd": None,
        "submit_rate": "1000/1s",
    },
    "region": {"margin_allowed": True},
}


def minutes_ago(minutes: float, now: datetime = NOW) -> datetime:
    return now - timedelta(minutes=minutes)


def trade(
    symbol: str,
    closed_min_ago: float,
    profit_pct: str,
    *,
    exit_reason: str = "stop_loss",
    side: str = "long",
    strategy: str | None = "s1",
    account_id: str = ACCOUNT,
    id: str | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    """One closed trade as the snapshot's JSON writes it."""
    closed = minutes_ago(closed_min_ago, now)
    move = Decimal(profit_pct) / 100  # the exit price that books this profit (no fees)
    exit_price = Decimal(100) * (1 + move if side == "long" else 1 - move)
    data: dict[str, Any] = {
        "id": id or f"{symbol}-{side}-{closed_min_ago:g}",
        "account_id": account_id,
        "symbol": symbol,
        "side": side,
        "units": "10",
        "opened_at": (closed - timedelta(minutes=60)).isoformat(),
        "closed_at": closed.isoformat(),
        "entry_price_usd": "100",
        "exit_price_usd": str(exit_price),
        "profit_usd": str(Decimal(profit_pct) * 10),  # 10 units of 100 USD
        "profit_pct": str(profit_pct),
        "exit_reason": exit_reason,
    }
    if strategy is not None:
        data["strategy_id"] = strategy
    return data


def snapshot(
    trades: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime = NOW,
    symbols: Sequence[str] = ("XYZ", "XRP", "ETH", "BCH", "LTC", "NEO"),
    accounts: Sequence[Mapping[str, Any]] | None = None,
    severity: str = "low",
) -> Snapshot:
    """One account (ACCOUNT, type gen) and market data for every symbol the tests use."""
    return validate_snapshot(
        {
            "version": 1,
            "as_of": now.isoformat(),
            "accounts": list(accounts) if accounts is not None else [account(ACCOUNT)],
            "positions": [],
            "market": {symbol: market() for symbol in symbols},
            "system": {"error_rate_pct": 0, "connectivity_ratio": 1, "data_age_s": 1},
            "order_flow": [],
            "regime": {
                "name": "calm" if severity == "low" else "crash",
                "severity": severity,
                "changed_at": (now - timedelta(days=1)).isoformat(),
            },
            "trades": sorted((dict(t) for t in trades), key=lambda t: t["closed_at"]),
        }
    )


def entry(method: str, id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A `history:` entry; `lookback_min` / `lock_min` are freqtrade's minutes."""
    data: dict[str, Any] = {"id": id or method.replace("_", "-"), "method": method}
    if "lookback_min" in fields:
        data["lookback_s"] = fields.pop("lookback_min") * 60
    if "lock_min" in fields:
        data["lock_s"] = fields.pop("lock_min") * 60
    data.update(fields)
    return data


PolicyFactory = Callable[..., CompiledPolicySet]


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def write_policies(
    folder: Path, history: Sequence[Mapping[str, Any]], protection: Mapping[str, Any] | None = None
) -> Path:
    """policies/protection.yaml with `history` (and other spec changes, or `mode`), loose
    limits."""
    folder.mkdir(parents=True, exist_ok=True)
    changes = dict(protection or {})
    mode = changes.pop("mode", "enforce")  # an envelope field; the rest changes the spec
    spec = _merged(_SHIPPED["protection"]["spec"], {**changes, "history": history})
    document = {**_SHIPPED["protection"], "mode": mode, "spec": spec}
    (folder / "protection.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    limits = {**_SHIPPED["limits"], "spec": _merged(_SHIPPED["limits"]["spec"], _LOOSE_LIMITS)}
    (folder / "limits.yaml").write_text(yaml.safe_dump(limits), encoding="utf-8")
    declaration = {
        "apiVersion": "bastion/v1",
        "kind": "PolicySet",
        "metadata": {"name": "history-tests"},
        # A shadow-mode ProtectionPolicy does not count as present (BST606).
        "spec": {"required_kinds": ["ProtectionPolicy", "LimitPolicy"][mode == "shadow" :]},
    }
    (folder / "bastion.yaml").write_text(yaml.safe_dump(declaration), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyFactory]:
    """policies(*entries, protection={...}): the shipped protection policy with these
    `history:` entries, and loose limits; compiled once per distinct set."""
    built: dict[str, CompiledPolicySet] = {}

    def build(
        *history: Mapping[str, Any], protection: Mapping[str, Any] | None = None
    ) -> CompiledPolicySet:
        key = json.dumps([history, protection], sort_keys=True)
        if key not in built:
            folder = write_policies(tmp_path_factory.mktemp("policies"), history, protection)
            built[key] = compile_policy_set(load_policy_set([folder]))
        return built[key]

    yield build
    for compiled in built.values():
        compiled.close()


def cycle(
    compiled: CompiledPolicySet,
    trades: Iterable[Mapping[str, Any]],
    *,
    now: datetime = NOW,
    locks: Mapping[str, HistoryLock] | None = None,
) -> tuple[dict[str, HistoryLock], tuple[Decision, ...]]:
    """One evaluation cycle's locks over these trades at `now`."""
    return evolve_locks(compiled, snapshot(trades, now=now), locks or {}, now)


def locked(locks: Mapping[str, HistoryLock], now: datetime = NOW) -> set[str]:
    """The ids of the locks that block at `now`."""
    return {key for key, lock in locks.items() if lock.active(now)}


def lock_key(protection: str, where: str, side: str = "") -> str:
    """The id of a lock of POLICY on ACCOUNT: where is "account" or "symbol=XRP"."""
    return "/".join((POLICY, protection, ACCOUNT, where, *((side,) if side else ())))
