"""ProtectionPolicy and LimitPolicy compiled to durable-rules rulesets per pair and action.

A request becomes one flat fact (`FIELDS`); the rules engine says which protections
block, whether a regime override is available and which limits are exceeded. Python
then applies the hierarchy (which block an override may bypass) and, for limits that
can be met by a smaller order, computes how much smaller — arithmetic, not a rule.

Each rule comes from one control (`authority.controls`, one module each); this module
gathers them, keeps the rule ids other modules name, and compiles a ruleset per action
on first use, from a cache shared by the pairs of a policy set (`AuthorityRuleset`).

Boundaries, as the limits are named: a `max_...` value may be reached but not
exceeded (`>`); the kill switch trips *at* its drawdown (`>=`, "the drawdown that trips
it"); max_open_positions and the submit rate block the order that would go past the
count (`>=` on what is already there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

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
from bastion.engine.errors import RuleEngineError
from bastion.engine.policy.kinds.limits import DEFAULT_ALLOWED_ACTIONS, LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import CompiledRuleset, RuleSpec
from bastion.engine.rules.cache import RulesetCache
from bastion.engine.rules.spec import Number, specialize

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


class _Loaded(NamedTuple):
    token: int  # the cache entry (`RulesetCache.touch`)
    ruleset: CompiledRuleset
    params: str  # the parameters' values, encoded for `match_one`


class AuthorityRuleset:
    """A (protection, limit) pair's rules, compiled per order action on first use.

    The action is known before the rules run, so each action gets the rules
    specialised to it (`rules.spec.specialize`): a rule that cannot hold for it is left
    out, and the comparisons of `action`, `increasing` and `reducing` are decided at
    compile time. A decrease, say, is matched without the limits that only an
    increase can break, and its fact carries 11 fields instead of an open's 18 — the
    rules engine's cost grows with the fields of a fact; only the controls whose rules
    are kept for an action compute their fields (`fills`). `match_one` answers exactly
    what the unspecialised ruleset would (a test compares them over every action).

    The compiled rulesets come from a `RulesetCache`, shared by every pair of the policy
    set: pairs whose rules for an action are equal share one ruleset, compiled when an
    order first needs it. Thresholds a policy set moved into parameters (`spec.Ref`,
    `params`: their values for this pair) are appended to each fact, encoded once here.
    """

    __slots__ = (
        "_cache",
        "_loaded",
        "_owns_cache",
        "_params",
        "_specs",
        "fills",
        "limit_ids",
        "limits",
        "rule_ids",
    )

    def __init__(
        self,
        specs: Sequence[RuleSpec],
        cache: RulesetCache | None = None,
        params: Mapping[str, Number] | None = None,
    ) -> None:
        self._specs = tuple(specs)
        self._params: Mapping[str, Number] = dict(params or {})
        self._owns_cache = cache is None
        self._cache = RulesetCache() if cache is None else cache
        self._loaded: dict[str, _Loaded] = {}
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
        # Per action, the controls whose rules can hold for it: only they fill the fact.
        self.fills: dict[str, tuple[tuple[Protection, ...], tuple[Control, ...]]] = {
            action: _fillers({spec.rule_id for spec in specialized(self._specs, action)})
            for action in ORDER_ACTIONS
        }

    def load(self, action: str) -> CompiledRuleset:
        """The action's ruleset, compiled now if no pair with the same rules did so.
        Raises RuleEngineError for rules the engine refuses."""
        return self._load(action).ruleset

    def _load(self, action: str) -> _Loaded:
        token, ruleset = self._cache.get(specialized(self._specs, action))
        if ruleset.param_keys:
            wanted = {name: self._params[name] for name in ruleset.param_keys}
            loaded = _Loaded(token, ruleset, ruleset.params(wanted))
        else:
            loaded = _Loaded(token, ruleset, "")
        self._loaded[action] = loaded
        return loaded

    @property
    def by_action(self) -> dict[str, CompiledRuleset]:
        """Every action's ruleset (compiled now where needed; once closed, the ones
        it had, all closed)."""
        if self._cache.closed:
            return {action: loaded.ruleset for action, loaded in self._loaded.items()}
        return {action: self.load(action) for action in ORDER_ACTIONS}

    def match_one(self, fact: Mapping[str, Any]) -> frozenset[str]:
        """The ids of the rules that hold for one fact (its `action` picks the rules)."""
        action = fact["action"]
        loaded = self._loaded.get(action)
        if loaded is None or loaded[1].closed:  # not yet, or evicted from the cache
            loaded = self._load(action)
        elif self._cache.crowded:  # recency matters only once evictions are near
            self._cache.touch(loaded[0])
        _, ruleset, params = loaded
        try:
            return ruleset.match_one(fact, params)
        except RuleEngineError:
            if not ruleset.closed:
                raise
        # Evicted between the look-up and the match (another thread): compile it again.
        loaded = self._load(action)
        return loaded.ruleset.match_one(fact, loaded.params)

    def close(self) -> None:
        """Close the pair's own cache (no `cache` given); a shared cache is closed by
        its owner (`CompiledPolicySet.close`)."""
        if self._owns_cache:
            self._cache.close()


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


def pair_rules(protection: ProtectionSpec | None, limits: LimitSpec | None) -> list[RuleSpec]:
    """The rules of a (protection, limit) policy pair, as written."""
    rules = protection_rules(protection) if protection is not None else []
    if limits is not None:
        rules += limit_rules(limits)
    else:
        rules += trading_state_rules(tuple(DEFAULT_ALLOWED.items()))
    return rules


def compile_authority(
    protection: ProtectionSpec | None,
    limits: LimitSpec | None,
    cache: RulesetCache | None = None,
) -> AuthorityRuleset:
    """The rules for a (protection, limit) policy pair; None means the built-in
    trading-state table only (no protections / no limits configured). Every action's
    ruleset is compiled now (errors surface here)."""
    rules = AuthorityRuleset(pair_rules(protection, limits), cache)
    try:
        rules.by_action  # noqa: B018  # compile every action now
    except Exception:
        rules.close()
        raise
    return rules  # fact fields no rule compares are not sent to the engine
