"""What the console says about a cycle: one line per change, readable at 3 a.m.

`ConsoleLines.of_cycle(decisions, state, regime)` turns a cycle's decisions into
`ConsoleLine`s. Every line names the subject, the breaker or level id, the metric value
against its threshold, the action and the trading state that results:

    TRIP    account:gen-01  daily_loss_usd  account.daily_loss_usd = 1234.50 vs >= 1000
            -> halt_all  => gen-01 HALTED

Once per change: a line identical to one already printed this cycle is dropped; roll
advice and unevaluable subjects are printed when they change, not every cycle; a
trading-state change reads `gen-01 ACTIVE -> HALTED (why)`, never `HALTED -> halted`.
Pure: no I/O, no clock — `service.console` renders and writes the lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from bastion.engine.decision import Decision
from bastion.engine.snapshot import Regime
from bastion.engine.state import State

# The word a breaker decision's outcome is shown with (fixed width in the text).
BREAKER_WORDS = {
    "trip": "TRIP",
    "held": "HELD",
    "rearm": "REARM",
    "reset": "RESET",
    "unevaluable": "NO DATA",
}
# Decision kinds whose repeated identical advice is shown once, until it changes.
ONCE_UNTIL_CHANGED = frozenset({"roll", "snapshot"})
_OPERATORS = (">=", "<=", "==", "!=", ">", "<")


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One thing an operator reads: what happened, to what, why, and where it leaves
    trading. `event` is snake_case past tense (the JSON event name)."""

    at: datetime
    event: str  # breaker_tripped | breaker_held | trading_state_changed | escalated | ...
    subject: str  # account:gen-01, symbol:SPY, position:SPY-101, system:all, ...
    rule: str  # the breaker id, the escalation level id, the roll urgency, ...
    text: str  # the line, without the time
    value: str = ""  # the metric value(s), e.g. "account.daily_loss_usd = 1234.50"
    threshold: str = ""  # what it is compared with, e.g. ">= 1000"
    action: str = ""
    trading_state: str = ""  # what results, e.g. "gen-01 HALTED"
    severity: str = "info"  # info | warning | critical (colour in a terminal)

    def fields(self) -> dict[str, Any]:
        """The JSON event's fields (those that are set)."""
        data = {
            "subject": self.subject,
            "rule": self.rule,
            "value": self.value,
            "threshold": self.threshold,
            "action": self.action,
            "trading_state": self.trading_state,
            "line": self.text,
        }
        return {key: value for key, value in data.items() if value}


@dataclass(slots=True)
class ConsoleLines:
    """Decisions to lines, remembering what was said so that advice is said once."""

    _said: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _regime: tuple[str, str] | None = None

    def of_cycle(
        self,
        at: datetime,
        decisions: Sequence[Decision],
        state: State,
        regime: Regime | None = None,
    ) -> list[ConsoleLine]:
        lines: list[ConsoleLine] = []
        if regime is not None and (regime.name, regime.severity) != self._regime:
            if self._regime is not None or regime.name != "normal":
                lines.append(regime_line(at, regime, self._regime))
            self._regime = (regime.name, regime.severity)
        seen: set[str] = set()
        for decision in decisions:
            line = self._line(decision, state)
            if line is None or line.text in seen:  # never the same line twice in a cycle
                continue
            seen.add(line.text)
            lines.append(line)
        return lines

    def _line(self, decision: Decision, state: State) -> ConsoleLine | None:
        if decision.kind in ONCE_UNTIL_CHANGED:
            key = (decision.kind, decision.subject.label(), decision.rule)
            said = f"{decision.outcome}|{decision.reasons[0] if decision.reasons else ''}"
            if self._said.get(key) == said:
                return None
            self._said[key] = said
        return line_of(decision, state)


def line_of(decision: Decision, state: State) -> ConsoleLine:
    """The line for one decision."""
    if decision.kind == "breaker":
        return _breaker_line(decision, state)
    if decision.kind == "trading_state":
        return _trading_state_line(decision)
    if decision.kind == "escalation":
        return _escalation_line(decision, state)
    subject = decision.subject.label()
    reason = decision.reasons[0] if decision.reasons else ""
    action = ", ".join(decision.actions)
    word = decision.kind.upper()
    text = f"{word:<7} {subject}  {decision.rule}  {decision.outcome}: {reason}"
    severity = "critical" if decision.kind == "evaluation" else "info"
    return ConsoleLine(
        decision.time,
        f"{decision.kind}_{decision.outcome}",
        subject,
        decision.rule,
        text,
        action=action,
        trading_state=resulting_state(decision, state),
        severity=severity,
    )


