"""Semantic lint rules: what a schema cannot see. One module per kind, registered here.

A per-policy rule is `check(policy) -> Iterable[Finding]`; a set rule is
`check_set(policies) -> Iterable[Finding]`; a declaration rule is
`check_declaration(policies, declarations, directories) -> Iterable[Finding]`
(what the PolicySet in bastion.yaml requires; `directories` are the linted
directories, each one a set). Rules run only on policies that passed the schema,
so they may trust the shape of the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules import (
    breaker_actions,
    breakers,
    declaration,
    escalation,
    exits,
    history,
    instruments,
    limits,
    modes,
    policyset,
    protection,
    roll,
    units,
    units_atr,
    units_metrics,
)
from bastion.engine.policy.model import Policy

PolicyRule = Callable[[Policy], Iterable[Finding]]
SetRule = Callable[[Sequence[Policy]], Iterable[Finding]]
DeclarationRule = Callable[[Sequence[Policy], Sequence[Policy], Sequence[str]], Iterable[Finding]]

# Kind -> the rules for policies of that kind; "*" applies to every kind.
POLICY_RULES: dict[str, tuple[PolicyRule, ...]] = {
    "*": (units.check, units_atr.check, modes.check),
    "EscalationPolicy": (escalation.check,),
    "RollPolicy": (roll.check,),
    "BreakerPolicy": (breakers.check, units_metrics.check, exits.check, breaker_actions.check),
    "ProtectionPolicy": (protection.check, history.check),
    "LimitPolicy": (limits.check, instruments.check),
}
SET_RULES: tuple[SetRule, ...] = (policyset.check_set,)
DECLARATION_RULES: tuple[DeclarationRule, ...] = (declaration.check_declaration,)


def run_rules(
    policies: Sequence[Policy],
    declarations: Sequence[Policy] = (),
    directories: Sequence[str] = (),
) -> list[Finding]:
    findings: list[Finding] = []
    for policy in policies:
        for rule in (*POLICY_RULES["*"], *POLICY_RULES.get(policy.kind, ())):
            findings.extend(rule(policy))
    for set_rule in SET_RULES:
        findings.extend(set_rule(policies))
    for declaration_rule in DECLARATION_RULES:
        findings.extend(declaration_rule(policies, declarations, directories))
    return findings
