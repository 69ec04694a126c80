"""Strategy intents → an ExecutionPlan of RiskAdjustedActions; RiskStatus of an account.

Strategies say what they want (`StrategyIntent`); Bastion turns that into what may be
done. Per pair, deterministically:

1. Each intent's desired exposure: `exit`, `flat` (and `reduce` without an exposure)
   → 0; `hold` → the strategy's exposure in the pair now; `enter` / `increase` without
   an exposure → sized from volatility (equity × max_risk_per_trade_pct over
   ATR × atr_multiple, valued at the price).
2. Clamped to the strategy's max_per_strategy_pct cap, then weighted by confidence
   (`hold` is not weighted: it keeps what is there).
3. Summed over the pair's intents (sorted by strategy id, then timeframe) into one
   target; the resolution — every contribution, the clamp, the sum — is recorded in
   the plan's metadata.
4. The target goes through `can_execute` as one order (open / increase / decrease /
   close), so every protection and limit applies; the answer becomes the pair's
   RiskAdjustedAction (blocked with reasons, or the approved — possibly downsized —
   target). The state is fed from one order to the next, as a caller would.

Money is Decimal; `now` is passed in; the same inputs give the same plan (its id is
a hash of its content).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from types import MappingProxyType
from typing import Any

from bastion.engine.authority.book import HUNDRED, ZERO, AccountBook, book_of
from bastion.engine.authority.check import ExecutionDecision, can_execute, resolve_account
from bastion.engine.authority.request import DEFAULT_INCREMENT, OrderRequest
from bastion.engine.decision import plain, render_value
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

CENT = Decimal("0.01")
INTENT_TYPES = ("enter", "exit", "increase", "reduce", "hold")
INTENT_SIDES = ("long", "flat")


class IntentError(ValueError):
    """An intent is malformed (names the field); raised before anything is planned."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyIntent:
    strategy_id: str
    pair: str
    side: str  # long | flat (long-only: shorts are not intents)
    intent_type: str  # enter | exit | increase | reduce | hold
    desired_exposure_usd: Decimal | None = None  # None: Bastion sizes it
    confidence: Decimal = Decimal(1)  # 0..1
    timeframe: str = ""
    generated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.side not in INTENT_SIDES:
            raise IntentError(
                f"intent {self.strategy_id}/{self.pair}: side {self.side!r} is not long or flat"
            )
        if self.intent_type not in INTENT_TYPES:
            raise IntentError(
                f"intent {self.strategy_id}/{self.pair}: intent_type {self.intent_type!r} is not "
                + ", ".join(INTENT_TYPES)
            )
        if not Decimal(0) <= self.confidence <= Decimal(1):
            raise IntentError(
                f"intent {self.strategy_id}/{self.pair}: "
                f"confidence {self.confidence} is not in 0..1"
            )
        if self.desired_exposure_usd is not None and self.desired_exposure_usd < 0:
            raise IntentError(
                f"intent {self.strategy_id}/{self.pair}: desired_exposure_usd must be ≥ 0"
            )


@dataclass(frozen=True, slots=True)
class RiskAdjustedAction:
    pair: str
    strategy_id: str  # the contributing strategies, "+"-joined in order
    action_type: str  # open | increase | reduce | close | none
    target_base_size: Decimal
    target_notional_usd: Decimal
    current_base_size: Decimal
    reason: str
    blocked: bool
    blocked_reasons: tuple[str, ...]
    risk_limits_snapshot: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "strategy_id": self.strategy_id,
            "action_type": self.action_type,
            "target_base_size": render_value(self.target_base_size),
            "target_notional_usd": render_value(self.target_notional_usd),
            "current_base_size": render_value(self.current_base_size),
            "reason": self.reason,
            "blocked": self.blocked,
            "blocked_reasons": list(self.blocked_reasons),
            "risk_limits_snapshot": dict(self.risk_limits_snapshot),
        }


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    plan_id: str
    generated_at: datetime
    account_id: str
    actions: tuple[RiskAdjustedAction, ...]
    metadata: Mapping[str, Any]
    decisions: tuple[ExecutionDecision, ...]  # one per order checked, for the audit trail
    state: State  # pass to the next call

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "generated_at": render_value(self.generated_at),
            "account_id": self.account_id,
            "actions": [action.to_dict() for action in self.actions],
            "metadata": _plain(self.metadata),
            "decisions": [d.decision.to_dict() for d in self.decisions],
        }


