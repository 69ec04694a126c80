"""durable-rules behind one door: rule conditions in, matching rule ids per fact out.

`spec` is the input format (RuleSpec with a Compare / AllOf / AnyOf / Not condition),
`values` checks and encodes values for the engine, `compiler` builds and owns the C
ruleset and matches facts in batches, `_native` is the only module that imports
durable-rules. Nothing else in Bastion imports durable-rules.
"""

from __future__ import annotations

from bastion.engine.rules.compiler import CompiledRuleset, compile_rules
from bastion.engine.rules.spec import AllOf, AnyOf, Compare, Condition, Kind, Not, RuleSpec
from bastion.engine.rules.values import encode, normalize

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "CompiledRuleset",
    "Condition",
    "Kind",
    "Not",
    "RuleSpec",
    "compile_rules",
    "encode",
    "normalize",
]
