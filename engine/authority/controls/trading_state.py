"""Trading state: what each state (ACTIVE / REDUCING / HALTED, set by the breakers)
allows. Checked first among the limits and always enforced (a shadow-mode LimitPolicy
does not weaken it); applies with the built-in table when no LimitPolicy governs."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import ClassVar

from bastion.engine.authority.controls.base import ADDS, Context, Fact, Limit, action_in
from bastion.engine.policy.kinds.limits import DEFAULT_ALLOWED_ACTIONS, LimitSpec
from bastion.engine.policy.vocabulary import ORDER_ACTIONS
from bastion.engine.rules import AllOf, AnyOf, Compare, Condition, Not, RuleSpec

ID = "limit.trading_state"
_RULE_IDS = {"ACTIVE": f"{ID}.ACTIVE", "REDUCING": f"{ID}.REDUCING", "HALTED": f"{ID}.HALTED"}


class TradingState(Limit):
    id = ID
    blocking = True
    any_action = True
    fields: ClassVar = {
        "trading_state": "the strictest of the account's and the symbol's trading state"
    }

    def owns(self, rule_id: str) -> bool:
        return rule_id.startswith(f"{ID}.")

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec | None) -> None:
        fact["trading_state"] = ctx.trading_state

    def rules(self, spec: LimitSpec | None) -> list[RuleSpec]:
        allowed = spec.allowed_actions if spec else tuple(DEFAULT_ALLOWED_ACTIONS.items())
        return state_rules(allowed)

    def fired(self, fired: Collection[str], ctx: Context) -> str | None:
        if not fired:  # the usual case: nothing fired
            return None
        state = ctx.trading_state
        rule = _RULE_IDS.get(state) or f"{ID}.{state}"
        return rule if rule in fired else None

    def blocked(self, ctx: Context, spec: LimitSpec | None) -> str:
        state, action = ctx.trading_state, ctx.request.action
        allowed = dict(spec.allowed_actions if spec else DEFAULT_ALLOWED_ACTIONS.items())[state]
        only = ", ".join(allowed) or "nothing"
        if action == "modify" and action in allowed:
            return f"trading state {state} allows no increase: a modify adding units is denied"
        return f"trading state {state} allows only {only}: {action} is denied"


def state_rules(allowed: Sequence[tuple[str, Sequence[str]]]) -> list[RuleSpec]:
    rules = []
    for state, actions in allowed:
        if set(actions) >= set(ORDER_ACTIONS):
            continue
        in_state = Compare("trading_state", "==", state)
        refused: Condition = Not(action_in(actions))
        if "modify" in actions and "increase" not in actions:  # a modify may add units
            refused = AnyOf(refused, AllOf(Compare("action", "==", "modify"), ADDS))
        condition = AllOf(in_state, refused) if actions else in_state
        rules.append(RuleSpec(f"{ID}.{state}", condition))
    return rules


CONTROL: TradingState = TradingState()