@dataclass(frozen=True, slots=True)
class RiskStatus:
    account_id: str
    kill_switch_active: bool
    kill_switch_reasons: tuple[str, ...]
    daily_drawdown_pct: Decimal
    drift_flag: bool
    trading_state: str
    total_exposure_pct: Decimal
    portfolio_risk_pct: Decimal
    open_positions: int
    per_asset_exposure_pct: Mapping[str, Decimal]
    per_strategy_exposure_pct: Mapping[str, Decimal]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _plain(
            {
                "account_id": self.account_id,
                "kill_switch_active": self.kill_switch_active,
                "kill_switch_reasons": list(self.kill_switch_reasons),
                "daily_drawdown_pct": self.daily_drawdown_pct,
                "drift_flag": self.drift_flag,
                "trading_state": self.trading_state,
                "total_exposure_pct": self.total_exposure_pct,
                "portfolio_risk_pct": self.portfolio_risk_pct,
                "open_positions": self.open_positions,
                "per_asset_exposure_pct": dict(self.per_asset_exposure_pct),
                "per_strategy_exposure_pct": dict(self.per_strategy_exposure_pct),
            }
        )
        return data


def _plain(value: Any) -> Any:
    return plain(value, bools_as_text=False)


def _limits_for(policies: CompiledPolicySet, account_type: str, symbol: str) -> LimitSpec | None:
    """The governing LimitPolicy's spec ("" symbol: one not restricted to symbols)."""
    policy = policies.governing_order_rules(account_type, symbol, None).limits
    return None if policy is None else policy.spec


def _pct(value: Decimal, equity: Decimal) -> Decimal:
    return (value / equity * HUNDRED).quantize(Decimal("0.0001")) if equity > 0 else ZERO


def risk_status(
    policies: CompiledPolicySet, snapshot: Snapshot, state: State, account_id: str | None = None
) -> RiskStatus:
    """Kill switch, drawdown, drift, exposure in total / per asset / per strategy."""
    account_id = resolve_account(snapshot, account_id)
    book = book_of(snapshot).accounts[account_id]
    account = book.account
    limits = _limits_for(policies, account.type, "")
    reasons: list[str] = []
    if limits is not None and book.drawdown_pct >= limits.max_daily_drawdown_pct:
        reasons.append(
            f"daily drawdown {render_value(book.drawdown_pct.quantize(Decimal('0.01')))} % ≥ "
            f"{render_value(limits.max_daily_drawdown_pct)} %"
        )
    if limits is not None and limits.kill_switch_on_drift and account.drift_flag:
        reasons.append("drift flag set (books disagree)")
    equity = account.equity_usd
    include_manual = limits.include_manual_positions if limits else True
    strategies = (
        book.strategy_exposure_with_manual_usd if include_manual else book.strategy_exposure_usd
    )
    return RiskStatus(
        account_id=account_id,
        kill_switch_active=bool(reasons),
        kill_switch_reasons=tuple(reasons),
        daily_drawdown_pct=book.drawdown_pct.quantize(Decimal("0.0001")),
        drift_flag=account.drift_flag,
        trading_state=state.trading_state(account_id),
        total_exposure_pct=_pct(book.exposure_usd, equity),
        portfolio_risk_pct=_pct(book.risk_usd(limits.atr_multiple if limits else ZERO), equity),
        open_positions=book.open_positions(include_manual=include_manual),
        per_asset_exposure_pct={
            symbol: _pct(held.exposure_usd, equity) for symbol, held in sorted(book.symbols.items())
        },
        per_strategy_exposure_pct={
            strategy: _pct(value, equity) for strategy, value in sorted(strategies.items())
        },
    )


