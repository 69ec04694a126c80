"""The `history:` entries of a ProtectionPolicy: protections over the closed-trade history.

Each entry looks back over the snapshot's closed trades (`Snapshot.trades`) and, when
its method fires, locks new risk (open / increase) for a symbol, a side, a strategy or
a whole account until a computed time (`lock_s` after the last trade that triggered
it) or a clock time (`unlock_at`, "HH:MM" UTC). The methods follow freqtrade's
protections (freqtrade/plugins/protections/):

- stoploss_guard (StoplossGuard): `max_stop_losses` stop-loss or liquidation exits
  with a profit below `required_profit_pct` within the lookback;
- cooldown (CooldownPeriod): any exit, anchored at the exit time;
- low_profit (LowProfitPairs): the summed profit of the lookback's trades is below
  `required_profit_pct`;
- max_drawdown (MaxDrawdown): the drawdown of the cumulated profit of the lookback's
  trades, in closing order, is above `max_drawdown_pct`.

The engine that evaluates them is `bastion.engine.authority.history`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bastion.engine.policy import schema_dsl as s
from bastion.engine.policy.convert import dec, opt_dec
from bastion.engine.policy.vocabulary import HISTORY_ID_PATTERN, HISTORY_METHODS, HISTORY_SCOPES

UNLOCK_AT_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
# The parameters only some methods read: method -> the fields it reads.
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "stoploss_guard": ("max_stop_losses", "required_profit_pct", "only_per_side"),
    "cooldown": (),
    "low_profit": ("required_profit_pct", "only_per_side"),
    "max_drawdown": ("max_drawdown_pct",),
}
ALL_PARAMS = ("max_stop_losses", "required_profit_pct", "only_per_side", "max_drawdown_pct")
# What each method must be told (no silent default for a threshold).
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "stoploss_guard": ("max_stop_losses",),
    "cooldown": (),
    "low_profit": ("required_profit_pct",),
    "max_drawdown": ("max_drawdown_pct",),
}
DEFAULT_SCOPE = {
    "stoploss_guard": "account",
    "cooldown": "symbol",
    "low_profit": "symbol",
    "max_drawdown": "account",
}

ENTRY_SCHEMA = s.obj(
    "One protection over the closed trades of a lookback window.",
    {
        "id": s.string(
            "Unique id within the policy, used in locks, decisions, reasons and may_bypass.",
            pattern=HISTORY_ID_PATTERN,
            examples=["stoploss-guard"],
        ),
        "description": s.string("What the protection is for, for people."),
        "method": s.string(
            "stoploss_guard: N stop-losses; cooldown: a pause after any exit; low_profit: "
            "summed profit below a floor; max_drawdown: drawdown of the cumulated profit.",
            enum=HISTORY_METHODS,
        ),
        "lookback_s": s.seconds(
            "The window of closed trades looked at: trades closed in (now - lookback_s, now].",
            exclusive_minimum=0,
            examples=[3600],
        ),
        "trade_limit": s.number(
            "Closed trades (in the lookback, in the lock's scope) needed before the "
            "protection can fire.",
            integer=True,
            minimum=0,
            default=1,
        ),
        "max_stop_losses": s.number(
            "stoploss_guard: the number of stop-loss (or liquidation) exits in the lookback "
            "that locks (freqtrade's StoplossGuard trade_limit).",
            integer=True,
            minimum=1,
            examples=[3],
        ),
        "required_profit_pct": s.percent(
            "low_profit: lock when the summed profit of the lookback's trades is below "
            "this; stoploss_guard: count only stop-losses whose profit is below this "
            "(default 0: losing stops).",
            minimum=-100,
            maximum=None,
        ),
        "only_per_side": s.boolean(
            "stoploss_guard, low_profit: count long and short trades apart and lock only "
            "the side that fired."
        ),
        "max_drawdown_pct": s.percent(
            "max_drawdown: lock when the drawdown of the lookback's cumulated profit "
            "(the sum of the trades' profit_pct, in closing order, from 0) is above this.",
            maximum=None,
            examples=[15],
        ),
        "lock_s": s.seconds(
            "How long a lock lasts, from the close of the last trade that triggered it. "
            "Give lock_s or unlock_at, not both.",
            exclusive_minimum=0,
            examples=[1800],
        ),
        "unlock_at": s.string(
            "A lock ends at this UTC clock time (HH:MM) after the last triggering trade "
            "(the next day when that time has passed). Give lock_s or unlock_at, not both.",
            pattern=UNLOCK_AT_PATTERN,
            examples=["05:00"],
        ),
        "scope": s.string(
            "What a lock covers within the account: symbol (the trades' symbol), side "
            "(long or short), strategy (the trades' strategy_id) or the whole account. "
            "Default: account for stoploss_guard and max_drawdown, symbol otherwise.",
            enum=HISTORY_SCOPES,
        ),
        "enabled": s.boolean("Set false to keep the entry in the file but off.", default=True),
    },
    required=("id", "method", "lookback_s"),
    extra={
        "allOf": [
            {
                "if": {
                    "properties": {
                        "method": {"const": method, "description": f"A {method} entry."}
                    },
                    "required": ["method"],
                },
                "then": {"required": list(required)},
            }
            for method, required in REQUIRED_PARAMS.items()
            if required
        ]
    },
)

HISTORY_SCHEMA = s.array(
    "Protections over the closed-trade history (freqtrade's protections): each locks new "
    "risk for a symbol, side, strategy or account when it fires. Checked for opens and "
    "increases only; a regime override bypasses one only when may_bypass lists its id.",
    ENTRY_SCHEMA,
    default=[],
    examples=[
        [
            {
                "id": "stoploss-guard",
                "method": "stoploss_guard",
                "lookback_s": 3600,
                "max_stop_losses": 3,
                "lock_s": 1800,
                "scope": "account",
            }
        ]
    ],
)


@dataclass(frozen=True, slots=True)
class HistoryProtection:
    """One `history:` entry, resolved (method defaults applied)."""

    id: str
    method: str
    lookback_s: Decimal
    trade_limit: int
    scope: str
    lock_s: Decimal | None
    unlock_at: str | None  # "HH:MM" UTC
    max_stop_losses: int = 1
    required_profit_pct: Decimal = Decimal(0)
    only_per_side: bool = False
    max_drawdown_pct: Decimal = Decimal(0)
    enabled: bool = True
    description: str = ""
    given: frozenset[str] = frozenset()  # the optional parameters the file sets (lint)

    @property
    def lock_end(self) -> str:
        """How the lock's end is worded: "for 1800 s" or "until 05:00 UTC"."""
        if self.unlock_at is not None and self.lock_s is None:
            return f"until {self.unlock_at} UTC"
        if self.lock_s is not None and self.unlock_at is None:
            return f"for {self.lock_s.normalize():f} s"
        return "for the longer of both ends"


def build_entry(data: Mapping[str, Any]) -> HistoryProtection:
    method = str(data["method"])
    return HistoryProtection(
        id=str(data["id"]),
        method=method,
        lookback_s=dec(data["lookback_s"]),
        trade_limit=int(data.get("trade_limit", 1)),
        scope=str(data.get("scope", DEFAULT_SCOPE[method])),
        lock_s=opt_dec(data.get("lock_s")),
        unlock_at=None if data.get("unlock_at") is None else str(data["unlock_at"]),
        max_stop_losses=int(data.get("max_stop_losses", 1)),
        required_profit_pct=dec(data.get("required_profit_pct", 0)),
        only_per_side=bool(data.get("only_per_side", False)),
        max_drawdown_pct=dec(data.get("max_drawdown_pct", 0)),
        enabled=bool(data.get("enabled", True)),
        description=str(data.get("description", "")),
        given=frozenset(name for name in ALL_PARAMS if name in data),
    )


def build_history(entries: Iterable[Mapping[str, Any]]) -> tuple[HistoryProtection, ...]:
    return tuple(build_entry(entry) for entry in entries)
