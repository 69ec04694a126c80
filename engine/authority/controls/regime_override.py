"""Regime override: in a severe enough regime, and at most once per cooldown per
account/symbol, lifts the blocks of the protections in `may_bypass`. It blocks nothing
itself: the walk records whether it is available and which blocks it lifted."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.controls.base import (
    NEVER_S,
    SEVERITY_RANK,
    Context,
    Fact,
    Protection,
)
from bastion.engine.decision import shown
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.rules import AllOf, Compare, RuleSpec

ID = "regime_override"


class RegimeOverride(Protection):
    id = ID
    label = "regime override"
    fields: ClassVar = {
        "severity": "regime severity rank (low 0 … critical 3)",
        "override_idle_s": "seconds since the last override for this account/symbol",
    }

    def fill(self, fact: Fact, ctx: Context, spec: ProtectionSpec) -> None:
        fact["severity"] = SEVERITY_RANK.get(ctx.snapshot.regime.severity, 0)
        fact["override_idle_s"] = ctx.override_idle_s

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        if ID not in spec.enabled:
            return []
        available = AllOf(
            Compare("severity", ">=", SEVERITY_RANK[spec.override_min_severity]),
            Compare("override_idle_s", ">=", spec.override_cooldown_s),
        )
        return [RuleSpec(ID, available)]

    def values(self, ctx: Context, spec: ProtectionSpec) -> dict[str, object]:
        regime = ctx.snapshot.regime
        return {
            "regime": regime.name,
            "severity": regime.severity,
            "min_severity": spec.override_min_severity,
            "cooldown_s": spec.override_cooldown_s,
        }

    def detail(self, ctx: Context, spec: ProtectionSpec, available: bool = False) -> str:
        regime = ctx.snapshot.regime
        idle = ctx.override_idle_s
        last = (
            "no override yet" if idle == NEVER_S else f"last override {shown(Decimal(idle))} s ago"
        )
        if available:
            return (
                f"available: {regime.name} regime, severity {regime.severity} ≥ "
                f"{spec.override_min_severity}; {last} "
                f"(cooldown {shown(spec.override_cooldown_s)} s)"
            )
        if SEVERITY_RANK[regime.severity] < SEVERITY_RANK[spec.override_min_severity]:
            return (
                f"not available: {regime.name} regime severity {regime.severity} < "
                f"{spec.override_min_severity}"
            )
        return f"not available: cooling down, {last} < {shown(spec.override_cooldown_s)} s"


CONTROL: RegimeOverride = RegimeOverride()
