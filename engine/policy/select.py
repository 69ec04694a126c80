"""Which policy of a kind governs a subject: scope first, then rank.

Among the policies whose scope covers the subject, the one with the highest
`precedence` wins; at equal precedence an overlay beats the policy it extends
(deeper `extends` chain first); a remaining tie (which `bastion lint` reports as
BST604) is broken by name so that the choice is at least deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from bastion.engine.policy.model import Policy


def _depth(policy: Policy, by_name: dict[str, Policy]) -> int:
    depth, seen, current = 0, {policy.name}, policy
    while current.extends and current.extends in by_name and current.extends not in seen:
        seen.add(current.extends)
        current = by_name[current.extends]
        depth += 1
    return depth


def governing(
    policies: Sequence[Policy],
    *,
    account_type: str | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
) -> Policy | None:
    """The governing policy among `policies` (all of one kind), or None."""
    covering = [
        p
        for p in policies
        if p.scope.covers(account_type=account_type, symbol=symbol, strategy=strategy)
    ]
    if not covering:
        return None
    by_name = {p.name: p for p in policies}
    return max(covering, key=lambda p: (p.precedence, _depth(p, by_name), _reverse(p.name)))


@cache
def _reverse(name: str) -> tuple[int, ...]:
    """Sort key making the alphabetically first name win a `max`."""
    return tuple(-ord(char) for char in name)
