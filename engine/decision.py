"""Decisions: immutable, explainable records of what the engine concluded and why.

A decision is data, never an exception. It names the policy and its version, the
rule, the subject, the outcome and action, human-readable reasons, every input
value that was compared, and the ordered trace of checks. `to_dict()` is the one
serialised shape (audit trail, `--format json`, the HTTP API); it is byte-stable:
the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from bastion.engine.jsontext import CanonicalEncoder

DECISION_SCHEMA_VERSION = 1
# `json.dumps(content, sort_keys=True, separators=(",", ":"))`, the id's basis: the same
# bytes, written by orjson where they are provably the same (`jsontext`).
_ID_BASIS = CanonicalEncoder(allow_nan=True)


class Subject(NamedTuple):
    """What a decision is about. `scope` is position / symbol / account / strategy /
    portfolio / system; `id` identifies it within the scope.

    Immutable like the frozen dataclasses around it, but a NamedTuple: the evaluator
    builds one per position per tick, and this is ~5x cheaper to construct."""

    scope: str
    id: str
    account_id: str | None = None
    symbol: str | None = None
    strategy_id: str | None = None

    def label(self) -> str:
        return f"{self.scope}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"scope": self.scope, "id": self.id}
        for name in ("account_id", "symbol", "strategy_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass(frozen=True, slots=True)
class Check:
    """One step of the trace: what was checked, whether it held, with which values."""

    name: str
    passed: bool
    detail: str = ""
    values: tuple[tuple[str, str], ...] = ()
    elapsed_us: int | None = None  # measured only with an injected clock; not in the id

    def to_dict(self, *, timing: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"check": self.name, "passed": self.passed}
        if self.detail:
            data["detail"] = self.detail
        if self.values:
            data["values"] = dict(self.values)
        if timing and self.elapsed_us is not None:
            data["elapsed_us"] = self.elapsed_us
        return data


# A Decimal's plain text (no exponent) → how it is rendered: a function of the text alone.
# An order check renders a few dozen values, mostly the same ones (equity, limits, prices
# of the cycle's snapshot); a look-up is a third of the work. Shared by threads: a lost
# or cleared entry is only worked out again.
_RENDERED: dict[str, str] = {}
_RENDERED_MAX = 4096


def render_value(value: Any) -> str:
    """How an input value is written into a decision (Decimal exactly, no floats):
    plain digits, never an exponent; a whole number without its trailing zeros
    (``100.00`` → ``100``), other values with theirs (``2.50``); ``-0`` as ``0``."""
    if isinstance(value, Decimal):
        text = str(value)
        rendered = _RENDERED.get(text)
        if rendered is not None:
            return rendered
        if "E" in text or not text[-1].isdigit():  # an exponent, NaN or an infinity
            exact = value.normalize() if value == value.to_integral() else value
            text = format(exact, "f")  # the context's precision: not kept below
            return text if text != "-0" else "0"
        rendered = text
        if "." in text:
            whole, _, fraction = text.partition(".")
            if not fraction.strip("0"):
                rendered = whole
        rendered = rendered if rendered != "-0" else "0"
        if len(_RENDERED) >= _RENDERED_MAX:  # bounded: live prices keep changing
            _RENDERED.clear()
        _RENDERED[text] = rendered
        return rendered
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_CENT = Decimal("0.01")


def shown(value: Decimal) -> str:
    """A value as a reason shows it: at most 2 decimals (inputs keep the exact value)."""
    if value == value.to_integral():
        return render_value(value)
    return render_value(value.quantize(_CENT))


def values_of(items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    pairs = items.items() if type(items) is dict or isinstance(items, Mapping) else items
    return tuple((name, render_value(value)) for name, value in pairs)


@dataclass(frozen=True, slots=True)
class Decision:
    time: datetime
    kind: str  # escalation | breaker | roll | trading_state | evaluation | check (can_execute)
    policy: str
    policy_version: str
    rule: str
    subject: Subject
    outcome: str
    actions: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    trace: tuple[Check, ...] = ()
    mode: str = "enforce"
    latency_us: int = 0
    details: tuple[tuple[str, Any], ...] = field(default=())  # kind-specific extras
    # The id, once computed: a hash of the whole content, asked for by the answer, the
    # log and the audit record of one check. Not a field of the decision (no init, not
    # compared); `replace()` starts a copy without it.
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        """Stable id: the same decision made twice has the same id."""
        if self._id is None:
            self._identify(self._content())
        assert self._id is not None
        return self._id

    def _identify(self, content: Mapping[str, Any]) -> None:
        """Keep the id of `content` (the untimed `_content()`; not changed here)."""
        basis = _ID_BASIS.encode(content)
        object.__setattr__(self, "_id", "dec_" + hashlib.sha256(basis).hexdigest()[:20])

    @property
    def blocking(self) -> bool:
        """Shadow-mode decisions are recorded but never block."""
        return self.mode == "enforce"

    def _content(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "time": self.time.isoformat(),
            "kind": self.kind,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "subject": self.subject.to_dict(),
            "outcome": self.outcome,
            "actions": list(self.actions),
            "reasons": list(self.reasons),
            "inputs": dict(self.inputs),
            "trace": [check.to_dict(timing=False) for check in self.trace],
            "mode": self.mode,
        }
        if self.details:
            data["details"] = {key: plain(value) for key, value in self.details}
        return data

    def to_dict(self) -> dict[str, Any]:
        content = self._content()
        if any(check.elapsed_us is not None for check in self.trace):
            if self._id is None:
                self._identify(content)  # the id leaves the timings out
            content["trace"] = [check.to_dict() for check in self.trace]
        elif self._id is None:  # untimed, the content is the id's: built once for both
            self._identify(content)
        return {
            "id": self.id,
            "schema_version": DECISION_SCHEMA_VERSION,
            **content,
            "latency_us": self.latency_us,
        }

    def explain(self) -> str:
        """Several lines a risk officer can read."""
        lines = [
            f"[{self.kind}] {self.subject.label()}: {self.outcome}"
            + (f" -> {', '.join(self.actions)}" if self.actions else "")
            + (" (shadow: recorded, not enforced)" if self.mode == "shadow" else ""),
            *(f"  because {reason}" for reason in self.reasons),
            f"  policy {self.policy} @ {self.policy_version.removeprefix('sha256:')[:12]},"
            f" rule {self.rule}",
        ]
        lines += [
            f"  {'✓' if check.passed else '✗'} {check.name}"
            + (f": {check.detail}" if check.detail else "")
            for check in self.trace
        ]
        return "\n".join(lines)


def plain(value: Any, *, bools_as_text: bool = True) -> Any:
    """JSON-ready: Decimals and times as exact text; bools as "true"/"false" (the
    Decision `details` convention) or kept as JSON booleans."""
    kind = type(value)
    if kind is str or value is None or kind is int:  # most values: as they are, at once
        return value
    if kind is dict:  # a request's fields, a check's values: no ABC check (Mapping) each
        return {str(k): plain(v, bools_as_text=bools_as_text) for k, v in value.items()}
    if isinstance(value, bool):
        return render_value(value) if bools_as_text else value
    if isinstance(value, Decimal | datetime):
        return render_value(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, bools_as_text=bools_as_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, bools_as_text=bools_as_text) for v in value]
    return value
