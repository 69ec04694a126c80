"""Engine state: frozen, versioned, serialisable. `evaluate` returns a new one.

- escalation level per position, with the time it was entered;
- breaker status per (breaker, subject): armed / tripped / cooldown, trip time,
  until, trip count, whether a manual reset is awaited, whether an auto breaker past its
  cooldown waits for its condition to clear;
- trading state per account: ACTIVE / REDUCING / HALTED, and halted symbols;
- counters.

The serialised form carries `version` so that an old state file is recognised
(and refused with a clear message) after the format changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.engine.authority.history.lock import HistoryLock, locks_from_dict, locks_to_dict
from bastion.engine.authority.pending_orders import NO_PENDING, Pending
from bastion.engine.errors import BastionError

STATE_VERSION = 1

ARMED, TRIPPED, COOLDOWN = "armed", "tripped", "cooldown"
TRADING_STATE_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


class StateError(BastionError):
    """A state file cannot be read. Caught by the CLI (exit 2) and the service."""


@dataclass(frozen=True, slots=True)
class EscalationState:
    level: int
    level_name: str
    since: datetime
    breach_atr: Decimal  # the breach when this level was entered (the live one is in the snapshot)
    policy: str = ""  # the EscalationPolicy that set the level (its intervals apply)


@dataclass(frozen=True, slots=True)
class ManualEscalation:
    """An operator's floor under a position's escalation level (POST /api/v1/escalations):
    the engine holds the position at least at `level` (a level's name in the position's
    EscalationPolicy) from `since` until `until` (None: until cleared by hand)."""

    level: str
    by: str
    reason: str
    since: datetime
    until: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "by": self.by,
            "reason": self.reason,
            "since": _time(self.since),
            "until": _time(self.until),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManualEscalation:
        """One `to_dict` read back. Raises KeyError, TypeError, ValueError."""
        return cls(
            level=str(data["level"]),
            by=str(data["by"]),
            reason=str(data["reason"]),
            since=_parse_time(data["since"]),
            until=_parse_optional(data.get("until")),
        )


@dataclass(frozen=True, slots=True)
class BreakerState:
    status: str  # armed | tripped | cooldown
    tripped_at: datetime | None = None
    until: datetime | None = None
    trip_count: int = 0
    awaiting_manual_reset: bool = False
    last_reset_by: str | None = None
    last_reset_reason: str | None = None
    # reset: auto, cooldown over, condition still holding: stays tripped (said once, by a
    # `held` decision) and re-arms only once the condition has cleared — never flaps.
    awaiting_clear: bool = False


@dataclass(frozen=True, slots=True)
class HighWater:
    """A trailing stop's mark for one position: the best price since it was opened —
    the highest for a long, the lowest for a short. `side` and `entered_at` tell a new
    position under a reused id (a flip, a re-entry) from the one the mark belongs to."""

    price_usd: Decimal
    side: str  # long | short
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class AuthorityState:
    """What `can_execute` remembers between requests, keyed "account/symbol" or account.

    - submits: when orders were approved, per account, in time order (from_dict sorts;
      code that builds one must too), pruned to the submit-rate window; modifications
      under "modify:" + the account id, pruned to the modify-rate window (authority/modify.py);
    - trades: approved opens and closes per account/symbol, pruned to the whipsaw window;
    - overrides: the last regime override per account/symbol (its cooldown);
    - grace: when a request first showed the symbol's score below the grace floor;
    - pending: orders approved (or reported sent) since the snapshot, counted until a
      snapshot shows them or they expire (authority/pending.py).
    """

    submits: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)
    trades: Mapping[str, tuple[tuple[str, datetime], ...]] = field(default_factory=dict)
    overrides: Mapping[str, datetime] = field(default_factory=dict)
    grace: Mapping[str, datetime] = field(default_factory=dict)
    pending: Pending = NO_PENDING

    def __bool__(self) -> bool:
        return bool(self.submits or self.trades or self.overrides or self.grace or self.pending)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "submits": {k: [_time(t) for t in v] for k, v in sorted(self.submits.items())},
            "trades": {
                k: [[what, _time(at)] for what, at in v] for k, v in sorted(self.trades.items())
            },
            "overrides": {k: _time(v) for k, v in sorted(self.overrides.items())},
            "grace": {k: _time(v) for k, v in sorted(self.grace.items())},
        }
        if self.pending:  # written when there is any: older files and readers stay as they were
            data["pending"] = self.pending.to_list()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorityState:
        return cls(
            submits={  # in time order: can_execute counts the window by bisection
                str(k): tuple(sorted(_parse_time(t) for t in v))
                for k, v in data.get("submits", {}).items()
            },
            trades={
                str(k): tuple(sorted(((_trade(what), _parse_time(at)) for what, at in v), key=_at))
                for k, v in data.get("trades", {}).items()
            },
            overrides={str(k): _parse_time(v) for k, v in data.get("overrides", {}).items()},
            grace={str(k): _parse_time(v) for k, v in data.get("grace", {}).items()},
            pending=Pending.from_list(data["pending"]) if "pending" in data else NO_PENDING,
        )


@dataclass(frozen=True, slots=True)
class State:
    escalations: Mapping[str, EscalationState] = field(default_factory=dict)  # by position id
    breakers: Mapping[str, BreakerState] = field(default_factory=dict)  # "breaker@subject"
    trading_states: Mapping[str, str] = field(default_factory=dict)  # by account id
    halted_symbols: frozenset[str] = frozenset()
    reducing_symbols: frozenset[str] = frozenset()  # reduce-only for every account
    roll_urgencies: Mapping[str, str] = field(default_factory=dict)  # by position id
    unevaluable: frozenset[str] = frozenset()  # checks that lacked data last time
    counters: Mapping[str, int] = field(default_factory=dict)
    evaluated_at: datetime | None = None
    authority: AuthorityState = AuthorityState()  # can_execute's memory (written when used)
    # Trailing-stop marks by position id; tracked only while a breaker compares
    # position.drawdown_from_high_pct (evaluation/high_water.py), written when non-empty.
    high_water: Mapping[str, HighWater] = field(default_factory=dict)
    # History-protection locks by lock id (authority/history): made by the evaluation,
    # ended by time or an operator's release; written when non-empty.
    locks: Mapping[str, HistoryLock] = field(default_factory=dict)
    # Operators' floors under escalation levels, by position id (evaluation/escalation.py):
    # ended by their ttl, a DELETE, or the position closing; written when non-empty.
    manual_escalations: Mapping[str, ManualEscalation] = field(default_factory=dict)

    def breaker(self, key: str) -> BreakerState:
        return self.breakers.get(key, BreakerState(ARMED))

    def trading_state(self, account_id: str) -> str:
        return self.trading_states.get(account_id, "ACTIVE")

    def with_authority(self, memory: AuthorityState) -> State:
        """This state with `can_execute`'s memory replaced (direct: on the order hot path,
        where `dataclasses.replace` costs more than the rest of the update)."""
        return State(
            self.escalations,
            self.breakers,
            self.trading_states,
            self.halted_symbols,
            self.reducing_symbols,
            self.roll_urgencies,
            self.unevaluable,
            self.counters,
            self.evaluated_at,
            memory,
            self.high_water,
            self.locks,
            self.manual_escalations,
        )

    def bump(self, **increments: int) -> State:
        counters = dict(self.counters)
        for name, amount in increments.items():
            counters[name] = counters.get(name, 0) + amount
        return replace(self, counters=counters)

    def to_dict(self) -> dict[str, Any]:
        data = self._to_dict()
        if self.authority:
            data["authority"] = self.authority.to_dict()
        if self.high_water:
            data["high_water"] = {
                key: {
                    "price_usd": str(mark.price_usd),
                    "side": mark.side,
                    "entered_at": _time(mark.entered_at),
                }
                for key, mark in sorted(self.high_water.items())
            }
        if self.locks:
            data["locks"] = locks_to_dict(self.locks)
        if self.manual_escalations:
            data["manual_escalations"] = {
                key: value.to_dict() for key, value in sorted(self.manual_escalations.items())
            }
        return data

    def _to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "evaluated_at": _time(self.evaluated_at),
            "escalations": {
                key: {
                    "level": value.level,
                    "level_name": value.level_name,
                    "since": _time(value.since),
                    "breach_atr": str(value.breach_atr),
                    "policy": value.policy,
                }
                for key, value in sorted(self.escalations.items())
            },
            "breakers": {
                key: {
                    "status": value.status,
                    "tripped_at": _time(value.tripped_at),
                    "until": _time(value.until),
                    "trip_count": value.trip_count,
                    "awaiting_manual_reset": value.awaiting_manual_reset,
                    "last_reset_by": value.last_reset_by,
                    "last_reset_reason": value.last_reset_reason,
                    # written when set: older files and readers stay as they were
                    **({"awaiting_clear": True} if value.awaiting_clear else {}),
                }
                for key, value in sorted(self.breakers.items())
            },
            "trading_states": dict(sorted(self.trading_states.items())),
            "halted_symbols": sorted(self.halted_symbols),
            "reducing_symbols": sorted(self.reducing_symbols),
            "roll_urgencies": dict(sorted(self.roll_urgencies.items())),
            "unevaluable": sorted(self.unevaluable),
            "counters": dict(sorted(self.counters.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        if not isinstance(data, Mapping):
            raise StateError("state must be a JSON object")
        version = data.get("version")
        if version != STATE_VERSION:
            raise StateError(
                f"state version {version!r} is not {STATE_VERSION}; start from an empty state "
                "(omit --state) or convert the file"
            )
        try:
            return cls(
                escalations={
                    key: EscalationState(
                        level=int(value["level"]),
                        level_name=str(value["level_name"]),
                        since=_parse_time(value["since"]),
                        breach_atr=Decimal(str(value["breach_atr"])),
                        policy=str(value.get("policy", "")),
                    )
                    for key, value in data.get("escalations", {}).items()
                },
                breakers={
                    key: BreakerState(
                        status=_status(value["status"]),
                        tripped_at=_parse_optional(value.get("tripped_at")),
                        until=_parse_optional(value.get("until")),
                        trip_count=int(value.get("trip_count", 0)),
                        awaiting_manual_reset=bool(value.get("awaiting_manual_reset", False)),
                        last_reset_by=value.get("last_reset_by"),
                        last_reset_reason=value.get("last_reset_reason"),
                        awaiting_clear=bool(value.get("awaiting_clear", False)),
                    )
                    for key, value in data.get("breakers", {}).items()
                },
                trading_states={
                    str(k): _trading_state(v) for k, v in data.get("trading_states", {}).items()
                },
                halted_symbols=frozenset(str(s) for s in data.get("halted_symbols", [])),
                reducing_symbols=frozenset(str(s) for s in data.get("reducing_symbols", [])),
                roll_urgencies={str(k): str(v) for k, v in data.get("roll_urgencies", {}).items()},
                unevaluable=frozenset(str(s) for s in data.get("unevaluable", [])),
                counters={str(k): int(v) for k, v in data.get("counters", {}).items()},
                evaluated_at=_parse_optional(data.get("evaluated_at")),
                authority=AuthorityState.from_dict(data.get("authority", {})),
                high_water={
                    str(key): HighWater(
                        price_usd=_price(value["price_usd"]),
                        side=_side(value["side"]),
                        entered_at=_parse_time(value["entered_at"]),
                    )
                    for key, value in data.get("high_water", {}).items()
                },
                locks=locks_from_dict(data.get("locks", {})),
                manual_escalations={
                    str(key): ManualEscalation.from_dict(value)
                    for key, value in data.get("manual_escalations", {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as error:
            raise StateError(f"state file is malformed: {error!r}") from error


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(text: Any) -> datetime:
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; write it with +00:00 or Z")
    return value


def _parse_optional(text: Any) -> datetime | None:
    return None if text is None else _parse_time(text)


def _status(value: Any) -> str:
    if value not in (ARMED, TRIPPED, COOLDOWN):
        raise ValueError(f"breaker status {value!r} is not armed, tripped or cooldown")
    return str(value)


def _price(value: Any) -> Decimal:
    price = Decimal(str(value))
    if not price.is_finite() or price <= 0:
        raise ValueError(f"high-water price {value!r} is not a positive number")
    return price


def _side(value: Any) -> str:
    if value not in ("long", "short"):
        raise ValueError(f"high-water side {value!r} is not long or short")
    return str(value)


def _trading_state(value: Any) -> str:
    if value not in TRADING_STATE_RANK:
        raise ValueError(f"trading state {value!r} is not ACTIVE, REDUCING or HALTED")
    return str(value)


def _at(trade: tuple[str, datetime]) -> datetime:
    return trade[1]


def _trade(value: Any) -> str:
    if value not in ("open", "close"):
        raise ValueError(f"trade {value!r} is not open or close")
    return str(value)
