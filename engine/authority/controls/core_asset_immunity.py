"""Core asset immunity: a core asset is never sold down by a strategy. Final: no regime
override lifts it, and nothing lower in the hierarchy is reached once it blocks."""

from __future__ import annotations

from typing import ClassVar

from bastion.engine.authority.controls.base import Context, Fact, Protection, action_in, is_
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.rules import AllOf, RuleSpec

ID = "core_asset_immunity"


class CoreAssetImmunity(Protection):
    id = ID
    label = "core asset immunity"
    final = True
    fields: ClassVar = {"core": "the symbol is a core asset"}

    def fill(self, fact: Fact, ctx: Context, spec: ProtectionSpec) -> None:
        fact["core"] = ctx.request.symbol in spec.core_assets

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        if ID not in spec.enabled or not spec.core_assets or not spec.core_blocked_actions:
            return []
        blocked = sorted(spec.core_blocked_actions)
        return [RuleSpec(ID, AllOf(is_("core"), action_in(blocked)))]

    def detail(self, ctx: Context, spec: ProtectionSpec) -> str:
        symbol, action = ctx.request.symbol, ctx.request.action
        if symbol not in spec.core_assets:
            return f"{symbol} is not a core asset"
        blocked = ", ".join(sorted(spec.core_blocked_actions))
        if action in spec.core_blocked_actions:
            return f"{symbol} is a core asset: {action} is blocked (immune to {blocked})"
        return f"{symbol} is a core asset; {action} is allowed (immune to {blocked} only)"


CONTROL: CoreAssetImmunity = CoreAssetImmunity()
