"""ProtectionPolicy and LimitPolicy compiled to one durable-rules ruleset per pair.

A request becomes one flat fact (`FIELDS`); the rules engine says which protections
block, whether a regime override is available and which limits are exceeded. Python
then applies the hierarchy (which block an override may bypass) and, for limits that
can be met by a smaller order, computes how much smaller — arithmetic, not a rule.

Boundaries, as the limits are named: a `max_...` value may be reached but not
exceeded (`>`); the kill switch trips *at* its drawdown (`>=`, "the drawdown that trips
it"); max_open_positions and the submit rate block the order that would go past the
count (`>=` on what is already there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bastion.engine.authority.request import INCREASING, REDUCING
from bastion.engine.policy.kinds.limits import DEFAULT_ALLOWED_ACTIONS, LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS, REGIME_SEVERITIES
from bastion.engine.rules import AllOf, AnyOf, Compare, CompiledRuleset, Condition, Not, RuleSpec
from bastion.engine.rules import compile_rules as _compile
from bastion.engine.rules.spec import specialize

# Rule ids. Protections are named as in the policy; limits carry a "limit." prefix.
CORE, OVERRIDE, GRACE, HOLDING, WHIPSAW = (
    "core_asset_immunity",
    "regime_override",
    "grace_period",
    "holding_period",
    "whipsaw_protection",
)
KILL_DRAWDOWN = "limit.kill_switch.drawdown"
KILL_DRIFT = "limit.kill_switch.drift"
SHORTING = "limit.region.shorting"
MARGIN = "limit.region.margin"
LIQUIDITY = "limit.liquidity"
OPEN_POSITIONS = "limit.max_open_positions"
SUBMIT_RATE = "limit.submit_rate"
TRADE_RISK = "limit.max_risk_per_trade"
PORTFOLIO_RISK = "limit.max_portfolio_risk"
PER_ASSET = "limit.max_per_asset"
PER_STRATEGY = "limit.max_per_strategy"
ORDER_NOTIONAL = "limit.max_notional_per_order"
SYMBOL_POSITION = "limit.max_position_per_symbol"
TRADING_STATE = "limit.trading_state"

# Limits that block outright, and limits an order can meet by being smaller (downsize),
# in the order they are checked and listed in a decision's trace.
BLOCKING_LIMITS = (KILL_DRAWDOWN, KILL_DRIFT, SHORTING, LIQUIDITY, OPEN_POSITIONS, SUBMIT_RATE)
SIZE_LIMITS = (
    TRADE_RISK,
    PORTFOLIO_RISK,
    PER_ASSET,
    PER_STRATEGY,
    ORDER_NOTIONAL,
    SYMBOL_POSITION,
    MARGIN,
)
HARD_LIMITS = (TRADING_STATE, *BLOCKING_LIMITS)
# Protections that block (the regime override only lifts blocks).
BLOCKING_PROTECTIONS = frozenset({CORE, GRACE, HOLDING, WHIPSAW})
LIMIT_ORDER = (*BLOCKING_LIMITS, *SIZE_LIMITS)
# Each limit's fact field and how a passing value relates to the limit (for the trace).
LIMIT_FIELDS = {
    KILL_DRAWDOWN: ("drawdown_pct", "<"),
    KILL_DRIFT: ("drift", "="),
    SHORTING: ("opens_short", "="),
    MARGIN: ("cash_shortfall_usd", "="),
    LIQUIDITY: ("liquidity_usd", "≥"),
    OPEN_POSITIONS: ("open_positions", "<"),
    SUBMIT_RATE: ("submits", "<"),
    TRADE_RISK: ("trade_risk_pct", "≤"),
    PORTFOLIO_RISK: ("portfolio_risk_pct", "≤"),
    PER_ASSET: ("asset_pct", "≤"),
    PER_STRATEGY: ("strategy_pct", "≤"),
    ORDER_NOTIONAL: ("order_notional_usd", "≤"),
    SYMBOL_POSITION: ("position_usd", "≤"),
}
SEVERITY_RANK = {name: rank for rank, name in enumerate(REGIME_SEVERITIES)}
DEFAULT_ALLOWED = DEFAULT_ALLOWED_ACTIONS

# Every field of the fact and what it holds (all present in every fact).
FIELDS = {
    "action": "the request's action",
    "increasing": "open or increase",
    "reducing": "close or decrease",
    "core": "the symbol is a core asset",
    "has_score": "the request gives current_score",
    "score": "current_score (0 when not given)",
    "grace_days": "days the score has been below the grace floor",
    "has_entry": "the position's entry time is known",
    "held_days": "days since the position was entered",
    "round_trips": "open→close round trips in the whipsaw window",
    "severity": "regime severity rank (low 0 … critical 3)",
    "override_idle_s": "seconds since the last override for this account/symbol",
    "trading_state": "the strictest of the account's and the symbol's trading state",
    "drawdown_pct": "daily drawdown of the account",
    "drift": "the account's drift flag",
    "opens_short": "the order opens or increases a short",
    "cash_shortfall_usd": "order value beyond the account's cash",
    "liquidity_usd": "the symbol's 24 h traded volume in USD",
    "open_positions": "symbols with a position now",
    "submits": "orders approved in the submit-rate window",
    "trade_risk_pct": "risk the order adds, in per cent of equity",
    "portfolio_risk_pct": "risk of every position after the order",
    "asset_pct": "exposure to the symbol after the order",
    "strategy": "the request's strategy id ('' when none)",
    "strategy_pct": "exposure of the strategy after the order",
    "order_notional_usd": "value of the order",
    "position_usd": "value of the symbol's position after the order",
}


def _is(name: str, value: bool = True) -> Compare:
    return Compare(name, "==", value)


def _action_in(actions: Sequence[str]) -> Condition:
    return AnyOf(*(Compare("action", "==", action) for action in actions))


def protection_rules(spec: ProtectionSpec) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    enabled = spec.enabled
    if CORE in enabled and spec.core_assets and spec.core_blocked_actions:
        blocked = sorted(spec.core_blocked_actions)
        rules.append(RuleSpec(CORE, AllOf(_is("core"), _action_in(blocked))))
    if OVERRIDE in enabled:
        rank = SEVERITY_RANK[spec.override_min_severity]
        available = AllOf(
            Compare("severity", ">=", rank),
            Compare("override_idle_s", ">=", spec.override_cooldown_s),
        )
        rules.append(RuleSpec(OVERRIDE, available))
    if GRACE in enabled:
        in_grace = AllOf(
            _is("reducing"),
            _is("has_score"),
            Compare("score", "<", spec.grace_min_score),
            Compare("grace_days", "<", spec.grace_duration_days),
        )
        rules.append(RuleSpec(GRACE, in_grace))
    if HOLDING in enabled:
        too_young = AllOf(
            _is("reducing"), _is("has_entry"), Compare("held_days", "<", spec.min_holding_days)
        )
        rules.append(RuleSpec(HOLDING, too_young))
    if WHIPSAW in enabled:
        cycling = AllOf(
            Compare("action", "==", "open"),
            Compare("round_trips", ">=", spec.whipsaw_max_round_trips),
        )
        rules.append(RuleSpec(WHIPSAW, cycling))
    return rules


def trading_state_rules(allowed: Sequence[tuple[str, Sequence[str]]]) -> list[RuleSpec]:
    rules = []
    for state, actions in allowed:
        if set(actions) >= set(ORDER_ACTIONS):
            continue
        in_state = Compare("trading_state", "==", state)
        condition = AllOf(in_state, Not(_action_in(actions))) if actions else in_state
        rules.append(RuleSpec(f"{TRADING_STATE}.{state}", condition))
    return rules


def limit_rules(spec: LimitSpec) -> list[RuleSpec]:
    adds = _is("increasing")
    rules = trading_state_rules(spec.allowed_actions)
    rules.append(
        RuleSpec(
            KILL_DRAWDOWN, AllOf(adds, Compare("drawdown_pct", ">=", spec.max_daily_drawdown_pct))
        )
    )
    if spec.kill_switch_on_drift:
        rules.append(RuleSpec(KILL_DRIFT, AllOf(adds, _is("drift"))))
    if not spec.shorting_allowed:
        rules.append(RuleSpec(SHORTING, AllOf(adds, _is("opens_short"))))
    if not spec.margin_allowed:
        rules.append(RuleSpec(MARGIN, AllOf(adds, Compare("cash_shortfall_usd", ">", 0))))
    rules += [
        RuleSpec(LIQUIDITY, AllOf(adds, Compare("liquidity_usd", "<", spec.min_liquidity_24h_usd))),
        RuleSpec(
            OPEN_POSITIONS,
            AllOf(
                Compare("action", "==", "open"),
                Compare("open_positions", ">=", spec.max_open_positions),
            ),
        ),
        RuleSpec(
            SUBMIT_RATE,
            AllOf(
                Compare("action", "!=", "cancel"), Compare("submits", ">=", spec.submit_rate.count)
            ),
        ),
        RuleSpec(
            TRADE_RISK, AllOf(adds, Compare("trade_risk_pct", ">", spec.max_risk_per_trade_pct))
        ),
        RuleSpec(
            PORTFOLIO_RISK,
            AllOf(adds, Compare("portfolio_risk_pct", ">", spec.max_portfolio_risk_pct)),
        ),
        RuleSpec(PER_ASSET, AllOf(adds, Compare("asset_pct", ">", spec.max_per_asset_pct))),
    ]
    for strategy, cap in spec.max_per_strategy_pct:
        condition = AllOf(
            adds, Compare("strategy", "==", strategy), Compare("strategy_pct", ">", cap)
        )
        rules.append(RuleSpec(f"{PER_STRATEGY}.{strategy}", condition))
    if spec.max_notional_per_order_usd is not None:
        rules.append(
            RuleSpec(
                ORDER_NOTIONAL,
                AllOf(adds, Compare("order_notional_usd", ">", spec.max_notional_per_order_usd)),
            )
        )
    if spec.max_position_per_symbol_usd is not None:
        rules.append(
            RuleSpec(
                SYMBOL_POSITION,
                AllOf(adds, Compare("position_usd", ">", spec.max_position_per_symbol_usd)),
            )
        )
    return rules


class AuthorityRuleset:
    """A (protection, limit) pair's rules, compiled once per order action.

    The action is known before the rules run, so each action gets the rules
    specialised to it (`rules.spec.specialize`): a rule that cannot hold for it is left
    out, and the comparisons of `action`, `increasing` and `reducing` are decided at
    compile time. A decrease, say, is matched without the limits that only an
    increase can break, and its fact carries 10 fields instead of 26 — the rules
    engine's cost grows with the fields of a fact. `match_one` answers exactly what
    the unspecialised ruleset would (a test compares them over every action).
    """

    __slots__ = ("by_action", "limit_ids", "rule_ids")

    def __init__(self, specs: Sequence[RuleSpec]) -> None:
        self.rule_ids: frozenset[str] = frozenset(spec.rule_id for spec in specs)
        # The limits in LIMIT_ORDER (per-strategy ones by their own ids), not trading states.
        self.limit_ids = frozenset(
            rule_id
            for rule_id in self.rule_ids
            if rule_id in LIMIT_ORDER or rule_id.startswith(f"{PER_STRATEGY}.")
        )
        self.by_action: dict[str, CompiledRuleset] = {}
        try:
            for action in ORDER_ACTIONS:
                self.by_action[action] = _compile(specialized(specs, action))
        except Exception:
            self.close()
            raise

    def match_one(self, fact: Mapping[str, Any]) -> frozenset[str]:
        """The ids of the rules that hold for one fact (its `action` picks the rules)."""
        return self.by_action[fact["action"]].match_one(fact)

    def close(self) -> None:
        for ruleset in self.by_action.values():
            ruleset.close()


def specialized(specs: Sequence[RuleSpec], action: str) -> list[RuleSpec]:
    """The rules as they apply to orders with this action (see `AuthorityRuleset`)."""
    known: dict[str, str | bool] = {
        "action": action,
        "increasing": action in INCREASING,
        "reducing": action in REDUCING,
    }
    kept = []
    for spec in specs:
        condition = specialize(spec.condition, known)
        if condition is False:
            continue  # cannot hold for this action
        # Always true for this action: keep it as written (the fact carries its fields).
        kept.append(spec if condition is True else RuleSpec(spec.rule_id, condition))
    return kept


def compile_authority(
    protection: ProtectionSpec | None, limits: LimitSpec | None
) -> AuthorityRuleset:
    """The rules for a (protection, limit) policy pair; None means the built-in
    trading-state table only (no protections / no limits configured)."""
    rules = protection_rules(protection) if protection is not None else []
    if limits is not None:
        rules += limit_rules(limits)
    else:
        rules += trading_state_rules(tuple(DEFAULT_ALLOWED.items()))
    return AuthorityRuleset(rules)  # fact fields no rule compares are not sent to the engine