@dataclass(frozen=True, slots=True)
class _Contribution:
    intent: StrategyIntent
    desired_usd: Decimal
    clamped_usd: Decimal
    weighted_usd: Decimal
    note: str


def _contribution(
    intent: StrategyIntent, book: AccountBook, snapshot: Snapshot, limits: LimitSpec | None
) -> _Contribution:
    market = snapshot.market.get(intent.pair)
    strategy_now = book.strategy_symbol_exposure_usd.get((intent.strategy_id, intent.pair), ZERO)
    weighted = True
    if intent.side == "flat" or intent.intent_type == "exit":
        desired, note = ZERO, "flat / exit: no exposure"
    elif intent.intent_type == "hold":
        desired, note, weighted = strategy_now, "hold: keeps its exposure", False
    elif intent.desired_exposure_usd is not None:
        desired, note = intent.desired_exposure_usd, "desired exposure"
    elif intent.intent_type == "reduce":
        desired, note = ZERO, "reduce without an exposure: to 0"
    elif limits is not None and market is not None and market.atr_usd > 0:
        budget = book.account.equity_usd * limits.max_risk_per_trade_pct / HUNDRED
        desired = strategy_now + budget / (market.atr_usd * limits.atr_multiple) * market.price_usd
        note = "sized from volatility"
    else:
        desired, note = strategy_now, "cannot size (no ATR or LimitPolicy): keeps its exposure"
    clamped = desired
    caps = dict(limits.max_per_strategy_pct) if limits else {}
    if intent.strategy_id in caps:
        cap = book.account.equity_usd * caps[intent.strategy_id] / HUNDRED
        if desired > cap:
            clamped = cap
            note += f"; clamped to the strategy cap {render_value(caps[intent.strategy_id])} %"
    weighted_usd = clamped * intent.confidence if weighted else clamped
    return _Contribution(intent, desired, clamped, weighted_usd, note)


def plan_intents(
    policies: CompiledPolicySet,
    intents: Sequence[StrategyIntent],
    snapshot: Snapshot,
    state: State,
    now: datetime,
    *,
    account_id: str | None = None,
    size_increments: Mapping[str, Decimal] | None = None,
) -> ExecutionPlan:
    """The ExecutionPlan for one decision cycle's intents (see the module docstring).
    Target sizes are rounded down to the pair's size increment (`size_increments`,
    default 0.00000001; pass 1 for whole shares)."""
    account_id = resolve_account(snapshot, account_id)
    book = book_of(snapshot).accounts[account_id]
    by_pair: dict[str, list[StrategyIntent]] = {}
    for intent in intents:
        by_pair.setdefault(intent.pair, []).append(intent)
    actions: list[RiskAdjustedAction] = []
    decisions: list[ExecutionDecision] = []
    resolutions: list[dict[str, Any]] = []
    for pair in sorted(by_pair):
        ordered = sorted(by_pair[pair], key=lambda i: (i.strategy_id, i.timeframe))
        limits = _limits_for(policies, book.account.type, pair)
        parts = [_contribution(intent, book, snapshot, limits) for intent in ordered]
        target_usd = sum((part.weighted_usd for part in parts), ZERO)
        strategy_id = "+".join(dict.fromkeys(i.strategy_id for i in ordered))
        resolutions.append(
            {
                "pair": pair,
                "rule": "confidence-weighted sum of clamped exposures",
                "contributions": [
                    {
                        "strategy_id": part.intent.strategy_id,
                        "intent_type": part.intent.intent_type,
                        "confidence": part.intent.confidence,
                        "desired_usd": part.desired_usd.quantize(Decimal("0.01")),
                        "clamped_usd": part.clamped_usd.quantize(Decimal("0.01")),
                        "weighted_usd": part.weighted_usd.quantize(Decimal("0.01")),
                        "note": part.note,
                    }
                    for part in parts
                ],
                "target_usd": target_usd.quantize(Decimal("0.01")),
            }
        )
        increment = (size_increments or {}).get(pair, DEFAULT_INCREMENT)
        action, decision, state = _action(
            policies, pair, strategy_id, target_usd, book, snapshot, state, now, increment
        )
        actions.append(action)
        if decision is not None:
            decisions.append(decision)
    metadata = {
        "equity_usd": book.account.equity_usd,
        "intents": len(intents),
        "blocked": sum(1 for a in actions if a.blocked),
        "resolutions": resolutions,
        "risk_status": risk_status(policies, snapshot, state, account_id).to_dict(),
    }
    body = json.dumps(
        {
            "at": render_value(now),
            "actions": [a.to_dict() for a in actions],
            "meta": _plain(metadata),
        },
        sort_keys=True,
    )
    return ExecutionPlan(
        plan_id="plan_" + hashlib.sha256(body.encode()).hexdigest()[:20],
        generated_at=now,
        account_id=account_id,
        actions=tuple(actions),
        metadata=MappingProxyType(metadata),
        decisions=tuple(decisions),
        state=state,
    )


