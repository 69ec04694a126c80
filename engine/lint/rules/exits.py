"""BST310-BST311: breakers that close positions — trailing stops and position-only actions.

- BST310: a trailing stop (position.drawdown_from_high_pct) wider than the policy's
  position-loss breaker (position.loss_pct). The give-back from the high is never less
  than the loss from entry (the high starts at the entry), so until the price has run
  up far enough the loss breaker always acts first: the trailing stop only starts to
  matter after a run-up the officer probably did not intend to wait for.
- BST311: `close_position` on a breaker that is not evaluated per position: there is no
  single position to close, and the action restricts nothing — a breaker that does
  nothing when it trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.breakers import Breaker, BreakerSpec, Compare
from bastion.engine.policy.model import Policy

TRAILING = "position.drawdown_from_high_pct"
STOP_LOSS = "position.loss_pct"
HUNDRED = Decimal(100)


def _trips_above(breaker: Breaker, metric: str) -> Decimal | None:
    """The threshold of an enabled `metric > / >= value` breaker, else None."""
    condition = breaker.condition
    if (
        breaker.enabled
        and isinstance(condition, Compare)
        and condition.metric == metric
        and condition.op in (">", ">=")
    ):
        return condition.value
    return None


def _run_up_pct(trail_pct: Decimal, stop_pct: Decimal) -> Decimal:
    """How far above entry a long's high must be before the trailing stop can act first."""
    return ((HUNDRED - stop_pct) / (HUNDRED - trail_pct) - 1) * HUNDRED


def check(policy: Policy) -> Iterator[Finding]:
    spec: BreakerSpec = policy.spec
    stops = [(b, t) for b in spec.breakers if (t := _trips_above(b, STOP_LOSS)) is not None]
    tightest = min(stops, key=lambda pair: pair[1], default=None)
    for index, breaker in enumerate(spec.breakers):
        base = f"/spec/breakers/{index}"
        trail = _trips_above(breaker, TRAILING)
        if tightest is not None and trail is not None and tightest[1] < trail < HUNDRED:
            stop, stop_pct = tightest
            yield finding(
                policy,
                "BST310",
                f"{base}/threshold",
                f'trailing stop "{breaker.id}" ({TRAILING} {trail}) is wider than the '
                f'position-loss breaker "{stop.id}" ({STOP_LOSS} {stop_pct}): for a long '
                f"it can act first only once the price has risen "
                f"{_run_up_pct(trail, stop_pct):.1f} % above the entry; give it a threshold "
                f"of at most {stop_pct}",
            )
        if breaker.action == "close_position" and breaker.scope != "position":
            yield finding(
                policy,
                "BST311",
                f"{base}/action",
                f'breaker "{breaker.id}" closes a position (close_position) but is evaluated '
                f"per {breaker.scope}, where there is no single position to close; compare a "
                "position metric (scope position), or use close_risky / reduce_only",
            )
