"""BST312-BST314: breaker actions that would restrict nothing when the breaker trips.

- BST312: `halt_symbol` on a breaker not evaluated per symbol or position: the trip has
  no symbol to halt (the evaluation restricts nothing for it) — a breaker that fails open.
- BST313: `size_factor` on a breaker whose action is not `reduce_size`: nothing reads it.
- BST314: a `reduce_size` breaker with `size_factor: 1`: every order keeps its full size.

A size_factor outside 0 < f ≤ 1 is refused by the schema (BST013), before these rules run.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.breakers import BreakerSpec
from bastion.engine.policy.model import Policy

SYMBOL_SCOPES = ("symbol", "position")


def check(policy: Policy) -> Iterator[Finding]:
    spec: BreakerSpec = policy.spec
    for index, breaker in enumerate(spec.breakers):
        base = f"/spec/breakers/{index}"
        if breaker.action == "halt_symbol" and breaker.scope not in SYMBOL_SCOPES:
            yield finding(
                policy,
                "BST312",
                f"{base}/action",
                f'breaker "{breaker.id}" halts a symbol (halt_symbol) but is evaluated per '
                f"{breaker.scope}, where there is no symbol to halt: its trip would restrict "
                "nothing; compare a symbol or position metric, or use halt_all / reduce_only",
            )
        if breaker.size_factor is None:
            continue
        if breaker.action != "reduce_size":
            yield finding(
                policy,
                "BST313",
                f"{base}/size_factor",
                f'breaker "{breaker.id}" has size_factor {breaker.size_factor} but action '
                f"{breaker.action}: only reduce_size reads it; delete the line or use "
                "reduce_size",
            )
        elif breaker.size_factor >= Decimal(1):
            yield finding(
                policy,
                "BST314",
                f"{base}/size_factor",
                f'breaker "{breaker.id}" reduces sizes by a factor of {breaker.size_factor}: '
                "orders keep their full size while it is tripped; give it a factor below 1 "
                "(0.5 halves them)",
            )