def _breaker_line(decision: Decision, state: State) -> ConsoleLine:
    subject = decision.subject.label()
    value, threshold = compared(decision)
    action = ", ".join(decision.actions)
    result = resulting_state(decision, state)
    word = BREAKER_WORDS.get(decision.outcome, decision.outcome.upper())
    shadow = " [shadow: not enforced]" if decision.mode == "shadow" else ""
    parts = [f"{word:<7} {subject}  {decision.rule}"]
    if value:
        parts.append(f"{value} vs {threshold}" if threshold else value)
    if decision.outcome == "reset":
        parts.append(decision.reasons[0] if decision.reasons else "reset")
    elif decision.outcome == "unevaluable":
        parts.append(decision.reasons[0] if decision.reasons else "metric missing")
    if action:
        parts.append(f"-> {action}")
    if result:
        parts.append(f"=> {result}")
    severity = dict(decision.details).get("severity", "info")
    return ConsoleLine(
        decision.time,
        {"trip": "breaker_tripped", "rearm": "breaker_rearmed"}.get(
            decision.outcome, f"breaker_{decision.outcome}"
        ),
        subject,
        decision.rule,
        "  ".join(parts) + shadow,
        value=value,
        threshold=threshold,
        action=action,
        trading_state=result,
        severity=str(severity) if decision.outcome in ("trip", "held") else "info",
    )


def _trading_state_line(decision: Decision) -> ConsoleLine:
    """`gen-01 ACTIVE -> HALTED: breaker daily_loss_usd (account:gen-01)`."""
    account = decision.subject.id
    reason = decision.reasons[0] if decision.reasons else ""
    change, _, why = reason.partition(": ")
    change = change.replace("→", "->")
    text = f"STATE   account:{account}  {change}" + (f"  ({why})" if why else "")
    severity = {"HALTED": "critical", "REDUCING": "warning"}.get(decision.outcome, "info")
    return ConsoleLine(
        decision.time,
        "trading_state_changed",
        decision.subject.label(),
        decision.rule,
        text,
        action=decision.outcome,
        trading_state=f"{account} {decision.outcome}",
        severity=severity,
    )


def _escalation_line(decision: Decision, state: State) -> ConsoleLine:
    inputs = dict(decision.inputs)
    details = dict(decision.details)
    level = f"{details.get('from_level', '?')} -> {details.get('to_level', '?')}"
    value = f"breach {short(inputs['breach_atr'])} ATR" if "breach_atr" in inputs else ""
    threshold = f"{short(inputs['threshold_atr'])} ATR" if "threshold_atr" in inputs else ""
    action = ", ".join(decision.actions)
    every = details.get("interval_s")
    parts = [f"{decision.outcome.upper():<7} {decision.subject.label()}  {decision.rule}  {level}"]
    if value:
        parts.append(f"{value} vs {threshold}" if threshold else value)
    if action:
        parts.append(f"-> {action}")
    if every is not None:
        parts.append(f"poll every {every} s")
    result = resulting_state(decision, state)
    if result:
        parts.append(f"=> {result}")
    return ConsoleLine(
        decision.time,
        "escalated" if decision.outcome == "escalate" else "deescalated",
        decision.subject.label(),
        decision.rule,
        "  ".join(parts),
        value=value,
        threshold=threshold,
        action=action,
        trading_state=result,
        severity="warning" if decision.outcome == "escalate" else "info",
    )


def compared(decision: Decision) -> tuple[str, str]:
    """("metric = value", "op threshold") for a one-comparison condition; for a compound
    one, every value and the whole condition."""
    values = ", ".join(f"{name} = {short(value)}" for name, value in decision.inputs)
    condition = decision.trace[0].name if decision.trace else ""
    tokens = condition.split(" ")
    if len(tokens) == 3 and tokens[1] in _OPERATORS and len(decision.inputs) == 1:
        return values, f"{tokens[1]} {tokens[2]}"
    return values, condition


def short(value: object) -> str:
    """A number as a person reads it: 34.06113537117903930131004367 -> 34.06 (4 places
    below 1: 0.3551); anything else as it is."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite() or number == number.to_integral_value():
        return str(value)
    digits = 2 if abs(number) >= 1 else 4
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -digits:
        return str(value)
    return str(number.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))


def resulting_state(decision: Decision, state: State) -> str:
    """Where trading stands after the cycle, for what the decision touches: its
    account, its symbol (halted or reduce-only), or every account."""
    subject = decision.subject
    if subject.account_id:
        return f"{subject.account_id} {state.trading_state(subject.account_id)}"
    if subject.symbol and subject.scope == "symbol":
        if subject.symbol in state.halted_symbols:
            return f"{subject.symbol} halted"
        if subject.symbol in state.reducing_symbols:
            return f"{subject.symbol} reduce-only"
        return f"{subject.symbol} trading; accounts unchanged"
    return trading_states_text(state.trading_states.items())


def trading_states_text(states: Iterable[tuple[str, str]]) -> str:
    """`gen-01 HALTED, rev-01 ACTIVE` (sorted), or "" without accounts."""
    return ", ".join(f"{account} {value}" for account, value in sorted(states))


def regime_line(at: datetime, regime: Regime, before: tuple[str, str] | None) -> ConsoleLine:
    was = f" (was {before[0]}, {before[1]})" if before is not None else ""
    severity = {"high": "warning", "critical": "critical"}.get(regime.severity, "info")
    return ConsoleLine(
        at,
        "regime_changed",
        "market:regime",
        regime.name,
        f"REGIME  market  {regime.name} (severity {regime.severity}){was}",
        value=regime.name,
        severity=severity,
    )
