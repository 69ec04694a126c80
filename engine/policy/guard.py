"""Stage: compare the serving policy set with a candidate; list the protection it loses.

A reload may add and tighten freely; what it removes must be accepted by a risk
officer. This module only names the losses (pure: two sets in, a tuple out); the
reloader refuses, the service decides who may accept.

Each protection has a stable key, the text an officer pastes to accept its removal:

    kind/LimitPolicy                                     no enforce-mode LimitPolicy left
    LimitPolicy/default-limits                           the whole policy is gone
    BreakerPolicy/default-breakers:breaker/daily_loss_usd
    LimitPolicy/default-limits:limit/orders.max_notional_per_order_usd
    ProtectionPolicy/default-protection:protection/core_asset_immunity
    ProtectionPolicy/default-protection:core_asset/SPY
    ProtectionPolicy/default-protection:history/stoploss-guard
    EscalationPolicy/default-escalation:level/preservation
    BreakerPolicy/com-breakers:mode/enforce              enforce -> shadow

Only enforce-mode policies protect: a shadow policy's items are never guarded, and
a disabled breaker or protection counts as absent. Policies are compared resolved
(after `extends`), so an overlay that stops overriding a breaker loses nothing,
while removing the base removes what every overlay inherited from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.engine.policy.model import Policy, PolicySet

# Limits by their place in a LimitPolicy's spec: a value that bounds an order.
LIMIT_FIELDS = (
    "risk.max_risk_per_trade_pct",
    "risk.max_portfolio_risk_pct",
    "risk.max_open_positions",
    "risk.max_per_asset_pct",
    "kill_switch.max_daily_drawdown_pct",
    "kill_switch.on_drift",
    "liquidity.min_liquidity_24h_usd",
    "orders.max_notional_per_order_usd",
    "orders.max_position_per_symbol_usd",
    "orders.submit_rate",
)
STRATEGY_LIMITS = "risk.max_per_strategy_pct"
# Caps per sector / asset class ("*": every group not named), guarded like strategy caps.
GROUP_LIMITS = ("risk.max_per_sector_pct", "risk.max_per_asset_class_pct")


@dataclass(frozen=True, slots=True)
class Removal:
    """One protection the candidate set would lose. `key` is what an officer accepts."""

    key: str
    what: str  # kind | policy | breaker | limit | protection | core_asset | history | level | mode
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "what": self.what, "message": self.message}


def policy_key(policy: Policy) -> str:
    return f"{policy.kind}/{policy.name}"


def _lookup(spec: Mapping[str, Any], dotted: str) -> Any:
    value: Any = spec
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _limit_items(policy: Policy) -> Iterator[tuple[str, str]]:
    spec = policy.document.get("spec", {})
    for dotted in LIMIT_FIELDS:
        value = _lookup(spec, dotted)
        if value is not None and value is not False:
            yield f"limit/{dotted}", f"limit {dotted} ({value})"
    for mapped in (STRATEGY_LIMITS, *GROUP_LIMITS):
        for name, cap in sorted((_lookup(spec, mapped) or {}).items()):
            yield f"limit/{mapped}.{name}", f"limit {mapped}.{name} ({cap})"
    # An instrument rule per key and rule ("*", an asset class or a symbol).
    for key, rules in sorted((spec.get("instruments") or {}).items()):
        for rule, value in sorted((rules or {}).items()):
            yield f"limit/instruments.{key}.{rule}", f"limit instruments.{key}.{rule} ({value})"


def _items(policy: Policy) -> Iterator[tuple[str, str]]:
    spec = policy.spec
    if policy.kind == "BreakerPolicy":
        for breaker in spec.breakers:
            if breaker.enabled:
                yield f"breaker/{breaker.id}", f"breaker {breaker.id} ({breaker.action})"
    elif policy.kind == "LimitPolicy":
        yield from _limit_items(policy)
    elif policy.kind == "ProtectionPolicy":
        for name in sorted(spec.enabled):
            yield f"protection/{name}", f"protection {name}"
        if "core_asset_immunity" in spec.enabled:
            for asset in sorted(spec.core_assets):
                yield f"core_asset/{asset}", f"core asset {asset} (immune to {policy.name})"
        for entry in spec.history:
            if entry.enabled:
                yield f"history/{entry.id}", f"history protection {entry.id} ({entry.method})"
    elif policy.kind == "EscalationPolicy":
        for level in spec.levels:
            yield f"level/{level.name}", f"escalation level {level.name} ({level.breach_atr} ATR)"


def protected_items(policy: Policy) -> dict[str, str]:
    """Item ("breaker/daily_loss_usd") -> what it is, for people. Shadow policies: none."""
    return dict(_items(policy)) if policy.mode == "enforce" else {}


def enforced_kinds(policy_set: PolicySet) -> set[str]:
    return {p.kind for p in policy_set.policies if p.mode == "enforce"}


def removed_protection(serving: PolicySet, candidate: PolicySet) -> tuple[Removal, ...]:
    """Every protection in `serving` that `candidate` no longer has, in a stable order."""
    removals = [
        Removal(
            f"kind/{kind}",
            "kind",
            f"no {kind} in enforce mode would remain (the serving set has "
            f"{', '.join(policy_key(p) for p in serving.of_kind(kind) if p.mode == 'enforce')})",
        )
        for kind in sorted(enforced_kinds(serving) - enforced_kinds(candidate))
    ]
    for before in sorted(serving.policies, key=policy_key):
        if before.mode != "enforce":
            continue
        after = candidate.get(before.kind, before.name)
        removals.extend(_policy_removals(before, after))
    return tuple(removals)


def _policy_removals(before: Policy, after: Policy | None) -> Iterator[Removal]:
    key = policy_key(before)
    if after is None:
        yield Removal(key, "policy", f"{key} ({before.source.file}) would be removed")
    elif after.mode != "enforce":
        yield Removal(
            f"{key}:mode/enforce",
            "mode",
            f"{key}: enforce -> {after.mode}; its decisions would be recorded but never block",
        )
        return
    kept = {} if after is None else protected_items(after)
    for item, description in protected_items(before).items():
        if item not in kept:
            yield Removal(
                f"{key}:{item}",
                item.partition("/")[0],
                f"{description} of {key} ({before.source.file}) would be removed",
            )


def unaccepted(removals: tuple[Removal, ...], accepted: frozenset[str]) -> tuple[Removal, ...]:
    """The removals whose key was not accepted: exact keys only, no wildcard."""
    return tuple(removal for removal in removals if removal.key not in accepted)
