"""ProtectionPolicy and LimitPolicy compiled to one durable-rules ruleset per pair.

A request becomes one flat fact (`FIELDS`); the rules engine says which protections
block, whether a regime override is available and which limits are exceeded. Python
then applies the hierarchy (which block an override may bypass) and, for limits that
can be met by a smaller order, computes how much smaller — arithmetic, not a rule.

Each rule comes from one control (`authority.controls`, one module each); this module
gathers them, keeps the rule ids other modules name, and compiles a ruleset per action.

Boundaries, as the limits are named: a `max_...` value may be reached but not
exceeded (`>`); the kill switch trips *at* its drawdown (`>=`, "the drawdown that trips
it"); max_open_positions and the submit rate block the order that would go past the
count (`>=` on what is already there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bastion.engine.authority import controls
from bastion.engine.authority.controls import (
    core_asset_immunity,
    expiry,
    exposure_groups,
    grace_period,
    holding_period,
    instrument_lot,
    instrument_notional,
    instrument_price,
    instrument_quantity,
    kill_drawdown,
    kill_drift,
    liquidity,
    margin,
    modify_rate,
    open_positions,
    order_notional,
    per_asset,
    per_strategy,
    portfolio_risk,
    reduce_only,
    regime_override,
    shorting,
    size_increment,
    submit_rate,
    symbol_position,
    trade_risk,
    trading_state,
    whipsaw_protection,
)
from bastion.engine.authority.controls.base import SEVERITY_RANK, Control, Limit, Protection
from bastion.engine.authority.request import INCREASING, REDUCING
from bastion.engine.policy.kinds.limits import DEFAULT_ALLOWED_ACTIONS, LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import CompiledRuleset, RuleSpec
from bastion.engine.rules import compile_rules as _compile
from bastion.engine.rules.spec import specialize

# Rule ids. Protections are named as in the policy; limits carry a "limit." prefix.
CORE = core_asset_immunity.ID
OVERRIDE = regime_override.ID
GRACE = grace_period.ID
HOLDING = holding_period.ID
WHIPSAW = whipsaw_protection.ID
KILL_DRAWDOWN = kill_drawdown.ID
KILL_DRIFT = kill_drift.ID
SHORTING = shorting.ID
MARGIN = margin.ID
LIQUIDITY = liquidity.ID
OPEN_POSITIONS = open_positions.ID
SUBMIT_RATE = submit_rate.ID
MODIFY_RATE = modify_rate.ID
TRADE_RISK = trade_risk.ID
PORTFOLIO_RISK = portfolio_risk.ID
PER_ASSET = per_asset.ID
PER_STRATEGY = per_strategy.ID
PER_SECTOR = exposure_groups.SECTOR.id
PER_ASSET_CLASS = exposure_groups.ASSET_CLASS.id
ORDER_NOTIONAL = order_notional.ID
SYMBOL_POSITION = symbol_position.ID
SIZE_INCREMENT = size_increment.ID
EXPIRY = expiry.ID
REDUCE_ONLY = reduce_only.ID
INSTRUMENT_PRICE = instrument_price.ID
MIN_QUANTITY = instrument_quantity.MIN_ID
MAX_QUANTITY = instrument_quantity.MAX_ID
MIN_NOTIONAL = instrument_notional.MIN_ID
MAX_NOTIONAL = instrument_notional.MAX_ID
LOT_SIZE = instrument_lot.ID
# The true / false fact fields of the instrument and order-shape controls.
ORDER_SHAPE_FLAGS = (
    "expired",
    "reduce_only_breached",
    "bad_price",
    "below_min_quantity",
    "below_min_notional",
    "above_max_notional",
    "above_max_quantity",
    "off_lot",
)
TRADING_STATE = trading_state.ID

# Limits that block outright, and limits an order can meet by being smaller (downsize),
# in the order they are checked and listed in a decision's trace (`controls.LIMITS`).
BLOCKING_LIMITS = tuple(c.id for c in controls.LIMITS if c.blocking)
SIZE_LIMITS = tuple(c.id for c in controls.LIMITS if not c.blocking)
HARD_LIMITS = (TRADING_STATE, *BLOCKING_LIMITS)
# Protections that block (the regime override only lifts blocks).
BLOCKING_PROTECTIONS = frozenset(name for name in controls.PROTECTIONS if name != OVERRIDE)
LIMIT_ORDER = tuple(c.id for c in controls.LIMITS)
# Each limit's fact field and how a passing value relates to the limit (for the trace).
LIMIT_FIELDS = {c.id: (c.shown_field, c.relation) for c in controls.LIMITS}
DEFAULT_ALLOWED = DEFAULT_ALLOWED_ACTIONS

# The fields every fact carries; each control adds the ones it reads (`Control.fields`).
BASE_FIELDS = {
    "action": "the request's action",
    "increasing": "open or increase, or a modify that raises the order's size",
    "reducing": "close or decrease",
    "strategy": "the request's strategy id ('' when none)",
}
FIELDS = {
    **BASE_FIELDS,
    **{
        name: meaning
        for control in (*controls.PROTECTIONS.values(), controls.TRADING_STATE, *controls.LIMITS)
        for name, meaning in control.fields.items()
    },
}

__all__ = ["SEVERITY_RANK"]


def protection_rules(spec: ProtectionSpec) -> list[RuleSpec]:
    return [rule for control in controls.PROTECTIONS.values() for rule in control.rules(spec)]


def trading_state_rules(allowed: Sequence[tuple[str, Sequence[str]]]) -> list[RuleSpec]:
    return trading_state.state_rules(allowed)


def limit_rules(spec: LimitSpec) -> list[RuleSpec]:
    rules = controls.TRADING_STATE.rules(spec)
    for control in controls.LIMITS:
        rules += control.rules(spec)
    return rules


class AuthorityRuleset:
    """A (protection, limit) pair's rules, compiled once per order action.

    The action is known before the rules run, so each action gets the rules
    specialised to it (`rules.spec.specialize`): a rule that cannot hold for it is left
    out, and the comparisons of `action`, `increasing` and `reducing` are decided at
    compile time. A decrease, say, is matched without the limits that only an
    increase can break, and its fact carries 11 fields instead of an open's 18 — the
    rules engine's cost grows with the fields of a fact; only the controls whose rules
    are kept for an action compute their fields (`fills`). `match_one` answers exactly
    what the unspecialised ruleset would (a test compares them over every action).
    """

    __slots__ = ("by_action", "fills", "limit_ids", "limits", "rule_ids")

    def __init__(self, specs: Sequence[RuleSpec]) -> None:
        self.rule_ids: frozenset[str] = frozenset(spec.rule_id for spec in specs)
        # The limits' rules (per-strategy ones by their own ids), not trading states.
        self.limit_ids = frozenset(
            rule_id
            for rule_id in self.rule_ids
            if any(control.owns(rule_id) for control in controls.LIMITS)
        )
        # The limits with a rule here, in check order.
        self.limits: tuple[Limit, ...] = tuple(
            control
            for control in controls.LIMITS
            if any(control.owns(rule_id) for rule_id in self.limit_ids)
        )
        self.by_action: dict[str, CompiledRuleset] = {}
        # Per action, the controls whose rules can hold for it: only they fill the fact.
        self.fills: dict[str, tuple[tuple[Protection, ...], tuple[Control, ...]]] = {}
        try:
            for action in ORDER_ACTIONS:
                kept = specialized(specs, action)
                self.by_action[action] = _compile(kept)
                self.fills[action] = _fillers({spec.rule_id for spec in kept})
        except Exception:
            self.close()
            raise

    def match_one(self, fact: Mapping[str, Any]) -> frozenset[str]:
        """The ids of the rules that hold for one fact (its `action` picks the rules)."""
        return self.by_action[fact["action"]].match_one(fact)

    def close(self) -> None:
        for ruleset in self.by_action.values():
            ruleset.close()


def _fillers(rule_ids: set[str]) -> tuple[tuple[Protection, ...], tuple[Control, ...]]:
    """The protections, and the limits (the trading state first), owning these rules."""
    protections = tuple(
        control
        for control in controls.PROTECTIONS.values()
        if any(control.owns(rule_id) for rule_id in rule_ids)
    )
    limits = tuple(
        control
        for control in (controls.TRADING_STATE, *controls.LIMITS)
        if any(control.owns(rule_id) for rule_id in rule_ids)
    )
    return protections, limits


def specialized(specs: Sequence[RuleSpec], action: str) -> list[RuleSpec]:
    """The rules as they apply to orders with this action (see `AuthorityRuleset`)."""
    known: dict[str, str | bool] = {
        "action": action,
        "increasing": action in INCREASING,
        "reducing": action in REDUCING,
    }
    if action == "modify":  # adds exposure when it raises the order's size: known per fact
        del known["increasing"]
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
