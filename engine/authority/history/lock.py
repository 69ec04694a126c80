"""A history lock: new risk refused for a scope of one account until a time.

A lock is state (`State.locks`, by `id`): created by the evaluation cycle when a
history protection fires (`history.evolve`), shown in status, ended by time (`until`)
or released by an operator (`released_at`, `released_by`, `release_reason` — kept
until `until` passes so that the trades that fired it do not lock again; a new
triggering trade does). It gates `can_execute`: an open or increase in its scope is
denied naming the protection, the trades and when the lock ends (`history.gate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.engine.policy.vocabulary import HISTORY_SCOPES

SIDES = ("long", "short")


def lock_id(policy: str, protection: str, account_id: str, scope: str, key: str, side: str) -> str:
    """ "default-protection/stoploss-guard/gen-01/account", ".../symbol=AAPL/long"."""
    where = scope if scope == "account" else f"{scope}={key}"
    return "/".join((policy, protection, account_id, where, *((side,) if side else ())))


@dataclass(frozen=True, slots=True)
class HistoryLock:
    policy: str  # the ProtectionPolicy whose `history:` entry fired
    protection: str  # the entry's id
    method: str  # stoploss_guard | cooldown | low_profit | max_drawdown
    account_id: str
    scope: str  # symbol | side | strategy | account
    key: str  # the symbol, side or strategy id it covers; "" for the account
    side: str  # "" both sides; long | short (only_per_side)
    until: datetime
    reason: str  # why it fired, with the values compared
    trade_ids: tuple[str, ...]  # the trades that triggered it, in closing order
    created_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def id(self) -> str:
        return lock_id(
            self.policy, self.protection, self.account_id, self.scope, self.key, self.side
        )

    def active(self, now: datetime) -> bool:
        """Blocks at `now`: not released and not over."""
        return self.released_at is None and now < self.until

    def covers(self, account_id: str, symbol: str, side: str, strategy_id: str) -> bool:
        """True when an order with these coordinates is in the lock's scope."""
        if account_id != self.account_id or (self.side and side != self.side):
            return False
        if self.scope == "symbol":
            return symbol == self.key
        if self.scope == "side":
            return side == self.key
        if self.scope == "strategy":
            return strategy_id == self.key
        return True  # account

    def describe(self) -> str:
        """What it covers, for people: "symbol AAPL of account gen-01 (long only)"."""
        what = f"account {self.account_id}"
        if self.scope != "account":
            label = "strategy" if self.scope == "strategy" else self.scope
            shown = self.key or '""'
            what = f"{label} {shown} of {what}"
        return what + (f" ({self.side} only)" if self.side else "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "policy": self.policy,
            "protection": self.protection,
            "method": self.method,
            "account_id": self.account_id,
            "scope": self.scope,
            "key": self.key,
            "side": self.side,
            "until": self.until.isoformat(),
            "reason": self.reason,
            "trade_ids": list(self.trade_ids),
            "created_at": self.created_at.isoformat(),
        }
        if self.released_at is not None:
            data["released_at"] = self.released_at.isoformat()
            data["released_by"] = self.released_by
            data["release_reason"] = self.release_reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryLock:
        """Raises KeyError, TypeError or ValueError on a malformed lock."""
        scope = str(data["scope"])
        if scope not in HISTORY_SCOPES:
            raise ValueError(f"lock scope {scope!r} is not {', '.join(HISTORY_SCOPES)}")
        side = str(data.get("side", ""))
        if side not in ("", *SIDES):
            raise ValueError(f"lock side {side!r} is not long, short or empty")
        released = data.get("released_at")
        return cls(
            policy=str(data["policy"]),
            protection=str(data["protection"]),
            method=str(data["method"]),
            account_id=str(data["account_id"]),
            scope=scope,
            key=str(data.get("key", "")),
            side=side,
            until=_time(data["until"]),
            reason=str(data["reason"]),
            trade_ids=tuple(str(t) for t in data.get("trade_ids", [])),
            created_at=_time(data["created_at"]),
            released_at=None if released is None else _time(released),
            released_by=None if data.get("released_by") is None else str(data["released_by"]),
            release_reason=None
            if data.get("release_reason") is None
            else str(data["release_reason"]),
        )


def locks_to_dict(locks: Mapping[str, HistoryLock]) -> dict[str, Any]:
    return {key: lock.to_dict() for key, lock in sorted(locks.items())}


def locks_from_dict(data: Mapping[str, Any]) -> dict[str, HistoryLock]:
    """The state file's `locks`, keyed by each lock's own id (whatever the file says)."""
    locks = (HistoryLock.from_dict(value) for value in data.values())
    return {lock.id: lock for lock in locks}


def _time(text: Any) -> datetime:
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; write it with +00:00 or Z")
    return value
