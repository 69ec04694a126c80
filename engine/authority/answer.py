"""The answer to one order request: `ExecutionDecision`, and its explanation's shape.

The outcome is decided before anything is worded: the reasons and the audit record are
an `Explanation`, worded when first read (`walk.Walk` is the usual one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from bastion.engine.authority.request import OrderRequest
from bastion.engine.decision import Check, Decision, render_value
from bastion.engine.state import State

APPROVED, DOWNSIZED, DENIED = "approved", "downsized", "denied"
VERB = {APPROVED: "approve", DOWNSIZED: "downsize", DENIED: "deny"}


class Explanation(Protocol):
    """What an answer says beyond the outcome, worded when first asked: the audit record
    and the reasons' wording are not needed to decide, so a caller that only asks "may
    I?" does not pay for them. Asking twice (or from two threads) gives the same value."""

    def reasons(self) -> tuple[str, ...]: ...

    def audit(self) -> tuple[tuple[Check, ...], Decision]: ...


class Fixed:
    """An explanation known in advance (the error path)."""

    __slots__ = ("_audit", "_reasons")

    def __init__(self, reasons: tuple[str, ...], audit: tuple[tuple[Check, ...], Decision]):
        self._reasons, self._audit = reasons, audit

    def reasons(self) -> tuple[str, ...]:
        return self._reasons

    def audit(self) -> tuple[tuple[Check, ...], Decision]:
        return self._audit


@dataclass(frozen=True, slots=True)
class ExecutionDecision:
    """The answer to one request. `decision` is the audit record (same shape as the
    engine's decisions, built when first read); `state` is what to pass with the next
    request."""

    request: OrderRequest
    approved: bool
    outcome: str  # approved | downsized | denied
    requested_size: Decimal | None  # the target size asked for (or sized from volatility)
    approved_size: Decimal | None  # the target size the order may go to; None when denied
    blocking: tuple[str, ...]  # what blocks: protections, "limit.*", "error", "data"
    override_applied: bool
    override_reason: str | None
    state: State
    latency_us: int = 0
    explanation: Explanation = field(repr=False, compare=False, kw_only=True)
    # Units held before the order, as the check counted them (pending orders included);
    # None on the error path. A bracket's children start from it.
    held_size: Decimal | None = field(default=None, repr=False, compare=False, kw_only=True)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, in words a risk officer reads: worded on first read (never raises)."""
        return self.explanation.reasons()

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every check, in order, with its timing when clocked."""
        return self.explanation.audit()[0]

    @property
    def decision(self) -> Decision:
        decision = self.explanation.audit()[1]
        return replace(decision, latency_us=self.latency_us) if self.latency_us else decision

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "outcome": self.outcome,
            "requested_size": _text(self.requested_size),
            "approved_size": _text(self.approved_size),
            "blocking": list(self.blocking),
            "override_applied": self.override_applied,
            "override_reason": self.override_reason,
            "reasons": list(self.reasons),
            "decision": self.decision.to_dict(),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else render_value(value)