def _action(
    policies: CompiledPolicySet,
    pair: str,
    strategy_id: str,
    target_usd: Decimal,
    book: AccountBook,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    increment: Decimal,
) -> tuple[RiskAdjustedAction, ExecutionDecision | None, State]:
    held = book.symbols.get(pair)
    current = held.long_units if held else ZERO
    market = snapshot.market.get(pair)
    snapshot_limits = _limits_snapshot(book, _limits_for(policies, book.account.type, pair))
    if market is None:
        reason = f"no market data for {pair}: nothing can be planned"
        action = RiskAdjustedAction(
            pair,
            strategy_id,
            "none",
            current,
            ZERO,
            current,
            reason,
            True,
            (reason,),
            snapshot_limits,
        )
        return action, None, state
    price = market.price_usd
    target = (target_usd / price / increment).to_integral_value(rounding=ROUND_DOWN) * increment
    if target == current:
        kind = "none"
    elif target == 0:
        kind = "close"
    elif current == 0:
        kind = "open"
    else:
        kind = "increase" if target > current else "reduce"
    if kind == "none":
        action = RiskAdjustedAction(
            pair,
            strategy_id,
            "none",
            current,
            current * price,
            current,
            "already at the target",
            False,
            (),
            snapshot_limits,
        )
        return action, None, state
    request = OrderRequest(
        symbol=pair,
        action={"reduce": "decrease"}.get(kind, kind),
        id=f"plan:{pair}",
        account_id=book.account.id,
        current_size=current,
        target_size=None if kind == "close" else target,
        strategy_id=strategy_id,
        size_increment=increment,
        reason=f"execution plan: {strategy_id} → {render_value(target_usd.quantize(CENT))} USD",
    )
    result = can_execute(policies, request, snapshot, state, now)
    approved = result.approved_size if result.approved_size is not None else current
    action = RiskAdjustedAction(
        pair=pair,
        strategy_id=strategy_id,
        action_type=kind,
        target_base_size=approved,
        target_notional_usd=approved * price,
        current_base_size=current,
        reason=result.reason,
        blocked=not result.approved,
        blocked_reasons=() if result.approved else result.reasons,
        risk_limits_snapshot=snapshot_limits,
    )
    return action, result, result.state


def _limits_snapshot(book: AccountBook, limits: LimitSpec | None) -> Mapping[str, str]:
    values: dict[str, Any] = {
        "equity_usd": book.account.equity_usd,
        "daily_drawdown_pct": book.drawdown_pct.quantize(Decimal("0.0001")),
        "drift_flag": book.account.drift_flag,
    }
    if limits is not None:
        values |= {
            "max_risk_per_trade_pct": limits.max_risk_per_trade_pct,
            "max_portfolio_risk_pct": limits.max_portfolio_risk_pct,
            "max_per_asset_pct": limits.max_per_asset_pct,
            "max_open_positions": limits.max_open_positions,
            "max_daily_drawdown_pct": limits.max_daily_drawdown_pct,
        }
    return MappingProxyType({k: render_value(v) for k, v in values.items()})
